//! Hostile frames close only their stream; snapshots do not hold up heartbeats; the frame
//! decoder survives random and mutated input.

mod transport_support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ringraft_daemon::transport::close_code;
use ringraft_daemon::transport::wire::{self, LinkFrame};
use ringraft_proto::{codec, CodecError};
use ringraft_raft::{ConfState, Entry, EntryPayload, Message, MessageBody, SnapshotMeta};
use tokio::time::Instant;
use transport_support::*;

#[tokio::test]
async fn oversized_and_garbage_frames_close_the_stream_not_the_node() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    let (_endpoint, conn) = raw_link(&material(&ca, 2), a.handle.local_addr(), 1, 2, 5)
        .await
        .expect("raw link");
    let bad_frame = u64::from(close_code::BAD_FRAME);

    // Length far above the limit: refused from the header alone (nothing allocated for it).
    let oversized = ((FRAME_BYTES_MAX as u32) + 1).to_le_bytes();
    assert_eq!(
        write_unfinished_stream(&conn, &oversized).await,
        Ok(Some(bad_frame))
    );
    let huge = u32::MAX.to_le_bytes();
    assert_eq!(
        write_unfinished_stream(&conn, &huge).await,
        Ok(Some(bad_frame))
    );

    // A plausible length with garbage inside fails the check.
    let mut garbage = 64u32.to_le_bytes().to_vec();
    garbage.extend((0..64u8).map(|i| i.wrapping_mul(37) ^ 0xa5));
    assert_eq!(
        write_unfinished_stream(&conn, &garbage).await,
        Ok(Some(bad_frame))
    );

    // A valid frame followed by garbage: the first is delivered, then the stream is closed.
    let mut mixed = raft_frame(heartbeat(2, 1, 1));
    mixed.extend_from_slice(&garbage);
    assert_eq!(
        write_unfinished_stream(&conn, &mixed).await,
        Ok(Some(bad_frame))
    );
    let first = next_raft(&mut a.inbound, Instant::now() + DEADLINE, |_| true)
        .await
        .expect("the valid frame before the garbage");
    assert_eq!(round_of(&first), Some(1));

    // A zero-length frame and a truncated one.
    assert_eq!(
        write_unfinished_stream(&conn, &0u32.to_le_bytes()).await,
        Ok(Some(bad_frame))
    );
    let truncated = &raft_frame(heartbeat(2, 1, 9))[..10];
    let _ = write_raw_stream(&conn, truncated).await;

    // The connection and the node still work.
    assert_eq!(
        write_raw_stream(&conn, &raft_frame(heartbeat(2, 1, 2))).await,
        Ok(None)
    );
    let next = next_raft(&mut a.inbound, Instant::now() + DEADLINE, |_| true)
        .await
        .expect("valid frame after the bad ones");
    assert_eq!(round_of(&next), Some(2));
    assert!(conn.close_reason().is_none());
    a.handle.shutdown().await;
}

fn snapshot_chunk(from: u64, to: u64, bytes: usize) -> Message {
    Message {
        from,
        to,
        term: 1,
        body: MessageBody::InstallSnapshot {
            meta: SnapshotMeta {
                index: 10,
                term: 1,
                conf_state: ConfState {
                    voters: vec![1, 2],
                    ..ConfState::default()
                },
            },
            offset: 0,
            total_bytes: bytes as u64,
            chunk: (0..bytes).map(|i| (i % 251) as u8).collect(),
            done: true,
        },
    }
}

