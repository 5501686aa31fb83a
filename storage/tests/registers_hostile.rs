//! A hostile disk under the register store: damage anywhere but a torn tail of the last segment
//! is a clear `StorageError` naming the file (and offset), never a panic and never silently
//! skipped; random and mutated bytes through every decoder and through recovery.

mod common;

use common::record_offsets;
use common::registers::*;
use rand::{Rng, SeedableRng};
use ringraft_storage::fuzz_support::{check_decoders, check_register_payload};
use ringraft_storage::record::{encode_record, record_type, RECORD_HEADER_BYTES};
use ringraft_storage::StorageError;

const SEED: u64 = 0x5eed_0012;

/// Synced records over several segments, compacted once, then more records.
fn populated() -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    let mut driver = Driver::new(41);
    let (mut store, _) = open(temp.path());
    let mut appended = Vec::new();
    for round in 0..2 {
        for _ in 0..30 {
            let batch = driver.batch(4);
            store.append(&batch).unwrap();
            appended.extend(batch);
        }
        store.sync().unwrap();
        if round == 0 {
            store.compact(State::of(&appended).live()).unwrap();
        }
    }
    assert!(register_segments(temp.path()).len() >= 3);
    assert_eq!(checkpoints(temp.path()).len(), 1);
    temp
}

fn expect_corrupt(error: StorageError, file: &std::path::Path, at: Option<u64>) {
    match &error {
        StorageError::Corrupt { path, offset, .. } => {
            assert_eq!(path, file, "{error}");
            if let Some(at) = at {
                assert_eq!(*offset, at, "{error}");
            }
        }
        other => panic!("expected Corrupt in {}, got {other}", file.display()),
    }
    assert!(error.to_string().contains(&file.display().to_string()));
    assert!(error.is_fatal());
}

#[test]
fn a_flipped_bit_in_a_middle_record_or_a_closed_segment_names_file_and_offset() {
    let original = populated();
    let segments = register_segments(original.path());
    let last = segments.last().unwrap();
    let last_bytes = std::fs::read(last).unwrap();
    let last_offsets = record_offsets(&last_bytes);
    let first_bytes = std::fs::read(&segments[0]).unwrap();
    let first_offsets = record_offsets(&first_bytes);
    let middle = last_offsets.len() / 2;
    let targets = [
        (last, last_offsets[middle], last_offsets[middle + 1]),
        // The seal of a closed segment: it was synced whole, so it is no torn tail.
        (
            &segments[0],
            *first_offsets.last().unwrap(),
            first_bytes.len(),
        ),
    ];
    for (file, start, end) in targets {
        for bit in start * 8..end * 8 {
            let copy = copy_dir(original.path());
            let damaged = copy.path().join(file.file_name().unwrap());
            let mut bytes = std::fs::read(&damaged).unwrap();
            bytes[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&damaged, &bytes).unwrap();
            let error = try_open(copy.path()).expect_err("a flipped bit must stop recovery");
            expect_corrupt(error, &damaged, Some(start as u64));
        }
    }
}

#[test]
fn any_damage_to_the_checkpoint_is_corruption() {
    let original = populated();
    let checkpoint = checkpoints(original.path()).remove(0);
    let bytes = std::fs::read(&checkpoint).unwrap();
    let offsets = record_offsets(&bytes);
    let mut damages: Vec<Vec<u8>> = Vec::new();
    for step in [1, 7, 31, 101] {
        for at in (0..bytes.len()).step_by(step).take(40) {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x04;
            damages.push(flipped);
        }
    }
    // Cut at every record boundary (the end record's count catches those) and inside records.
    for &boundary in &offsets {
        damages.push(bytes[..boundary].to_vec());
        damages.push(bytes[..boundary + 3].to_vec());
    }
    damages.push(Vec::new());
    let mut extra = bytes.clone();
    encode_record(record_type::REGISTER_BALLOTS_RESERVED, &[0; 8], &mut extra);
    damages.push(extra);
    for (n, damaged) in damages.iter().enumerate() {
        let copy = copy_dir(original.path());
        let file = copy.path().join(checkpoint.file_name().unwrap());
        std::fs::write(&file, damaged).unwrap();
        let error = try_open(copy.path()).expect_err("damage to the checkpoint must stop recovery");
        expect_corrupt(error, &file, None);
        let _ = n;
    }
}

