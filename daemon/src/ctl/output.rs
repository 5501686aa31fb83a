//! How answers are shown: readable text by default, one JSON document per answer with --json.

use ringraft_proto::{
    cluster_id_text, LogRecord, Member, MemberRole, MemberState, NodeRole, RegistersStatus,
    Response, StatusInfo,
};
use serde_json::{json, Value};

use ringraft_client::Error as ClientError;

pub fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Follower => "follower",
        NodeRole::Candidate => "candidate",
        NodeRole::Leader => "leader",
        NodeRole::Learner => "learner",
    }
}

fn member_role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Voter => "voter",
        MemberRole::Learner => "learner",
    }
}

fn member_state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Active => "active",
        MemberState::Draining => "draining",
        MemberState::Down => "down",
    }
}

fn member_json(member: &Member) -> Value {
    json!({
        "id": member.id,
        "name": member.name,
        "address": member.address,
        "zone": member.zone,
        "weight": member.weight,
        "role": member_role_name(member.role),
        "state": member_state_name(member.state),
    })
}

fn status_json(info: &StatusInfo) -> Value {
    json!({
        "node_id": info.node_id,
        "name": info.name,
        "cluster_id": cluster_id_text(info.cluster_id),
        "role": role_name(info.role),
        "term": info.term,
        "leader_id": info.leader_id,
        "commit_index": info.commit_index,
        "applied_index": info.applied_index,
        "last_index": info.last_index,
        "snapshot_index": info.snapshot_index,
        "epoch": info.epoch,
        "member_count": info.member_count,
        "daemon_version": info.daemon_version,
        "registers": {
            "enabled": info.registers.enabled,
            "stable_epoch": info.registers.stable_epoch,
            "transition_epoch": info.registers.transition_epoch,
            "sets_waiting": info.registers.sets_waiting,
            "reports": info.registers.reports,
            "handoff_keys_remaining": info.registers.handoff_keys_remaining,
        },
    })
}