#[tokio::test]
async fn a_large_snapshot_does_not_hold_up_heartbeats() {
    let ca = new_ca();
    // Far beyond QUIC's stream and connection windows, so the snapshot stream is still sending
    // when the heartbeat is queued; kept moderate so a loaded debug build moves it in time.
    let snapshot_bytes = 12 << 20;
    let frame_bytes_max = 16 << 20;
    let mut a = start_with({
        let mut c = config(1, material(&ca, 1));
        c.frame_bytes_max = frame_bytes_max;
        c
    });
    let mut b = start_with({
        let mut c = config(2, material(&ca, 2));
        c.frame_bytes_max = frame_bytes_max;
        c
    });
    mesh(&[&a, &b]);
    deliver(&a, &mut b, heartbeat(1, 2, 1)).await;

    // The snapshot is queued first, the heartbeat after it: the heartbeat must still arrive
    // first, because snapshots travel on their own lower-priority stream.
    a.handle.send(snapshot_chunk(1, 2, snapshot_bytes));
    a.handle.send(heartbeat(1, 2, 2));
    let deadline = Instant::now() + DEADLINE;
    let first = next_raft(&mut b.inbound, deadline, |m| round_of(m) != Some(1))
        .await
        .expect("first message");
    assert_eq!(
        round_of(&first),
        Some(2),
        "heartbeat waited behind the snapshot"
    );

    let mut snapshot = None;
    let mut sent_ok = false;
    while snapshot.is_none() || !sent_ok {
        tokio::select! {
            msg = next_raft(&mut b.inbound, deadline, |m| round_of(m) != Some(1)), if snapshot.is_none() => {
                snapshot = Some(msg.expect("snapshot arrives"));
            }
            report = tokio::time::timeout_at(deadline, a.inbound.recv()), if !sent_ok => {
                match report.expect("snapshot report") {
                    Some(ringraft_daemon::transport::Inbound::SnapshotSent { to: 2, ok }) => {
                        assert!(ok);
                        sent_ok = true;
                    }
                    Some(_) => {}
                    None => panic!("transport gone"),
                }
            }
        }
    }
    assert_eq!(snapshot, Some(snapshot_chunk(1, 2, snapshot_bytes)));
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

#[tokio::test]
async fn snapshot_to_an_unreachable_peer_is_reported_failed() {
    let ca = new_ca();
    let mut a = start(&ca, 1);
    a.handle.send(snapshot_chunk(1, 5, 16));
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, a.inbound.recv()).await {
            Ok(Some(ringraft_daemon::transport::Inbound::SnapshotSent { to: 5, ok })) => {
                assert!(!ok);
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("expected SnapshotSent, got {other:?}"),
        }
    }
    a.handle.shutdown().await;
}

fn sample_frames() -> Vec<u8> {
    let append = Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::Append {
            prev_log_index: 4,
            prev_log_term: 2,
            entries: vec![
                Entry {
                    term: 3,
                    index: 5,
                    payload: EntryPayload::Normal(b"hello".to_vec()),
                },
                Entry {
                    term: 3,
                    index: 6,
                    payload: EntryPayload::Empty,
                },
            ],
            leader_commit: 4,
        },
    };
    let mut bytes = raft_frame(append);
    bytes.extend(raft_frame(heartbeat(1, 2, 8)));
    bytes.extend(raft_frame(snapshot_chunk(1, 2, 300)));
    bytes
}

#[test]
fn decoder_survives_random_and_mutated_frames() {
    let valid = sample_frames();
    assert_eq!(wire::decode_link_stream(&valid, FRAME_BYTES_MAX), (3, None));

    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut failures = 0usize;
    for round in 0..20_000 {
        let mut bytes = if round % 4 == 0 {
            let len = rng.gen_range(0..512);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            valid.clone()
        };
        let flips = rng.gen_range(1..8);
        for _ in 0..flips {
            if bytes.is_empty() {
                break;
            }
            let at = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..4) {
                0 => bytes[at] ^= 1 << rng.gen_range(0..8),
                1 => bytes[at] = rng.gen(),
                2 => bytes.truncate(at),
                _ => bytes.insert(at, rng.gen()),
            }
        }
        let (decoded, error) = wire::decode_link_stream(&bytes, FRAME_BYTES_MAX);
        assert!(decoded <= 3 || round % 4 == 0);
        if error.is_some() {
            failures += 1;
        }
    }
    // Mutations must be caught, not waved through: most mutated inputs fail the check.
    assert!(
        failures > 10_000,
        "only {failures} of 20000 mutated inputs were rejected"
    );
}

#[test]
fn frame_header_limits() {
    assert_eq!(
        ringraft_proto::parse_frame_header(0u32.to_le_bytes(), 10),
        Err(CodecError::Empty)
    );
    assert_eq!(
        ringraft_proto::parse_frame_header(11u32.to_le_bytes(), 10),
        Err(CodecError::TooLarge { len: 11, max: 10 })
    );
    assert_eq!(
        ringraft_proto::parse_frame_header(10u32.to_le_bytes(), 10),
        Ok(10)
    );
    let frame = raft_frame(heartbeat(1, 2, 3));
    let body_len = frame.len() - 4;
    let too_small_limit = body_len - 1;
    assert!(matches!(
        ringraft_proto::encode_frame(&LinkFrame::Raft(heartbeat(1, 2, 3)), too_small_limit),
        Err(CodecError::TooLarge { .. })
    ));
    assert_eq!(
        wire::decode_link_stream(&frame[..frame.len() - 1], FRAME_BYTES_MAX),
        (0, Some(CodecError::Truncated))
    );
    // An unaligned body decodes the same (it is copied into an aligned buffer first).
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&frame[4..]);
    let decoded: LinkFrame = codec::decode(&shifted[1..]).expect("unaligned body");
    assert_eq!(decoded, LinkFrame::Raft(heartbeat(1, 2, 3)));
}
