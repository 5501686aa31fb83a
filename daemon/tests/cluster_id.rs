//! One form of the cluster id for people: the daemon's log, `ringraftctl status` and its JSON
//! show the same 16 hex digits (`ringraft_proto::cluster_id_text`) for the id the API returns.

mod common;

use std::process::Command;

use common::Cluster;
use ringraft_proto::cluster_id_text;

const RINGRAFTCTL: &str = env!("CARGO_BIN_EXE_ringraftctl");

fn ctl(cluster: &Cluster, args: &[&str]) -> String {
    let output = Command::new(RINGRAFTCTL)
        .arg("--socket")
        .arg(cluster.socket(1))
        .args(args)
        .output()
        .expect("run ringraftctl");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn the_log_the_status_text_and_its_json_show_one_form_of_the_cluster_id() {
    let cluster = Cluster::start("cluster-id", 1, &[]);
    let id = cluster.status(1).expect("status").cluster_id;
    let wanted = cluster_id_text(id);

    let text = ctl(&cluster, &["status"]);
    let shown = text
        .lines()
        .find_map(|line| line.strip_prefix("cluster"))
        .map(str::trim);
    assert_eq!(shown, Some(wanted.as_str()), "status text:\n{text}");

    let json: serde_json::Value =
        serde_json::from_str(&ctl(&cluster, &["status", "--json"])).expect("json");
    assert_eq!(json["cluster_id"], wanted.as_str(), "{json}");

    let log = cluster.log(1);
    let bootstrapped = log
        .lines()
        .find(|line| line.contains("bootstrapped a new cluster"))
        .unwrap_or_else(|| panic!("no bootstrap line in the log:\n{log}"));
    assert!(
        bootstrapped.contains(&format!("cluster_id={wanted}")),
        "the log shows cluster_id={wanted}: {bootstrapped}"
    );
}
