//! libringraft.so exports its own C functions and nothing else (no Rust or dependency symbols
//! that could clash with the program's), and carries the SONAME libringraft.so.0.

use std::path::PathBuf;
use std::process::Command;

/// The shared library cargo built next to this test's deps directory.
fn shared_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let library = profile_dir.join("libringraft.so");
    assert!(library.exists(), "{} not built", library.display());
    library
}

fn tool_output(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

#[test]
fn only_ringraft_symbols_are_exported() {
    let library = shared_library();
    let listing = tool_output("nm", &["-D", "--defined-only", library.to_str().unwrap()]);
    let exported: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    let foreign: Vec<&&str> = exported
        .iter()
        .filter(|name| !name.starts_with("ringraft_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "symbols outside the ringraft_ prefix are exported: {foreign:?}"
    );
    for expected in [
        "ringraft_connect",
        "ringraft_close",
        "ringraft_owner",
        "ringraft_propose",
        "ringraft_kv_get",
        "ringraft_kv_cas",
        "ringraft_kv_delete",
        "ringraft_kv_entry_free",
    ] {
        assert!(exported.contains(&expected), "{expected} is not exported");
    }
}

#[test]
fn every_header_function_is_exported() {
    let library = shared_library();
    let listing = tool_output("nm", &["-D", "--defined-only", library.to_str().unwrap()]);
    let header = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/ringraft.h"),
    )
    .expect("include/ringraft.h");
    let declared: Vec<&str> = header
        .lines()
        .filter(|line| !line.starts_with(' ') && line.contains(" ringraft_") && line.contains('('))
        .filter_map(|line| line.split('(').next()?.rsplit([' ', '*']).next())
        .collect();
    assert!(
        declared.len() > 20,
        "too few functions parsed from the header: {declared:?}"
    );
    for name in declared {
        assert!(
            listing
                .lines()
                .any(|line| line.ends_with(&format!(" {name}"))),
            "{name} is declared but not exported"
        );
    }
}

#[test]
fn soname_is_major_versioned() {
    let library = shared_library();
    let dynamic = tool_output("readelf", &["-d", library.to_str().unwrap()]);
    assert!(
        dynamic.contains("Library soname: [libringraft.so.0]"),
        "{dynamic}"
    );
}
