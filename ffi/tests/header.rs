//! include/ringraft.h is what cbindgen (the version pinned in Cargo.toml) makes of this crate.
//! A difference fails the test; RINGRAFT_BLESS_HEADER=1 rewrites the committed header instead.

use std::path::PathBuf;

#[test]
fn committed_header_matches_cbindgen_output() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let header_path = crate_dir.join("../include/ringraft.h");
    if std::env::var_os("RINGRAFT_BLESS_HEADER").is_some() {
        std::fs::write(&header_path, &generated).expect("write include/ringraft.h");
        return;
    }
    let committed = std::fs::read_to_string(&header_path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "at the end".to_owned(),
                |line| format!("at line {}", line + 1),
            );
        panic!(
            "include/ringraft.h is stale (first difference {first_difference}); regenerate it with \
             RINGRAFT_BLESS_HEADER=1 cargo test -p ringraft-ffi --test header"
        );
    }
}
