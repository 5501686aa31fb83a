//! A 3-member etcd cluster on 127.0.0.1 (its own ports and data directories, fsync on as etcd
//! always does) and a put client over its gRPC-gateway JSON API.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cas::{CasAnswer, CasStore};
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

/// One connection for compare-and-swap through Txn: compare the key's mod_revision, then put;
/// when the compare fails, the same Txn reads the key, so its current mod_revision comes back
/// in the one round trip (as etcd's own STM does).
pub struct EtcdTxnStore {
    addr: SocketAddr,
    connection: HttpConnection,
    body: Vec<u8>,
}

impl EtcdTxnStore {
    pub fn connect(addr: SocketAddr) -> Result<Self, String> {
        Ok(EtcdTxnStore {
            addr,
            connection: HttpConnection::connect(addr, REQUEST_TIMEOUT)?,
            body: Vec::with_capacity(512),
        })
    }
}

/// `POST /v3/kv/txn`: if mod_revision(key) == `expected` put `value`, else range `key`.
pub fn txn_cas_body(key: &[u8], expected: u64, value: &[u8]) -> String {
    let key = base64_encode(key);
    format!(
        "{{\"compare\":[{{\"key\":\"{key}\",\"target\":\"MOD\",\"result\":\"EQUAL\",\
         \"mod_revision\":\"{expected}\"}}],\
         \"success\":[{{\"request_put\":{{\"key\":\"{key}\",\"value\":\"{}\"}}}}],\
         \"failure\":[{{\"request_range\":{{\"key\":\"{key}\"}}}}]}}",
        base64_encode(value)
    )
}

/// A Txn answer: `"succeeded":true` and the header's revision (the key's new mod_revision), or
/// the mod_revision the failure's range found (0: the key is absent, and the range has no kvs).
/// etcd's JSON omits false and zero fields.
pub fn txn_cas_answer(status: u16, body: &str) -> CasAnswer {
    if status != 200 {
        let lower = body.to_ascii_lowercase();
        let text = format!("txn answered {status}: {body}");
        if lower.contains("timed out") || lower.contains("deadline") {
            return CasAnswer::Unknown(text);
        }
        if lower.contains("too many requests") {
            return CasAnswer::Busy(text);
        }
        return CasAnswer::Failed(text);
    }
    let revision = |field| json_string_field(body, field).and_then(|r| r.parse::<u64>().ok());
    if body.contains("\"succeeded\":true") {
        return match revision("revision") {
            Some(revision) => CasAnswer::Written(revision),
            None => CasAnswer::Failed(format!("txn succeeded without a revision: {body}")),
        };
    }
    if !body.contains("\"response_range\"") {
        return CasAnswer::Failed(format!("txn failed without its range: {body}"));
    }
    CasAnswer::Conflict(revision("mod_revision").unwrap_or(0))
}

impl CasStore for EtcdTxnStore {
    fn cas(&mut self, key: &[u8], expected: u64, value: &[u8]) -> CasAnswer {
        self.body.clear();
        self.body
            .extend_from_slice(txn_cas_body(key, expected, value).as_bytes());
        match self.connection.post_json("/v3/kv/txn", &self.body) {
            Ok(answer) => txn_cas_answer(answer.status, &String::from_utf8_lossy(&answer.body)),
            // The request may have reached the leader: its outcome is unknown. The connection
            // is not reused after a lost answer (a late answer would be read as the next one's).
            Err(err) => match HttpConnection::connect(self.addr, REQUEST_TIMEOUT) {
                Ok(connection) => {
                    self.connection = connection;
                    CasAnswer::Unknown(err)
                }
                Err(reconnect) => CasAnswer::Failed(format!("{err}; reconnecting: {reconnect}")),
            },
        }
    }

    fn version(&mut self, key: &[u8]) -> Result<u64, String> {
        let body = format!("{{\"key\":\"{}\"}}", base64_encode(key));
        let answer = self.connection.post_json("/v3/kv/range", body.as_bytes())?;
        let text = String::from_utf8_lossy(&answer.body);
        if answer.status != 200 {
            return Err(format!("range answered {}: {text}", answer.status));
        }
        Ok(json_string_field(&text, "mod_revision")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_answers_become_cas_answers() {
        let written = r#"{"header":{"cluster_id":"1","member_id":"2","revision":"42","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"42"}}}]}"#;
        assert_eq!(txn_cas_answer(200, written), CasAnswer::Written(42));
        let conflict = r#"{"header":{"revision":"43"},"responses":[{"response_range":{"header":{"revision":"43"},"kvs":[{"key":"aw==","create_revision":"5","mod_revision":"40","version":"3","value":"dg=="}],"count":"1"}}]}"#;
        assert_eq!(txn_cas_answer(200, conflict), CasAnswer::Conflict(40));
        let absent = r#"{"header":{"revision":"43"},"responses":[{"response_range":{"header":{"revision":"43"}}}]}"#;
        assert_eq!(txn_cas_answer(200, absent), CasAnswer::Conflict(0));
        let timeout = r#"{"error":"etcdserver: request timed out","code":14}"#;
        assert!(matches!(
            txn_cas_answer(503, timeout),
            CasAnswer::Unknown(_)
        ));
        assert!(matches!(
            txn_cas_answer(400, r#"{"error":"bad"}"#),
            CasAnswer::Failed(_)
        ));
        assert!(matches!(
            txn_cas_answer(200, r#"{"header":{}}"#),
            CasAnswer::Failed(_)
        ));
    }

    #[test]
    fn a_txn_body_compares_the_mod_revision_then_puts() {
        let body = txn_cas_body(b"k", 7, b"v");
        assert_eq!(
            body,
            r#"{"compare":[{"key":"aw==","target":"MOD","result":"EQUAL","mod_revision":"7"}],"success":[{"request_put":{"key":"aw==","value":"dg=="}}],"failure":[{"request_range":{"key":"aw=="}}]}"#
        );
    }

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
