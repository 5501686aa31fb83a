//! The history of a campaign: one JSON document per line.
//!
//! ```text
//! {"type":"meta","format":"ringraft-campaign-history/1","seed":7,"nodes":3,...}
//! {"type":"op","id":1,"client":2,"node":1,"invoke_us":1200,"complete_us":5400,
//!  "call":{"kind":"propose","payload":"p2.1"},"outcome":{"ok":{"index":17}}}
//! {"type":"fault","kind":"kill9","detail":"n2","start_us":..,"end_us":..}
//! {"type":"event","at_us":..,"node":2,"what":"exited: exit code 1"}
//! {"type":"final_log","node":1,"first_index":1,"last_index":812,"records":[[3,"p1.1"],...]}
//! {"type":"end","workload_end_us":..}
//! ```
//!
//! Times are microseconds since the campaign's clock started (one monotonic clock, in the harness
//! process). An op is written when it completes; an op still running when the workload stops is
//! written as unknown. Outcomes follow Jepsen: `ok` (the daemon answered with success), `fail`
//! (a definite failure: the request was refused and cannot take effect), `unknown` (a timeout, a
//! lost connection, a node that stopped while answering: it may or may not have taken effect).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "ringraft-campaign-history/1";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Meta(Meta),
    Op(Op),
    Fault(FaultRecord),
    Event(Event),
    FinalLog(FinalLog),
    End(End),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Meta {
    pub format: String,
    pub seed: u64,
    pub nodes: u64,
    /// How long the workload was meant to run, in seconds.
    pub duration_s: u64,
    /// Whether the nodes' data directories were on the fault filesystem.
    pub faultfs: bool,
    /// Free text: the command that reproduces the run.
    pub reproduce: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Op {
    pub id: u64,
    pub client: u32,
    /// The node whose socket the client used.
    pub node: u64,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub call: Call,
    pub outcome: Outcome,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Call {
    /// Propose `payload` (unique in the history).
    Propose {
        payload: String,
    },
    /// ReadLog from `from`, at most `max` records.
    ReadLog {
        from: u64,
        max: u32,
    },
    /// A linearizable read: Owner{key, linearizable} and then, on the same connection (the same
    /// daemon process), the node's applied index.
    LinRead {
        key: String,
    },
    Owner {
        key: String,
        linearizable: bool,
    },
    Replicas {
        key: String,
        n: u32,
        linearizable: bool,
    },
    /// One session of a watch: WatchLog{from} on one connection until it ended. A watcher's
    /// sessions are numbered; the next one starts after the last record the previous delivered.
    Watch {
        watcher: u32,
        session: u32,
        from: u64,
    },
    Join {
        id: u64,
    },
    Remove {
        id: u64,
    },
    Promote {
        id: u64,
    },
    /// A register read (`KvGet`). One invoked after the workload stopped is a final read.
    KvGet {
        key: String,
    },
    /// A register compare-and-swap (`KvCas`): `value` if the version is `expected_version`.
    /// The registers workload writes `"<count> <tag>"`, the tag unique in the history.
    KvCas {
        key: String,
        expected_version: u64,
        value: String,
    },
}

impl Call {
    pub fn kind(&self) -> &'static str {
        match self {
            Call::Propose { .. } => "propose",
            Call::ReadLog { .. } => "read_log",
            Call::LinRead { .. } => "lin_read",
            Call::Owner { .. } => "owner",
            Call::Replicas { .. } => "replicas",
            Call::Watch { .. } => "watch",
            Call::Join { .. } => "join",
            Call::Remove { .. } => "remove",
            Call::Promote { .. } => "promote",
            Call::KvGet { .. } => "kv_get",
            Call::KvCas { .. } => "kv_cas",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(Answer),
    Fail {
        status: String,
        message: String,
        /// kv_cas answered `conflict`: the register's version then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current_version: Option<u64>,
    },
    Unknown {
        reason: String,
    },
}

/// What a successful call answered; only the fields its kind has are set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Answer {
    /// propose: the committed index; join/remove/promote: the index of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// owner/replicas/lin_read: the ring epoch the answer carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// read_log/lin_read: the node's highest applied index when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
    /// owner/lin_read: the owner's node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<u64>>,
    /// read_log/watch: the records delivered, in delivery order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Record>>,
    /// watch: how the session ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// kv_get: the register's version (0: absent); kv_cas: the version it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// kv_get: the register's value (absent: none; UTF-8 or `hex:` as log data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One application log record: its index and its data (UTF-8, or `hex:` and the bytes in hex).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record(pub u64, pub String);

/// A fault the nemesis injected, from injection to heal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FaultRecord {
    pub kind: String,
    pub detail: String,
    pub start_us: u64,
    pub end_us: u64,
}

/// Something the harness saw that is not an op (a node exiting by itself, a restart).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    pub at_us: u64,
    pub node: u64,
    pub what: String,
}

/// A node's whole readable application log once everything was healed and the workload stopped.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct FinalLog {
    pub node: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub records: Vec<Record>,
    /// Why the log could not be read (then `records` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct End {
    pub workload_end_us: u64,
}