/// A header with a valid checksum announcing a payload above the limit, in the middle of the
/// last segment: refused before anything is allocated, and not mistaken for a torn tail.
#[test]
fn an_oversized_length_in_the_middle_is_corruption() {
    let original = populated();
    let last = register_segments(original.path()).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let offsets = record_offsets(&bytes);
    let at = offsets[offsets.len() / 2];
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0..4].copy_from_slice(&(u32::MAX - 16).to_le_bytes());
    header[4] = record_type::REGISTER_KEY;
    let crc = crc32c::crc32c(&header[0..12]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    let mut damaged = bytes.clone();
    damaged[at..at + RECORD_HEADER_BYTES].copy_from_slice(&header);
    std::fs::write(&last, &damaged).unwrap();
    let error = try_open(original.path()).unwrap_err();
    assert!(error.to_string().contains("exceeds the limit"), "{error}");
    expect_corrupt(error, &last, Some(at as u64));
}

#[test]
fn a_cut_closed_segment_is_corruption_and_missing_files_are_named() {
    let original = populated();
    let segments = register_segments(original.path());
    // A closed segment cut short.
    let copy = copy_dir(original.path());
    let file = copy.path().join(segments[0].file_name().unwrap());
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    expect_corrupt(try_open(copy.path()).unwrap_err(), &file, None);
    // The first, a middle and the last segment, and the checkpoint, each deleted.
    let checkpoint = checkpoints(original.path()).remove(0);
    let middle = &segments[segments.len() / 2];
    for gone in [&segments[0], middle, segments.last().unwrap(), &checkpoint] {
        let copy = copy_dir(original.path());
        std::fs::remove_file(copy.path().join(gone.file_name().unwrap())).unwrap();
        match try_open(copy.path()) {
            Err(StorageError::Missing { path, reason }) => {
                if gone != &checkpoint {
                    assert_eq!(path.file_name(), gone.file_name(), "{reason}");
                }
            }
            other => panic!(
                "{} deleted: expected Missing, got {other:?}",
                gone.display()
            ),
        }
    }
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
fn decoders_survive_random_and_mutated_register_records() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(SEED);
    let original = populated();
    let samples: Vec<Vec<u8>> = register_segments(original.path())
        .iter()
        .chain(&checkpoints(original.path()))
        .map(|path| std::fs::read(path).unwrap())
        .collect();
    for _ in 0..3000 {
        let len = rng.gen_range(0..200);
        let random: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        check_decoders(&random);
        let kind = rng.gen_range(30..40);
        check_register_payload(kind, &random);
        let mut mutated = samples[rng.gen_range(0..samples.len())].clone();
        mutate(&mut rng, &mut mutated);
        check_decoders(&mutated);
    }
}

#[test]
fn recovery_of_mutated_directories_never_panics_and_names_the_file() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(SEED + 1);
    let original = populated();
    let mut files = register_segments(original.path());
    files.extend(checkpoints(original.path()));
    for round in 0..300 {
        let copy = copy_dir(original.path());
        let target = copy
            .path()
            .join(files[rng.gen_range(0..files.len())].file_name().unwrap());
        let mut bytes = std::fs::read(&target).unwrap();
        mutate(&mut rng, &mut bytes);
        std::fs::write(&target, &bytes).unwrap();
        match try_open(copy.path()) {
            Ok((_, recovered)) => {
                // Only a torn tail of the last segment may go; what is left replays.
                ringraft_paxos::Acceptor::restore(ringraft_paxos::Config::new(NODE), &recovered)
                    .map(|_| ())
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
            Err(StorageError::Corrupt { path, .. }) => assert_eq!(path, target, "round {round}"),
            Err(StorageError::Missing { .. }) => {}
            Err(other) => panic!("round {round}: unexpected {other}"),
        }
    }
}
