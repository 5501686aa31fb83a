//! Test vectors: ring/testdata/vectors.json holds membership histories with the tokens,
//! encoding, owners and replica lists they must give (format in docs/ring.md). The check
//! compares this implementation against the committed file; the ignored test rewrites it:
//!
//!     cargo test -p ringraft-ring --test vectors -- --ignored regenerate_vectors

mod common;

use common::{apply, Change};
use ringraft_ring::{key_position, Member, MemberState, Ring, RingState};
use serde_json::{json, Value};

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors.json");

struct Case {
    name: &'static str,
    vnodes: u32,
    history: Vec<Change>,
}

fn zoned(id: u64, weight: u32, zone: &str) -> Change {
    Change::Join(Member::new(id, weight).with_zone(zone))
}

fn cases() -> Vec<Case> {
    use Change::*;
    vec![
        Case {
            name: "one-member",
            vnodes: 4,
            history: vec![zoned(7, 1, "")],
        },
        Case {
            name: "three-members",
            vnodes: 8,
            history: vec![zoned(1, 1, ""), zoned(2, 1, ""), zoned(3, 1, "")],
        },
        Case {
            name: "weights-zones-states",
            vnodes: 8,
            history: vec![
                zoned(10, 1, "a"),
                zoned(20, 2, "a"),
                zoned(30, 1, "b"),
                zoned(40, 3, "c"),
                zoned(50, 1, ""),
                SetState(20, MemberState::Draining),
                SetState(40, MemberState::Down),
            ],
        },
        Case {
            name: "churn",
            vnodes: 16,
            history: vec![
                zoned(1, 1, "east"),
                zoned(2, 1, "west"),
                zoned(3, 2, "east"),
                zoned(4, 1, "west"),
                zoned(5, 1, "north"),
                zoned(6, 1, ""),
                Leave(3),
                zoned(7, 1, "east"),
                SetWeight(5, 3),
                SetWeight(1, 0),
                SetZone(6, "north".to_owned()),
                SetState(2, MemberState::Down),
                SetState(2, MemberState::Active),
            ],
        },
        Case {
            name: "lone-member-grows",
            vnodes: 3,
            history: vec![zoned(1, 1, ""), SetWeight(1, 3), zoned(2, 2, "")],
        },
        Case {
            name: "large-ids",
            vnodes: 32,
            history: (0..12u64)
                .map(|i| {
                    zoned(
                        u64::MAX - i * 0x0123_4567_89ab,
                        1 + (i % 3) as u32,
                        ["x", "y", "z", ""][i as usize % 4],
                    )
                })
                .collect(),
        },
    ]
}

fn change_json(change: &Change, epoch: u64) -> Value {
    let epoch = epoch.to_string();
    match change {
        Change::Join(m) => {
            json!({"op": "join", "epoch": epoch, "id": m.id.to_string(), "weight": m.weight, "zone": m.zone, "state": state_name(m.state)})
        }
        Change::Leave(id) => json!({"op": "leave", "epoch": epoch, "id": id.to_string()}),
        Change::SetState(id, s) => {
            json!({"op": "set_state", "epoch": epoch, "id": id.to_string(), "state": state_name(*s)})
        }
        Change::SetWeight(id, w) => {
            json!({"op": "set_weight", "epoch": epoch, "id": id.to_string(), "weight": w})
        }
        Change::SetZone(id, z) => {
            json!({"op": "set_zone", "epoch": epoch, "id": id.to_string(), "zone": z})
        }
    }
}

fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Active => "active",
        MemberState::Draining => "draining",
        MemberState::Down => "down",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![b"".to_vec(), b"a".to_vec(), b"hello".to_vec()];
    keys.extend((0..24).map(|i| format!("key-{i}").into_bytes()));
    keys.extend((0..8u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes().to_vec()));
    keys.push((0..=255u8).collect());
    keys
}