/// Log data as the history spells it.
pub fn data_string(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) if !text.starts_with("hex:") => text.to_string(),
        _ => {
            let mut out = String::with_capacity(4 + data.len() * 2);
            out.push_str("hex:");
            for byte in data {
                out.push_str(&format!("{byte:02x}"));
            }
            out
        }
    }
}

/// A history in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub meta: Meta,
    pub ops: Vec<Op>,
    pub faults: Vec<FaultRecord>,
    pub events: Vec<Event>,
    pub final_logs: Vec<FinalLog>,
    pub workload_end_us: u64,
}

impl History {
    pub fn push(&mut self, line: Line) {
        match line {
            Line::Meta(meta) => self.meta = meta,
            Line::Op(op) => self.ops.push(op),
            Line::Fault(fault) => self.faults.push(fault),
            Line::Event(event) => self.events.push(event),
            Line::FinalLog(log) => self.final_logs.push(log),
            Line::End(end) => self.workload_end_us = end.workload_end_us,
        }
    }

    pub fn lines(&self) -> Vec<Line> {
        let mut lines = vec![Line::Meta(self.meta.clone())];
        lines.extend(self.ops.iter().cloned().map(Line::Op));
        lines.extend(self.faults.iter().cloned().map(Line::Fault));
        lines.extend(self.events.iter().cloned().map(Line::Event));
        lines.extend(self.final_logs.iter().cloned().map(Line::FinalLog));
        lines.push(Line::End(End {
            workload_end_us: self.workload_end_us,
        }));
        lines
    }

    pub fn parse(text: &str) -> Result<History, String> {
        let mut history = History::default();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line =
                serde_json::from_str(line).map_err(|err| format!("line {}: {err}", number + 1))?;
            history.push(parsed);
        }
        if history.meta.format != FORMAT {
            return Err(format!(
                "not a campaign history (format {:?}, expected {FORMAT:?})",
                history.meta.format
            ));
        }
        Ok(history)
    }

    pub fn load(path: &Path) -> Result<History, String> {
        let file = std::fs::File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
        let mut text = String::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|err| format!("{}: {err}", path.display()))?;
            text.push_str(&line);
            text.push('\n');
        }
        History::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            out.push_str(&serde_json::to_string(&line).expect("history lines serialize"));
            out.push('\n');
        }
        out
    }
}

/// Writes a history file as things happen, shared by the workload threads and the nemesis.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<RecorderInner>,
}

struct RecorderInner {
    start: Instant,
    next_op: AtomicU64,
    out: Mutex<BufWriter<std::fs::File>>,
}

impl Recorder {
    pub fn create(path: &Path, meta: Meta) -> std::io::Result<Recorder> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::File::create(path)?;
        let recorder = Recorder {
            inner: Arc::new(RecorderInner {
                start: Instant::now(),
                next_op: AtomicU64::new(1),
                out: Mutex::new(BufWriter::new(file)),
            }),
        };
        recorder.write(&Line::Meta(meta));
        Ok(recorder)
    }

    /// Microseconds since the campaign's clock started.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.inner.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn next_op_id(&self) -> u64 {
        self.inner.next_op.fetch_add(1, Ordering::Relaxed)
    }

    pub fn write(&self, line: &Line) {
        let text = serde_json::to_string(line).expect("history lines serialize");
        let mut out = self.inner.out.lock().unwrap_or_else(|e| e.into_inner());
        // A history that cannot be written is a harness failure the checker will notice (a
        // truncated file does not parse); the campaign goes on.
        let _ = writeln!(out, "{text}");
    }

    pub fn flush(&self) {
        let mut out = self.inner.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.flush();
    }

    pub fn event(&self, node: u64, what: impl Into<String>) {
        self.write(&Line::Event(Event {
            at_us: self.now_us(),
            node,
            what: what.into(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let op = Line::Op(Op {
            id: 1,
            client: 2,
            node: 3,
            invoke_us: 10,
            complete_us: 20,
            call: Call::Propose {
                payload: "p2.1".into(),
            },
            outcome: Outcome::Ok(Answer {
                index: Some(17),
                ..Answer::default()
            }),
        });
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(
            text,
            r#"{"type":"op","id":1,"client":2,"node":3,"invoke_us":10,"complete_us":20,"call":{"kind":"propose","payload":"p2.1"},"outcome":{"ok":{"index":17}}}"#
        );
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), op);
        let fail = Outcome::Fail {
            status: "no_leader".into(),
            message: "x".into(),
            current_version: None,
        };
        let text = serde_json::to_string(&fail).unwrap();
        assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), fail);
    }

    #[test]
    fn data_that_is_not_text_is_hex() {
        assert_eq!(data_string(b"p1.2"), "p1.2");
        assert_eq!(data_string(&[0xff, 0x00]), "hex:ff00");
        assert_eq!(data_string(b"hex:12"), "hex:6865783a3132");
    }
}