/// The registers' line of the status text: the stable acceptor sets, and a transition's
/// handoff progress while one runs.
fn registers_text(registers: &RegistersStatus) -> String {
    if !registers.enabled {
        return "not enabled yet".into();
    }
    if registers.transition_epoch == 0 {
        return format!("stable at epoch {}", registers.stable_epoch);
    }
    format!(
        "stable at epoch {}, handing off to epoch {}: {} sets waiting, {} reports, {} keys left here",
        registers.stable_epoch,
        registers.transition_epoch,
        registers.sets_waiting,
        registers.reports,
        registers.handoff_keys_remaining
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One log record: `{"index", "data" (lossy UTF-8), "data_hex"}`; `watch --json` prints one
/// per line.
pub fn record_json(record: &LogRecord) -> Value {
    json!({
        "index": record.index,
        "data": String::from_utf8_lossy(&record.data),
        "data_hex": hex(&record.data),
    })
}

/// The JSON document for one answer.
pub fn to_json(response: &Response) -> Value {
    match response {
        Response::Status(info) => status_json(info),
        Response::Members { epoch, members } => json!({
            "epoch": epoch,
            "members": members.iter().map(member_json).collect::<Vec<_>>(),
        }),
        Response::Ring {
            epoch,
            ring,
            members,
            replication_factor,
        } => json!({
            "epoch": epoch,
            "replication_factor": replication_factor,
            "members": members.iter().map(member_json).collect::<Vec<_>>(),
            "ring_hex": hex(ring),
        }),
        Response::RingDelta {
            from_epoch,
            epoch,
            delta,
            members,
            removed,
            replication_factor,
        } => json!({
            "from_epoch": from_epoch,
            "epoch": epoch,
            "replication_factor": replication_factor,
            "members": members.iter().map(member_json).collect::<Vec<_>>(),
            "removed": removed,
            "delta_hex": hex(delta),
        }),
        Response::Owner { epoch, member } => json!({
            "epoch": epoch,
            "owner": member_json(member),
        }),
        Response::Replicas { epoch, members } => json!({
            "epoch": epoch,
            "replicas": members.iter().map(member_json).collect::<Vec<_>>(),
        }),
        Response::Proposed { index } => json!({ "index": index }),
        Response::LogRecords {
            records,
            first_index,
            last_index,
        } => json!({
            "first_index": first_index,
            "last_index": last_index,
            "records": records.iter().map(record_json).collect::<Vec<_>>(),
        }),
        Response::Done { index } => json!({ "done": true, "index": index }),
        Response::KvEntry {
            value,
            version,
            epoch,
        } => json!({
            "found": value.is_some(),
            "value": value.as_deref().map(String::from_utf8_lossy),
            "value_hex": value.as_deref().map(hex),
            "version": version,
            "epoch": epoch,
        }),
        Response::KvWritten { version, epoch } => json!({ "version": version, "epoch": epoch }),
        Response::KvConflict {
            current_version,
            epoch,
        } => json!({
            "error": {
                "status": ringraft_client::Status::Conflict.name(),
                "code": ringraft_client::Status::Conflict.code(),
                "message": format!("the current version is {current_version}"),
            },
            "current_version": current_version,
            "epoch": epoch,
        }),
        Response::Error { status, message } => {
            error_json(&ClientError::new(*status, message.clone()))
        }
    }
}

pub fn error_json(error: &ClientError) -> Value {
    let mut document = json!({
        "error": {
            "status": error.status.name(),
            "code": error.status.code(),
            "message": error.message,
        }
    });
    // A register write refused for its version: the version it found, as `KvConflict` shows it.
    if let Some(current_version) = error.current_version {
        document["current_version"] = json!(current_version);
    }
    document
}

fn member_line(member: &Member) -> String {
    format!(
        "{:<6} {:<16} {:<24} {:<10} {:<6} {:<8} {}",
        member.id,
        member.name,
        member.address,
        if member.zone.is_empty() {
            "-"
        } else {
            &member.zone
        },
        member.weight,
        member_role_name(member.role),
        member_state_name(member.state)
    )
}

fn member_table(members: &[Member]) -> String {
    let mut text = format!(
        "{:<6} {:<16} {:<24} {:<10} {:<6} {:<8} {}\n",
        "ID", "NAME", "ADDRESS", "ZONE", "WEIGHT", "ROLE", "STATE"
    );
    for member in members {
        text.push_str(&member_line(member));
        text.push('\n');
    }
    text
}

/// Marks data shown in hex in text output.
pub const HEX_PREFIX: &str = "hex:";

/// Data as one unambiguous text field: printable UTF-8 text as is; anything else as `hex:` and
/// its bytes in lowercase hex. Text that itself begins with `hex:` is shown in hex too, so
/// `hex:41` always means the byte 0x41 and never the five characters.
pub fn text_or_hex(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) if !text.chars().any(char::is_control) && !text.starts_with(HEX_PREFIX) => {
            text.to_string()
        }
        _ => format!("{HEX_PREFIX}{}", hex(data)),
    }
}

fn record_lines(records: &[LogRecord]) -> String {
    let mut text = String::new();
    for record in records {
        text.push_str(&format!(
            "{}\t{}\n",
            record.index,
            text_or_hex(&record.data)
        ));
    }
    text
}

