//! `ringraftd run` refuses a configuration it cannot serve before it touches the data directory,
//! and says why once.

mod common;

use std::process::Command;

use common::{unused_udp_address, TempDir, RINGRAFTD};
use ringraft_daemon::certs::dev_certs;
use ringraft_daemon::config::{Config, InitialMember, TlsConfig};
use ringraft_daemon::run::EXIT_FATAL;

#[test]
fn a_missing_certificate_fails_before_the_data_dir_is_touched_and_is_reported_once() {
    let tmp = TempDir::new("run-missing-cert");
    let certs = dev_certs(&tmp.0.join("certs"), &[1]).expect("dev certificates");
    let files = &certs[0].1;
    std::fs::remove_file(&files.node_cert).expect("remove the node certificate");
    let data_dir = tmp.0.join("data");
    std::fs::create_dir(&data_dir).expect("fresh data dir");
    let listen = unused_udp_address();
    let config = Config {
        node_id: 1,
        data_dir: data_dir.clone(),
        socket_path: tmp.0.join("ringraftd.sock"),
        listen,
        tls: TlsConfig {
            ca: files.ca_cert.clone(),
            cert: files.node_cert.clone(),
            key: files.node_key.clone(),
        },
        initial_members: vec![InitialMember {
            id: 1,
            address: listen,
            name: String::new(),
            zone: String::new(),
            weight: 1,
        }],
        ..Config::default()
    };
    let config_path = tmp.0.join("ringraftd.toml");
    std::fs::write(&config_path, toml::to_string_pretty(&config).unwrap()).unwrap();

    let output = Command::new(RINGRAFTD)
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .env("RINGRAFT_LOG", "info")
        .output()
        .expect("run ringraftd");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(EXIT_FATAL), "stderr:\n{stderr}");
    let missing = files.node_cert.display().to_string();
    let naming = stderr
        .lines()
        .filter(|line| line.contains(&missing))
        .count();
    assert_eq!(
        naming, 1,
        "the error naming {missing} is printed exactly once; stderr:\n{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&data_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the data dir is left as it was, found {left:?}; stderr:\n{stderr}"
    );
    assert!(
        !tmp.0.join("ringraftd.sock").exists(),
        "no socket is left behind"
    );
}
