//! A 3-member etcd cluster on 127.0.0.1 (its own ports and data directories, fsync on as etcd
//! always does) and a put client over its gRPC-gateway JSON API.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{base64_encode, HttpConnection};
use crate::load::Operation;
use crate::procs::{free_tcp_ports, spawn_tied, stop_child};

const STOP_GRACE: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct EtcdMember {
    pub name: String,
    pub client_addr: SocketAddr,
    pub log_path: PathBuf,
    child: Child,
}

pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
}

impl EtcdCluster {
    /// Starts `size` members under `dir` (one data directory and log file each).
    pub fn start(etcd: &Path, dir: &Path, size: usize) -> Result<EtcdCluster, String> {
        let ports = free_tcp_ports(size * 2)?;
        let names: Vec<String> = (1..=size).map(|i| format!("etcd{i}")).collect();
        let peer_url = |i: usize| format!("http://127.0.0.1:{}", ports[size + i]);
        let initial_cluster = names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name}={}", peer_url(i)))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members: Vec::new(),
        };
        for (i, name) in names.iter().enumerate() {
            let data_dir = dir.join(name);
            std::fs::create_dir_all(&data_dir)
                .map_err(|err| format!("{}: {err}", data_dir.display()))?;
            let log_path = dir.join(format!("{name}.log"));
            let log =
                File::create(&log_path).map_err(|err| format!("{}: {err}", log_path.display()))?;
            let log_err = log.try_clone().map_err(|err| err.to_string())?;
            let client_addr = SocketAddr::from(([127, 0, 0, 1], ports[i]));
            let client_url = format!("http://{client_addr}");
            let mut command = Command::new(etcd);
            command
                .arg("--name")
                .arg(name)
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url(i)])
                .args(["--initial-advertise-peer-urls", &peer_url(i)])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "ringraft-bench"])
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err));
            let child = spawn_tied(&mut command)
                .map_err(|err| format!("cannot start {}: {err}", etcd.display()))?;
            cluster.members.push(EtcdMember {
                name: name.clone(),
                client_addr,
                log_path,
                child,
            });
        }
        Ok(cluster)
    }

    /// Waits until every member answers and all agree on one leader; returns its index.
    pub fn wait_for_leader(&mut self, deadline: Duration) -> Result<usize, String> {
        let give_up = Instant::now() + deadline;
        loop {
            for member in &mut self.members {
                if let Ok(Some(exit)) = member.child.try_wait() {
                    return Err(format!(
                        "{} exited ({exit}); see {}",
                        member.name,
                        member.log_path.display()
                    ));
                }
            }
            let last_error = match self.leader_index() {
                Ok(index) => return Ok(index),
                Err(err) => err,
            };
            if Instant::now() >= give_up {
                return Err(format!(
                    "etcd has no leader after {deadline:?}: {last_error}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the member every member names as leader.
    pub fn leader_index(&self) -> Result<usize, String> {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for member in &self.members {
            let mut connection = HttpConnection::connect(member.client_addr, REQUEST_TIMEOUT)?;
            let answer = connection.post_json("/v3/maintenance/status", b"{}")?;
            let body = String::from_utf8_lossy(&answer.body);
            if answer.status != 200 {
                return Err(format!("{}: status {}: {body}", member.name, answer.status));
            }
            let id = json_string_field(&body, "member_id")
                .ok_or_else(|| format!("{}: no member_id in {body}", member.name))?;
            let leader = json_string_field(&body, "leader").unwrap_or_default();
            ids.push(id);
            leaders.push(leader);
        }
        let leader = leaders.first().cloned().unwrap_or_default();
        if leader.is_empty() || leader == "0" || leaders.iter().any(|l| *l != leader) {
            return Err(format!("no agreed leader yet: {leaders:?}"));
        }
        ids.iter()
            .position(|id| *id == leader)
            .ok_or_else(|| format!("leader {leader} is not one of {ids:?}"))
    }

    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.members.iter().map(|m| m.client_addr).collect()
    }

    pub fn pids(&self) -> Vec<i32> {
        self.members
            .iter()
            .filter_map(|m| i32::try_from(m.child.id()).ok())
            .collect()
    }

    pub fn stop(&mut self) {
        for member in &mut self.members {
            stop_child(&mut member.child, STOP_GRACE);
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The string value of `"name":"value"` in etcd's compact JSON (uint64 fields are strings in
/// the gateway's JSON). Enough for the two fields the bench reads.
pub fn json_string_field(json: &str, name: &str) -> Option<String> {
    let pattern = format!("\"{name}\":\"");
    let start = json.find(&pattern)? + pattern.len();
    let length = json[start..].find('"')?;
    Some(json[start..start + length].to_string())
}

/// One client: puts `value` under a rotating set of keys of its own.
pub struct EtcdPutClient {
    connection: HttpConnection,
    client_index: usize,
    value_base64: String,
    body: Vec<u8>,
}

/// Keys each client rotates through, so the keyspace stays small however long the run.
const KEYS_PER_CLIENT: u64 = 1024;

impl EtcdPutClient {
    pub fn connect(addr: SocketAddr, client_index: usize, value: &[u8]) -> Result<Self, String> {
        Ok(EtcdPutClient {
            connection: HttpConnection::connect(addr, REQUEST_TIMEOUT)?,
            client_index,
            value_base64: base64_encode(value),
            body: Vec::with_capacity(256),
        })
    }
}

impl Operation for EtcdPutClient {
    fn run(&mut self, sequence: u64) -> Result<(), String> {
        use std::io::Write as _;
        let key = format!("bench/{}/{}", self.client_index, sequence % KEYS_PER_CLIENT);
        self.body.clear();
        write!(
            self.body,
            "{{\"key\":\"{}\",\"value\":\"{}\"}}",
            base64_encode(key.as_bytes()),
            self.value_base64
        )
        .map_err(|err| err.to_string())?;
        let answer = self.connection.post_json("/v3/kv/put", &self.body)?;
        // A successful put answers {"header":{...,"revision":"N",...}}.
        if answer.status != 200 || !answer.body.windows(10).any(|w| w == b"\"revision\"") {
            return Err(format!(
                "put answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_string_fields_of_the_status_answer() {
        let body = r#"{"header":{"cluster_id":"1","member_id":"8211f1d0f64f3269","revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"8211f1d0f64f3269","raftIndex":"8"}"#;
        assert_eq!(
            json_string_field(body, "member_id").as_deref(),
            Some("8211f1d0f64f3269")
        );
        assert_eq!(
            json_string_field(body, "leader").as_deref(),
            Some("8211f1d0f64f3269")
        );
        assert_eq!(json_string_field(body, "missing"), None);
        assert_eq!(
            json_string_field(r#"{"leader":"unterminated"#, "leader"),
            None
        );
    }
}