/// The readable text for one answer (ends with a newline, or is empty).
pub fn to_text(response: &Response) -> String {
    match response {
        Response::Status(info) => {
            let leader = if info.leader_id == 0 {
                "unknown".to_string()
            } else {
                info.leader_id.to_string()
            };
            format!(
                "node          {} ({})\ncluster       {}\nrole          {}\nterm          {}\nleader        {}\ncommit index  {}\napplied index {}\nlast index    {}\nsnapshot      {}\nepoch         {}\nmembers       {}\nregisters     {}\nversion       {}\n",
                info.node_id,
                info.name,
                cluster_id_text(info.cluster_id),
                role_name(info.role),
                info.term,
                leader,
                info.commit_index,
                info.applied_index,
                info.last_index,
                info.snapshot_index,
                info.epoch,
                info.member_count,
                registers_text(&info.registers),
                info.daemon_version
            )
        }
        Response::Members { epoch, members } => {
            format!("epoch {epoch}\n{}", member_table(members))
        }
        Response::Ring {
            epoch,
            ring,
            members,
            replication_factor,
        } => format!(
            "epoch {epoch}, replication factor {replication_factor}, ring encoding {} bytes\n{}",
            ring.len(),
            member_table(members)
        ),
        Response::RingDelta {
            from_epoch,
            epoch,
            delta,
            members,
            removed,
            replication_factor,
        } => format!(
            "epoch {from_epoch} -> {epoch}, replication factor {replication_factor}, ring delta {} bytes, {} removed\n{}",
            delta.len(),
            removed.len(),
            member_table(members)
        ),
        Response::Owner { epoch, member } => format!(
            "{} {} {} (epoch {epoch})\n",
            member.id, member.name, member.address
        ),
        Response::Replicas { epoch, members } => {
            format!("epoch {epoch}\n{}", member_table(members))
        }
        Response::Proposed { index } => format!("committed at index {index}\n"),
        Response::LogRecords { records, .. } => record_lines(records),
        Response::Done { index: 0 } => "done\n".to_string(),
        Response::Done { index } => format!("done at index {index}\n"),
        Response::KvEntry { value: None, .. } => String::new(),
        Response::KvEntry {
            value: Some(value), ..
        } => format!("{}\n", text_or_hex(value)),
        Response::KvWritten { version, epoch } => {
            format!("version {version} (epoch {epoch})\n")
        }
        Response::KvConflict {
            current_version, ..
        } => format!("error: conflict: the current version is {current_version}\n"),
        Response::Error { status, message } => format!("error: {}: {message}\n", status.name()),
    }
}

/// What a `certs` command wrote, as one JSON document.
pub fn certs_json(report: &crate::certs::CertsReport) -> Value {
    json!({
        "files": report.files.iter().map(|file| json!({
            "path": file.path.display().to_string(),
            "kind": file.kind,
            "mode": format!("{:04o}", file.mode),
        })).collect::<Vec<_>>(),
        "node_id": report.node_id,
        "common_name": report.common_name,
        "names": report.names,
        "not_after": report.not_after_rfc3339(),
        "not_after_unix": report.not_after_unix,
    })
}

/// What a `certs` command wrote, as text: one line per file, then the certificate.
pub fn certs_text(report: &crate::certs::CertsReport) -> String {
    let mut text = String::new();
    for file in &report.files {
        text.push_str(&format!(
            "wrote {} ({}, mode {:04o})\n",
            file.path.display(),
            file.kind.replace('_', " "),
            file.mode
        ));
    }
    let subject = match report.node_id {
        Some(id) => format!("node {id} certificate"),
        None => format!("CA certificate {:?}", report.common_name),
    };
    let names = if report.names.is_empty() {
        String::new()
    } else {
        format!(", names {}", report.names.join(" "))
    };
    text.push_str(&format!(
        "{subject}{names}, expires {}\n",
        report.not_after_rfc3339()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registers_line_shows_a_transition_and_its_progress() {
        let mut registers = RegistersStatus::default();
        assert_eq!(registers_text(&registers), "not enabled yet");
        registers.enabled = true;
        registers.stable_epoch = 7;
        assert_eq!(registers_text(&registers), "stable at epoch 7");
        registers.transition_epoch = 9;
        registers.sets_waiting = 3;
        registers.reports = 2;
        registers.handoff_keys_remaining = 41;
        assert_eq!(
            registers_text(&registers),
            "stable at epoch 7, handing off to epoch 9: 3 sets waiting, 2 reports, 41 keys left here"
        );
    }
}
