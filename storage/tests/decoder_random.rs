//! A CI-sized stand-in for the cargo-fuzz target (storage/fuzz): the record decoders over
//! thousands of random and mutated inputs, and recovery over mutated directories.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use ringraft_raft::HardState;
use ringraft_storage::fuzz_support::check_decoders;
use ringraft_storage::StorageError;

const SEED: u64 = 0x5eed_0004;

/// A real segment image to mutate: every record type appears in it.
fn sample_segment() -> Vec<u8> {
    let temp = tempfile::tempdir().unwrap();
    let options = ringraft_storage::StorageOptions {
        segment_bytes_max: 1 << 20,
        ..small_options()
    };
    let (mut storage, _) = ringraft_storage::Storage::open(temp.path(), options).unwrap();
    storage.append(&entries(1, 20, 1)).unwrap();
    storage
        .save_hard_state(&HardState {
            term: 1,
            vote: Some(2),
            commit: 10,
        })
        .unwrap();
    storage.save_snapshot(&snapshot(10, 1, b"data")).unwrap();
    storage.append(&entries(15, 18, 2)).unwrap();
    storage.sync().unwrap();
    std::fs::read(segment_files(temp.path()).pop().unwrap()).unwrap()
}

fn mutate(rng: &mut impl Rng, input: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..4) {
        if input.is_empty() {
            input.push(rng.gen());
            continue;
        }
        let at = rng.gen_range(0..input.len());
        match rng.gen_range(0..5) {
            0 => input[at] ^= 1 << rng.gen_range(0..8),
            1 => input[at] = rng.gen(),
            2 => input.truncate(at),
            3 => input.insert(at, rng.gen()),
            _ => {
                let end = (at + rng.gen_range(1..8)).min(input.len());
                input[at..end].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0][..end - at]);
            }
        }
    }
}

#[test]
fn decoders_survive_random_and_mutated_input() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(SEED);
    let sample = sample_segment();
    check_decoders(&sample);
    for _ in 0..3000 {
        let len = rng.gen_range(0..200);
        let random: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        check_decoders(&random);
        let mut mutated = sample.clone();
        mutate(&mut rng, &mut mutated);
        check_decoders(&mutated);
    }
}

#[test]
fn recovery_of_mutated_segments_never_panics_and_reports_files() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(SEED + 1);
    let sample = sample_segment();
    // The snapshot file the sample's marker names, so recovery gets past it.
    let snapshot_bytes = {
        let source = tempfile::tempdir().unwrap();
        let (mut storage, _) = open(source.path());
        storage.save_snapshot(&snapshot(10, 1, b"data")).unwrap();
        drop(storage);
        std::fs::read(source.path().join(ringraft_storage::snapshot_file_name(10))).unwrap()
    };
    for round in 0..200 {
        let temp = tempfile::tempdir().unwrap();
        let mut mutated = sample.clone();
        mutate(&mut rng, &mut mutated);
        let segment = temp.path().join(ringraft_storage::segment_file_name(1));
        std::fs::write(&segment, &mutated).unwrap();
        std::fs::write(
            temp.path().join(ringraft_storage::snapshot_file_name(10)),
            &snapshot_bytes,
        )
        .unwrap();
        match try_open(temp.path()) {
            Ok((_, recovered)) => {
                let indexes: Vec<u64> = recovered.entries.iter().map(|e| e.index).collect();
                let contiguous = indexes.windows(2).all(|w| w[1] == w[0] + 1);
                assert!(contiguous, "round {round}: {indexes:?}");
            }
            Err(StorageError::Corrupt { path, .. }) => {
                assert_eq!(path, segment, "round {round}");
            }
            Err(StorageError::Missing { .. }) => {}
            Err(other) => panic!("round {round}: unexpected {other}"),
        }
    }
}
