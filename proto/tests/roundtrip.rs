//! Property tests: every message survives encode → split anywhere → decode unchanged.

use proptest::prelude::*;
use ringraft_proto::*;

fn member() -> impl Strategy<Value = Member> {
    (
        any::<u64>(),
        ".{0,12}",
        ".{0,24}",
        ".{0,6}",
        any::<u32>(),
        prop_oneof![Just(MemberRole::Voter), Just(MemberRole::Learner)],
        prop_oneof![
            Just(MemberState::Active),
            Just(MemberState::Draining),
            Just(MemberState::Down)
        ],
    )
        .prop_map(|(id, name, address, zone, weight, role, state)| Member {
            id,
            name,
            address,
            zone,
            weight,
            role,
            state,
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Status),
        any::<bool>().prop_map(|linearizable| Request::Members { linearizable }),
        any::<bool>().prop_map(|linearizable| Request::Ring { linearizable }),
        (bytes(), any::<bool>())
            .prop_map(|(key, linearizable)| Request::Owner { key, linearizable }),
        (bytes(), any::<u32>(), any::<bool>()).prop_map(|(key, n, linearizable)| {
            Request::Replicas {
                key,
                n,
                linearizable,
            }
        }),
        (any::<u64>(), any::<bool>()).prop_map(|(epoch, linearizable)| Request::RingSince {
            epoch,
            linearizable
        }),
        (bytes(), any::<u32>())
            .prop_map(|(data, timeout_ms)| Request::Propose { data, timeout_ms }),
        (any::<u64>(), any::<u32>()).prop_map(|(from, max)| Request::ReadLog { from, max }),
        any::<u64>().prop_map(|from| Request::WatchLog { from }),
        any::<u64>().prop_map(|request_id| Request::Cancel { request_id }),
        (any::<u64>(), ".{0,8}", ".{0,16}", ".{0,4}", any::<u32>()).prop_map(
            |(id, name, address, zone, weight)| Request::Join {
                id,
                name,
                address,
                zone,
                weight
            }
        ),
        any::<u64>().prop_map(|id| Request::Remove { id }),
        any::<u64>().prop_map(|id| Request::Promote { id }),
        any::<u64>().prop_map(|id| Request::TransferLeader { id }),
        Just(Request::Snapshot),
    ]
}

fn members() -> impl Strategy<Value = Vec<Member>> {
    proptest::collection::vec(member(), 0..5)
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (any::<u64>(), members()).prop_map(|(epoch, members)| Response::Members { epoch, members }),
        (any::<u64>(), bytes(), members(), any::<u32>()).prop_map(
            |(epoch, ring, members, replication_factor)| Response::Ring {
                epoch,
                ring,
                members,
                replication_factor
            }
        ),
        (
            (any::<u64>(), any::<u64>()),
            bytes(),
            members(),
            proptest::collection::vec(any::<u64>(), 0..5),
            any::<u32>()
        )
            .prop_map(
                |((from_epoch, epoch), delta, members, removed, replication_factor)| {
                    Response::RingDelta {
                        from_epoch,
                        epoch,
                        delta,
                        members,
                        removed,
                        replication_factor,
                    }
                }
            ),
        (any::<u64>(), member()).prop_map(|(epoch, member)| Response::Owner { epoch, member }),
        (any::<u64>(), members())
            .prop_map(|(epoch, members)| Response::Replicas { epoch, members }),
        any::<u64>().prop_map(|index| Response::Proposed { index }),
        (
            proptest::collection::vec((any::<u64>(), bytes()), 0..5),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(records, first_index, last_index)| Response::LogRecords {
                records: records
                    .into_iter()
                    .map(|(index, data)| LogRecord { index, data })
                    .collect(),
                first_index,
                last_index,
            }),
        any::<u64>().prop_map(|index| Response::Done { index }),
        (proptest::sample::select(Status::ALL.to_vec()), ".{0,40}")
            .prop_map(|(status, message)| Response::Error { status, message }),
    ]
}

proptest! {
    #[test]
    fn requests_roundtrip_across_any_split(id in any::<u64>(), requests in proptest::collection::vec(request(), 1..6), split in any::<prop::sample::Index>()) {
        let frames: Vec<RequestFrame> = requests
            .into_iter()
            .enumerate()
            .map(|(i, request)| RequestFrame { id: id.wrapping_add(i as u64), request })
            .collect();
        let mut stream = Vec::new();
        for frame in &frames {
            stream.extend(encode_request_frame(frame).unwrap());
        }
        let at = split.index(stream.len() + 1);
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        let mut decoded = Vec::new();
        for part in [&stream[..at], &stream[at..]] {
            decoder.feed(part);
            while let Some(payload) = decoder.next_frame().unwrap() {
                decoded.push(decode_request(&payload).unwrap());
            }
        }
        prop_assert_eq!(decoded, frames);
        prop_assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn responses_roundtrip(id in any::<u64>(), response in response()) {
        let frame = ResponseFrame { id, response };
        let bytes = encode_response_frame(&frame).unwrap();
        let len = parse_frame_header(bytes[..4].try_into().unwrap(), FRAME_BYTES_MAX).unwrap();
        prop_assert_eq!(len, bytes.len() - 4);
        prop_assert_eq!(decode_response(&bytes[4..]).unwrap(), frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic(stream in proptest::collection::vec(any::<u8>(), 0..512), limit in 0usize..1024) {
        let mut decoder = FrameDecoder::new(limit);
        decoder.feed(&stream);
        while let Ok(Some(payload)) = decoder.next_frame() {
            prop_assert!(payload.len() <= limit);
            let _ = decode_request(&payload);
            let _ = decode_response(&payload);
        }
        let _ = decode_request(&stream);
        let _ = decode_response(&stream);
    }
}
