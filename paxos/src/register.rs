//! What each operation does to a register: CASPaxos's change function `f`, applied by the
//! proposer to the value phase 1 found (or the one it cached).

use crate::limits::VERSION_MAX;
use crate::outcome::Outcome;
use crate::types::{Op, Register};

/// The register to propose and the answer to give once it is accepted. A failed condition
/// proposes the register unchanged: the answer is given only once what it saw is chosen.
pub(crate) fn apply(op: &Op, current: &Register) -> (Register, Outcome) {
    match op {
        Op::Get => (current.clone(), Outcome::Value(current.clone())),
        Op::Put { value } => write(current, value),
        Op::Cas {
            expected_version,
            value,
        } if *expected_version == current.version => write(current, value),
        Op::Delete { expected_version }
            if expected_version.is_none_or(|v| v == current.version) =>
        {
            (Register::absent(), Outcome::Written { version: 0 })
        }
        Op::Cas { .. } | Op::Delete { .. } => (
            current.clone(),
            Outcome::Conflict {
                current_version: current.version,
            },
        ),
    }
}

/// A batch of operations applied in order, each to the register the ones before it left:
/// the register to propose and each operation's answer once it is chosen. With `from_base`
/// (the mutant [`crate::Mutant::BatchFromBase`]) every one is computed from `base` instead.
pub(crate) fn apply_batch<'a>(
    ops: impl IntoIterator<Item = &'a Op>,
    base: &Register,
    from_base: bool,
) -> (Register, Vec<Outcome>) {
    let mut current = base.clone();
    let mut outcomes = Vec::new();
    for op in ops {
        let (next, outcome) = apply(op, if from_base { base } else { &current });
        current = next;
        outcomes.push(outcome);
    }
    (current, outcomes)
}

fn write(current: &Register, value: &[u8]) -> (Register, Outcome) {
    if current.version >= VERSION_MAX {
        return (current.clone(), Outcome::VersionExhausted);
    }
    let version = current.version + 1;
    let next = Register {
        value: Some(value.to_vec()),
        version,
    };
    (next, Outcome::Written { version })
}
