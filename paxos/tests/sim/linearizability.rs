//! A per-key linearizability checker for register histories: Wing & Gong's search over the
//! order in which operations take effect, with the (linearized set, register) memo of Lowe and
//! Porcupine. Keys are independent, so each key is checked alone.
//!
//! An operation whose outcome the client never learned (timed out, `Unknown`, its node crashed)
//! has no output and a return time of infinity: the search may place it anywhere after its call,
//! or nowhere (a history is explained once every operation with a known outcome is placed).

use std::collections::{BTreeMap, HashSet};

pub const NEVER_RETURNED: u64 = u64::MAX;

/// Writes carry a value id unique to the write, so a read names the write it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    Get,
    Put(u64),
    Cas { expected: u64, value: u64 },
    Delete { expected: Option<u64> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    Value { value: Option<u64>, version: u64 },
    Written { version: u64 },
    Conflict { current: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub client: u64,
    pub key: u64,
    pub input: Input,
    /// `None`: outcome unknown.
    pub output: Option<Output>,
    pub call: u64,
    pub ret: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct State {
    value: Option<u64>,
    version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable { key: u64, operations: usize },
    Inconclusive { key: u64 },
}

/// The register after `op`, or `None` if `op`'s output is impossible from `state`.
fn step(state: State, op: &Operation) -> Option<State> {
    let written = |value: Option<u64>, version: u64| {
        let ok = op.output.is_none_or(|o| o == Output::Written { version });
        ok.then_some(State { value, version })
    };
    let conflict = || {
        let current = state.version;
        op.output
            .is_none_or(|o| o == Output::Conflict { current })
            .then_some(state)
    };
    match op.input {
        Input::Get => {
            let seen = Output::Value {
                value: state.value,
                version: state.version,
            };
            op.output.is_none_or(|o| o == seen).then_some(state)
        }
        Input::Put(value) => written(Some(value), state.version + 1),
        Input::Cas { expected, value } if expected == state.version => {
            written(Some(value), state.version + 1)
        }
        Input::Cas { .. } => conflict(),
        Input::Delete { expected } if expected.is_none_or(|e| e == state.version) => {
            written(None, 0)
        }
        Input::Delete { .. } => conflict(),
    }
}

pub fn check_history(history: &[Operation], budget: u64) -> Verdict {
    let mut by_key: BTreeMap<u64, Vec<Operation>> = BTreeMap::new();
    // A read whose answer was lost constrains nothing.
    for op in history
        .iter()
        .filter(|o| o.output.is_some() || o.input != Input::Get)
    {
        by_key.entry(op.key).or_default().push(op.clone());
    }
    let mut inconclusive = None;
    for (key, mut ops) in by_key {
        ops.sort_by_key(|o| o.call);
        match check_key(&ops, budget) {
            Some(true) => {}
            Some(false) => {
                return Verdict::NotLinearizable {
                    key,
                    operations: ops.len(),
                }
            }
            None => inconclusive = inconclusive.or(Some(key)),
        }
    }
    match inconclusive {
        Some(key) => Verdict::Inconclusive { key },
        None => Verdict::Linearizable,
    }
}

/// Depth-first search; `None` when the budget ran out.
fn check_key(ops: &[Operation], budget: u64) -> Option<bool> {
    let words = ops.len().div_ceil(64);
    let known_left = ops.iter().filter(|o| o.output.is_some()).count();
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    // Each frame: (linearized set, state, known ops left).
    let mut stack = vec![(vec![0u64; words], State::default(), known_left)];
    let mut steps = 0u64;
    while let Some((done, state, left)) = stack.pop() {
        if left == 0 {
            return Some(true);
        }
        steps += 1;
        if steps > budget {
            return None;
        }
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        let min_ret = (0..ops.len())
            .filter(|&i| !is_done(i))
            .map(|i| ops[i].ret)
            .min()
            .unwrap_or(NEVER_RETURNED);
        // Unknown operations are pushed first so the known ones are tried first (LIFO): a
        // linearizable history is usually explained without placing any unknown one.
        let candidates = ops
            .iter()
            .enumerate()
            .take_while(|(_, op)| op.call < min_ret) // sorted by call: nothing later can go next
            .filter(|&(i, _)| !is_done(i));
        let (unknown, known): (Vec<_>, Vec<_>) =
            candidates.partition(|(_, op)| op.output.is_none());
        for (i, op) in unknown.into_iter().chain(known) {
            let Some(next) = step(state, op) else {
                continue;
            };
            if op.output.is_none() && next == state {
                continue; // an unknown operation that changes nothing is as good as never
            }
            let mut done_next = done.clone();
            done_next[i / 64] |= 1 << (i % 64);
            if seen.insert((done_next.clone(), next)) {
                let left_next = left - usize::from(op.output.is_some());
                stack.push((done_next, next, left_next));
            }
        }
    }
    Some(false)
}
