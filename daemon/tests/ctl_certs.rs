//! `ringraftctl certs`: what create-ca and issue print (text and --json), and that its help lists
//! none of the options that only matter to commands talking to a daemon.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const CTL: &str = env!("CARGO_BIN_EXE_ringraftctl");

fn ctl(args: &[&str]) -> Output {
    Command::new(CTL)
        .args(args)
        .env_remove("RINGRAFT_SOCKET")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn now_unix() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn create_ca_and_issue_print_what_they_wrote_and_the_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let text = stdout(&ctl(&["certs", "create-ca", "--out", path_str(&ca_dir)]));
    for file in ["ca.pem", "ca-key.pem"] {
        let line = format!("wrote {}", ca_dir.join(file).display());
        assert!(text.contains(&line), "{line:?} missing from {text}");
    }
    assert!(text.contains("mode 0600"), "{text}");
    let year_now = 1970 + now_unix() / 31_556_952;
    // The CA is valid for 20 years: its expiry year is printed.
    assert!(
        text.contains(&format!("expires {}-", year_now + 20)),
        "{text}"
    );

    let node_dir = tmp.path().join("n7");
    let json: Value = serde_json::from_str(&stdout(&ctl(&[
        "certs",
        "issue",
        "--ca",
        path_str(&ca_dir),
        "--id",
        "7",
        "--out",
        path_str(&node_dir),
        "--name",
        "10.1.2.3",
        "--json",
    ])))
    .unwrap();
    assert_eq!(json["node_id"], 7);
    assert_eq!(json["common_name"], "node-7.ringraft");
    assert_eq!(
        json["names"],
        serde_json::json!(["node-7.ringraft", "10.1.2.3"])
    );
    let paths: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = ["node.pem", "node-key.pem", "ca.pem"]
        .iter()
        .map(|f| node_dir.join(f).display().to_string())
        .collect();
    assert_eq!(paths, expected);
    for (file, mode) in json["files"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["0644", "0600", "0644"])
    {
        assert_eq!(file["mode"], mode, "{file}");
    }
    // Five years, give or take a day.
    let not_after = json["not_after_unix"].as_i64().unwrap();
    let five_years = 5 * 365 * 86_400;
    assert!(
        (not_after - now_unix() - five_years).abs() < 2 * 86_400,
        "{json}"
    );
    assert!(json["not_after"].as_str().unwrap().ends_with('Z'));

    // Text names the node too.
    let text = stdout(&ctl(&[
        "certs",
        "issue",
        "--ca",
        path_str(&ca_dir),
        "--id",
        "8",
        "--out",
        path_str(&tmp.path().join("n8")),
    ]));
    assert!(text.contains("node 8 certificate"), "{text}");
    assert!(text.contains("expires "), "{text}");
}

#[test]
fn certs_help_lists_no_daemon_options() {
    for args in [
        &["certs", "--help"][..],
        &["certs", "create-ca", "--help"],
        &["certs", "issue", "--help"],
    ] {
        let help = stdout(&ctl(args));
        for option in ["--socket", "--wait-ms"] {
            assert!(!help.contains(option), "{args:?} lists {option}:\n{help}");
        }
    }
    // Commands that talk to a daemon still list them.
    let help = stdout(&ctl(&["status", "--help"]));
    assert!(
        help.contains("--socket") && help.contains("--wait-ms"),
        "{help}"
    );
}
