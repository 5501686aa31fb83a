//! A CI-affordable stand-in for the fuzz target (proto/fuzz): many random and mutated frames
//! thrown at the decoder. Any panic fails the test; every error must be a typed CodecError.
//! `RINGRAFT_HOSTILE_CASES` raises the number of cases (default 100,000).

use ringraft_proto::*;

/// splitmix64: deterministic, so a failure reproduces from the printed case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed_frames() -> Vec<Vec<u8>> {
    let requests = [
        Request::Status,
        Request::Owner {
            key: b"k".to_vec(),
            linearizable: true,
        },
        Request::Replicas {
            key: b"some-key".to_vec(),
            n: 3,
            linearizable: false,
        },
        Request::Propose {
            data: vec![7; 40],
            timeout_ms: 500,
        },
        Request::Join {
            id: 4,
            name: "n4".into(),
            address: "127.0.0.1:7004".into(),
            zone: "a".into(),
            weight: 1,
        },
    ];
    let mut frames: Vec<Vec<u8>> = requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            encode_request_frame(&RequestFrame {
                id: i as u64,
                request,
            })
            .unwrap()
        })
        .collect();
    let member = Member {
        id: 1,
        name: "n1".into(),
        address: "127.0.0.1:7001".into(),
        zone: String::new(),
        weight: 1,
        role: MemberRole::Voter,
        state: MemberState::Active,
    };
    frames.push(
        encode_response_frame(&ResponseFrame {
            id: 1,
            response: Response::Members {
                epoch: 3,
                members: vec![member.clone(), member],
            },
        })
        .unwrap(),
    );
    frames
}

fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !frame.is_empty() => {
                let at = rng.below(frame.len());
                frame[at] ^= 1 << rng.below(8);
            }
            1 if !frame.is_empty() => {
                let at = rng.below(frame.len());
                frame[at] = rng.next() as u8;
            }
            2 => frame.truncate(rng.below(frame.len() + 1)),
            3 => {
                let at = rng.below(frame.len() + 1);
                frame.insert(at, rng.next() as u8);
            }
            _ => {
                // Keep the length prefix consistent so the payload mutation reaches rkyv.
                if frame.len() >= 4 {
                    let len = (frame.len() - 4) as u32;
                    frame[..4].copy_from_slice(&len.to_le_bytes());
                }
            }
        }
    }
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let cases: usize = std::env::var("RINGRAFT_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seeds = seed_frames();
    let mut rng = Rng(0x5EED);
    let mut decoded_ok = 0usize;
    let mut malformed = 0usize;
    for case in 0..cases {
        let mut stream = if rng.below(4) == 0 {
            (0..rng.below(256)).map(|_| rng.next() as u8).collect()
        } else {
            let mut frame = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &mut frame);
            frame
        };
        if rng.below(2) == 0 {
            stream.extend(&seeds[rng.below(seeds.len())]);
        }
        let limit = [16, 256, FRAME_BYTES_MAX][rng.below(3)];
        let mut decoder = FrameDecoder::new(limit);
        let mut at = 0;
        while at < stream.len() {
            let step = 1 + rng.below(stream.len() - at);
            decoder.feed(&stream[at..at + step]);
            at += step;
            loop {
                match decoder.next_frame() {
                    Ok(Some(payload)) => {
                        assert!(payload.len() <= limit, "case {case}");
                        match (decode_request(&payload), decode_response(&payload)) {
                            (Ok(_), _) | (_, Ok(_)) => decoded_ok += 1,
                            (Err(e), _) => {
                                assert_eq!(e.status(), Status::Malformed, "case {case}");
                                assert!(
                                    !e.to_string().contains("debug assertions"),
                                    "case {case}: rkyv's text leaked: {e}"
                                );
                                malformed += 1;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert!(
                            matches!(e, CodecError::TooLarge { .. } | CodecError::Empty),
                            "case {case}: {e}"
                        );
                        break;
                    }
                }
            }
        }
    }
    // The corpus must exercise both outcomes or the test proves nothing.
    assert!(
        decoded_ok > 0 && malformed > 0,
        "ok {decoded_ok}, malformed {malformed}"
    );
}