fn case_json(case: &Case) -> Value {
    let mut state = RingState::new(case.vnodes).expect("vnodes");
    let mut history = Vec::new();
    for (index, change) in case.history.iter().enumerate() {
        let epoch = index as u64 + 1;
        apply(&mut state, change, epoch).expect("vector histories are valid");
        history.push(change_json(change, epoch));
    }
    let members: Vec<Value> = state
        .members()
        .map(|m| {
            let tokens: Vec<String> = state.tokens_of(m.id).iter().map(u64::to_string).collect();
            json!({"id": m.id.to_string(), "weight": m.weight, "zone": m.zone, "state": state_name(m.state), "tokens": tokens})
        })
        .collect();
    let ring = Ring::new(state.clone());
    let owner = |position: u64| ring.owner_at(position).map(|o| o.member.to_string());
    let lookups: Vec<Value> = keys()
        .iter()
        .map(|key| {
            let replicas: Vec<String> = ring
                .replicas(key, 5)
                .members
                .iter()
                .map(u64::to_string)
                .collect();
            json!({
                "key_hex": hex(key),
                "position": key_position(key).to_string(),
                "owner": ring.owner(key).map(|o| o.member.to_string()),
                "replicas_5": replicas,
            })
        })
        .collect();
    let mut probe_positions = vec![0, u64::MAX];
    if let (Some(first), Some(last)) = (state.tokens().next(), state.tokens().next_back()) {
        probe_positions.extend([
            first.position,
            first.position.wrapping_add(1),
            last.position,
            last.position.wrapping_add(1),
        ]);
    }
    let probes: Vec<Value> = probe_positions
        .iter()
        .map(|&p| json!({"position": p.to_string(), "owner": owner(p)}))
        .collect();
    json!({
        "name": case.name,
        "vnodes": case.vnodes,
        "history": history,
        "epoch": state.epoch().to_string(),
        "members": members,
        "encoding_hex": hex(&state.encode()),
        "lookups": lookups,
        "probes": probes,
    })
}

fn vectors() -> Value {
    json!({
        "description": "ringraft ring test vectors; see docs/ring.md. u64 values are decimal strings.",
        "hash": "xxh3-64, seed 0",
        "cases": cases().iter().map(case_json).collect::<Vec<_>>(),
    })
}

#[test]
fn implementation_matches_committed_vectors() {
    let text = std::fs::read_to_string(VECTORS_PATH).expect("testdata/vectors.json is committed");
    let committed: Value = serde_json::from_str(&text).expect("vectors are JSON");
    let computed = vectors();
    assert_eq!(committed["hash"], computed["hash"]);
    let committed_cases = committed["cases"].as_array().expect("cases");
    let computed_cases = computed["cases"].as_array().expect("cases");
    assert_eq!(committed_cases.len(), computed_cases.len(), "case count");
    for (want, got) in committed_cases.iter().zip(computed_cases) {
        let name = &want["name"];
        for field in ["history", "epoch", "members", "encoding_hex", "probes"] {
            assert_eq!(want[field], got[field], "case {name}: {field}");
        }
        let (want_lookups, got_lookups) = (
            want["lookups"].as_array().expect("lookups"),
            got["lookups"].as_array().expect("lookups"),
        );
        assert_eq!(
            want_lookups.len(),
            got_lookups.len(),
            "case {name}: lookup count"
        );
        for (w, g) in want_lookups.iter().zip(got_lookups) {
            assert_eq!(w, g, "case {name}: key {}", w["key_hex"]);
        }
    }
}

#[test]
fn committed_encodings_decode_to_the_same_answers() {
    let text = std::fs::read_to_string(VECTORS_PATH).expect("testdata/vectors.json is committed");
    let committed: Value = serde_json::from_str(&text).expect("vectors are JSON");
    for case in committed["cases"].as_array().expect("cases") {
        let bytes: Vec<u8> = (0..case["encoding_hex"].as_str().expect("hex").len() / 2)
            .map(|i| {
                u8::from_str_radix(
                    &case["encoding_hex"].as_str().expect("hex")[2 * i..2 * i + 2],
                    16,
                )
                .expect("hex digit")
            })
            .collect();
        let ring = Ring::decode(&bytes).expect("committed encoding decodes");
        for probe in case["probes"].as_array().expect("probes") {
            let position: u64 = probe["position"]
                .as_str()
                .expect("position")
                .parse()
                .expect("u64");
            let owner = ring.owner_at(position).map(|o| o.member.to_string());
            assert_eq!(
                probe["owner"],
                json!(owner),
                "case {}: probe {position}",
                case["name"]
            );
        }
    }
}

#[test]
#[ignore = "rewrites testdata/vectors.json; run after a deliberate change to the specification"]
fn regenerate_vectors() {
    let text = serde_json::to_string_pretty(&vectors()).expect("serialize") + "\n";
    std::fs::write(VECTORS_PATH, text).expect("write vectors");
}
