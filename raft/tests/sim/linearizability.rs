//! A linearizability checker for the simulator's client history, in the style of Wing & Gong with
//! the memoization of Lowe / Porcupine: depth-first search over the order in which pending
//! operations take effect, pruned by a cache of (set of linearized operations, model state).
//!
//! The model is one integer register per key that supports `Put`, `Add` (returns the new value) and
//! `Read`. Keys are independent, so a history is checked one key at a time (P-compositionality).
//!
//! An operation whose outcome the client never learned (timed out, node crashed) is "possibly
//! applied": it gets a return time of infinity and an unconstrained output, so the search may
//! place it anywhere after its call, including after everything else (which is the same as never).

use std::collections::{BTreeMap, HashSet};

/// Return time of an operation whose outcome is unknown.
pub const NEVER_RETURNED: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Put(i64),
    Add(i64),
    Read,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub client: u64,
    pub key: u64,
    pub input: Input,
    /// The value the client observed: the new value for `Add`, the value read for `Read`, nothing
    /// for `Put`. `None` also when the outcome is unknown.
    pub output: Option<i64>,
    /// Logical times (unique per event) of the invocation and of the response.
    pub call: u64,
    pub ret: u64,
}

impl Operation {
    pub fn outcome_known(&self) -> bool {
        self.ret != NEVER_RETURNED
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order of the operations of `key` explains what the clients saw.
    NotLinearizable {
        key: u64,
        operations: Vec<Operation>,
    },
    /// The search of `key` gave up after `budget` steps.
    Inconclusive {
        key: u64,
        budget: u64,
    },
}

/// What one operation does to the register, or `None` if its recorded output is impossible from
/// `state`.
fn apply(state: i64, op: &Operation) -> Option<i64> {
    match op.input {
        Input::Put(value) => Some(value),
        Input::Add(delta) => {
            let next = state.wrapping_add(delta);
            match op.output {
                Some(observed) if observed != next => None,
                _ => Some(next),
            }
        }
        Input::Read => match op.output {
            Some(observed) if observed != state => None,
            _ => Some(state),
        },
    }
}

/// Checks every key of `history` separately; each key's search explores at most `budget` steps.
/// Returns the first non-linearizable key found, else the first inconclusive one, else success.
pub fn check_history(history: &[Operation], budget: u64) -> Verdict {
    let mut by_key: BTreeMap<u64, Vec<Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key).or_default().push(op.clone());
    }
    let mut inconclusive = None;
    for (key, ops) in by_key {
        let ops = drop_unobserved_unknown_puts(ops);
        match check_key(&ops, budget) {
            KeyVerdict::Linearizable => {}
            KeyVerdict::NotLinearizable => {
                return Verdict::NotLinearizable {
                    key,
                    operations: ops,
                }
            }
            KeyVerdict::Inconclusive => {
                inconclusive.get_or_insert(Verdict::Inconclusive { key, budget });
            }
        }
    }
    inconclusive.unwrap_or(Verdict::Linearizable)
}

/// A `Put` of unknown outcome whose value nobody ever observed can be dropped without changing the
/// verdict, as long as the key sees no `Add` (which would carry the value on) and put values are
/// unique: any linearization with it stays one without it, and vice versa by placing it last.
/// This keeps the search small when many writes time out.
fn drop_unobserved_unknown_puts(ops: Vec<Operation>) -> Vec<Operation> {
    if ops.iter().any(|op| matches!(op.input, Input::Add(_))) {
        return ops;
    }
    let mut put_counts: BTreeMap<i64, usize> = BTreeMap::new();
    for op in &ops {
        if let Input::Put(value) = op.input {
            *put_counts.entry(value).or_default() += 1;
        }
    }
    let observed: HashSet<i64> = ops.iter().filter_map(|op| op.output).collect();
    ops.into_iter()
        .filter(|op| match op.input {
            Input::Put(value) => {
                op.outcome_known() || observed.contains(&value) || put_counts[&value] > 1
            }
            _ => true,
        })
        .collect()
}

enum KeyVerdict {
    Linearizable,
    NotLinearizable,
    Inconclusive,
}

/// A fixed-size bit set of operation indices; the memoization key together with the state.
#[derive(Clone, PartialEq, Eq, Hash)]
struct OpSet(Vec<u64>);

impl OpSet {
    fn new(len: usize) -> OpSet {
        OpSet(vec![0; len.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The search works on a doubly linked list of call and return events in time order; linearizing
/// an operation unlinks both of its events, backtracking links them back in.
struct EventList {
    /// Event `2*i` is the call of operation `i`, `2*i + 1` its return. Slot `head` is a sentinel.
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
}

const NIL: usize = usize::MAX;

impl EventList {
    fn new(ops: &[Operation]) -> EventList {
        let mut events: Vec<(u64, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, 2 * i));
            events.push((op.ret, 2 * i + 1));
        }
        // Ties only happen between returns at infinity; any order of those is fine.
        events.sort();
        let head = ops.len() * 2;
        let mut next = vec![NIL; head + 1];
        let mut prev = vec![NIL; head + 1];
        let mut last = head;
        for &(_, event) in &events {
            next[last] = event;
            prev[event] = last;
            last = event;
        }
        EventList { next, prev, head }
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }

    fn unlink(&mut self, event: usize) {
        let (p, n) = (self.prev[event], self.next[event]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    /// Undoes `unlink(event)`; valid only in reverse order of the unlinks.
    fn relink(&mut self, event: usize) {
        let (p, n) = (self.prev[event], self.next[event]);
        self.next[p] = event;
        if n != NIL {
            self.prev[n] = event;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(2 * op);
        self.unlink(2 * op + 1);
    }

    fn unlift(&mut self, op: usize) {
        self.relink(2 * op + 1);
        self.relink(2 * op);
    }
}

fn check_key(ops: &[Operation], budget: u64) -> KeyVerdict {
    for op in ops {
        assert!(
            op.call < op.ret,
            "operation returns before it is called: {op:?}"
        );
    }
    let mut events = EventList::new(ops);
    let mut linearized = OpSet::new(ops.len());
    let mut state: i64 = 0;
    let mut seen: HashSet<(OpSet, i64)> = HashSet::new();
    // Operations linearized so far, with the state before each.
    let mut stack: Vec<(usize, i64)> = Vec::new();
    let mut event = events.first();
    let mut steps: u64 = 0;
    while events.first() != NIL {
        steps += 1;
        if steps > budget {
            return KeyVerdict::Inconclusive;
        }
        if event == NIL {
            // Only reachable if a return is missing, which EventList::new rules out.
            unreachable!("walked past the last event without meeting a return");
        }
        let op = event / 2;
        if event.is_multiple_of(2) {
            if let Some(next_state) = apply(state, &ops[op]) {
                let mut candidate = linearized.clone();
                candidate.set(op);
                if seen.insert((candidate.clone(), next_state)) {
                    stack.push((op, state));
                    linearized = candidate;
                    state = next_state;
                    events.lift(op);
                    event = events.first();
                    continue;
                }
            }
            event = events.next[event];
        } else {
            // The earliest pending return: some operation must have taken effect before it, and
            // every choice so far has been tried. Undo the last choice and try the next one.
            let Some((undone, previous_state)) = stack.pop() else {
                return KeyVerdict::NotLinearizable;
            };
            linearized.clear(undone);
            state = previous_state;
            events.unlift(undone);
            event = events.next[2 * undone];
        }
    }
    KeyVerdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const BUDGET: u64 = 1_000_000;

    fn op(client: u64, input: Input, output: Option<i64>, call: u64, ret: u64) -> Operation {
        Operation {
            client,
            key: 0,
            input,
            output,
            call,
            ret,
        }
    }

    fn put(client: u64, value: i64, call: u64, ret: u64) -> Operation {
        op(client, Input::Put(value), None, call, ret)
    }

    fn read(client: u64, value: i64, call: u64, ret: u64) -> Operation {
        op(client, Input::Read, Some(value), call, ret)
    }

    fn add(client: u64, delta: i64, result: i64, call: u64, ret: u64) -> Operation {
        op(client, Input::Add(delta), Some(result), call, ret)
    }

    fn unknown(client: u64, input: Input, call: u64) -> Operation {
        op(client, input, None, call, NEVER_RETURNED)
    }

    fn is_linearizable(history: &[Operation]) -> bool {
        match check_history(history, BUDGET) {
            Verdict::Linearizable => true,
            Verdict::NotLinearizable { .. } => false,
            Verdict::Inconclusive { .. } => panic!("search gave up on a tiny history"),
        }
    }

    #[test]
    fn sequential_register_history_passes() {
        let history = [
            read(1, 0, 1, 2),
            put(1, 5, 3, 4),
            read(2, 5, 5, 6),
            put(2, 7, 7, 8),
            read(1, 7, 9, 10),
        ];
        assert!(is_linearizable(&history));
    }

    #[test]
    fn stale_read_after_completed_write_fails() {
        let history = [put(1, 5, 1, 2), read(2, 0, 3, 4)];
        assert!(!is_linearizable(&history));
    }

    #[test]
    fn read_concurrent_with_write_may_see_either_value() {
        for seen in [0, 5] {
            let history = [put(1, 5, 1, 4), read(2, seen, 2, 3)];
            assert!(is_linearizable(&history), "read of {seen} must be allowed");
        }
        let history = [put(1, 5, 1, 4), read(2, 6, 2, 3)];
        assert!(!is_linearizable(&history), "6 was never written");
    }

    #[test]
    fn new_value_then_old_value_fails() {
        // The classic: both reads overlap the write, but the second starts after the first ended,
        // so once a reader saw 5 nobody may see 0 again.
        let history = [put(1, 5, 1, 10), read(2, 5, 2, 3), read(3, 0, 4, 5)];
        assert!(!is_linearizable(&history));
        let history = [put(1, 5, 1, 10), read(2, 0, 2, 3), read(3, 5, 4, 5)];
        assert!(is_linearizable(&history));
    }

    #[test]
    fn write_order_must_agree_with_reads() {
        // Two concurrent writes; readers after both finished must agree on the last one.
        let history = [
            put(1, 1, 1, 4),
            put(2, 2, 2, 3),
            read(3, 1, 5, 6),
            read(4, 2, 7, 8),
        ];
        assert!(!is_linearizable(&history));
        let history = [
            put(1, 1, 1, 4),
            put(2, 2, 2, 3),
            read(3, 1, 5, 6),
            read(4, 1, 7, 8),
        ];
        assert!(is_linearizable(&history));
    }

    #[test]
    fn write_of_unknown_outcome_may_or_may_not_have_happened() {
        let applied = [unknown(1, Input::Put(9), 1), read(2, 9, 5, 6)];
        assert!(is_linearizable(&applied));
        let not_applied = [unknown(1, Input::Put(9), 1), read(2, 0, 5, 6)];
        assert!(is_linearizable(&not_applied));
        let flip_flop = [
            unknown(1, Input::Put(9), 1),
            read(2, 9, 5, 6),
            read(2, 0, 7, 8),
        ];
        assert!(!is_linearizable(&flip_flop));
        let too_early = [read(2, 9, 1, 2), unknown(1, Input::Put(9), 3)];
        assert!(
            !is_linearizable(&too_early),
            "a write cannot be seen before it is called"
        );
    }

    #[test]
    fn counter_results_must_add_up() {
        let history = [add(1, 1, 1, 1, 4), add(2, 2, 3, 2, 5), read(3, 3, 6, 7)];
        assert!(is_linearizable(&history));
        let history = [add(1, 1, 1, 1, 4), add(2, 2, 2, 2, 5)];
        assert!(!is_linearizable(&history), "no order gives results 1 and 2");
        let history = [add(1, 1, 1, 1, 2), add(2, 2, 2, 3, 4)];
        assert!(!is_linearizable(&history), "second add must see the first");
    }

    #[test]
    fn add_of_unknown_outcome_is_possibly_applied() {
        let history = [
            unknown(1, Input::Add(10), 1),
            add(2, 1, 11, 2, 3),
            read(3, 11, 4, 5),
        ];
        assert!(is_linearizable(&history));
        let history = [unknown(1, Input::Add(10), 1), add(2, 1, 1, 2, 3)];
        assert!(is_linearizable(&history));
        let history = [unknown(1, Input::Add(10), 1), add(2, 1, 5, 2, 3)];
        assert!(!is_linearizable(&history));
        let history = [
            unknown(1, Input::Add(10), 1),
            read(3, 10, 2, 3),
            add(2, 1, 1, 4, 5),
        ];
        assert!(
            !is_linearizable(&history),
            "once seen applied it stays applied"
        );
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut history = vec![put(1, 5, 1, 2), read(2, 5, 3, 4)];
        let mut other = read(3, 5, 5, 6);
        other.key = 1;
        history.push(other);
        assert!(!is_linearizable(&history), "key 1 never saw a write of 5");
        match check_history(&history, BUDGET) {
            Verdict::NotLinearizable { key, .. } => assert_eq!(key, 1),
            verdict => panic!("unexpected {verdict:?}"),
        }
    }

    #[test]
    fn exhausted_budget_is_inconclusive() {
        let history: Vec<Operation> = (0..20)
            .map(|i| unknown(i, Input::Add(1 << i), 1 + i))
            .chain([read(99, -1, 100, 101)])
            .collect();
        assert!(matches!(
            check_history(&history, 1000),
            Verdict::Inconclusive {
                key: 0,
                budget: 1000
            }
        ));
    }

    /// Histories produced by a real atomic register, with each operation taking effect at a
    /// random instant inside its interval, are linearizable; corrupting one observed value of a
    /// history whose operations don't overlap is not.
    #[test]
    fn generated_histories() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for round in 0..300 {
            let clients = rng.gen_range(1..6u64);
            let ops_count = rng.gen_range(1..40);
            // Each operation takes effect at a distinct instant inside a random interval.
            let mut points: Vec<f64> = (0..ops_count).map(|_| rng.gen_range(0.0..100.0)).collect();
            points.sort_by(f64::total_cmp);
            let mut state = 0i64;
            let mut history = Vec::new();
            let mut intervals = Vec::new();
            let mut next_put = 1;
            for (i, &at) in points.iter().enumerate() {
                intervals.push((
                    at - rng.gen_range(0.001..10.0),
                    at + rng.gen_range(0.001..10.0),
                ));
                let input = match rng.gen_range(0..3) {
                    0 => {
                        next_put += 1;
                        Input::Put(next_put)
                    }
                    1 => Input::Add(rng.gen_range(-5..6)),
                    _ => Input::Read,
                };
                let output = match input {
                    Input::Put(v) => {
                        state = v;
                        None
                    }
                    Input::Add(d) => {
                        state += d;
                        Some(state)
                    }
                    Input::Read => Some(state),
                };
                history.push(Operation {
                    client: i as u64 % clients,
                    key: 0,
                    input,
                    output,
                    call: 0,
                    ret: 0,
                });
            }
            // Logical times are the ranks of the real instants.
            let mut instants: Vec<(f64, usize, bool)> = intervals
                .iter()
                .enumerate()
                .flat_map(|(i, &(call, ret))| [(call, i, false), (ret, i, true)])
                .collect();
            instants.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (rank, &(_, i, is_return)) in instants.iter().enumerate() {
                if is_return {
                    history[i].ret = rank as u64 + 1;
                } else {
                    history[i].call = rank as u64 + 1;
                }
            }
            for op in history.iter_mut() {
                if rng.gen_bool(0.1) {
                    op.output = None;
                    op.ret = NEVER_RETURNED;
                }
            }
            assert!(is_linearizable(&history), "round {round}: {history:?}");

            // Sequential version: every op ends before the next starts; bump one observation.
            let mut sequential: Vec<Operation> = history
                .iter()
                .enumerate()
                .map(|(i, op)| {
                    let mut op = op.clone();
                    op.call = 10 * i as u64 + 1;
                    op.ret = 10 * i as u64 + 2;
                    op
                })
                .collect();
            assert!(is_linearizable(&sequential));
            let observed: Vec<usize> = (0..sequential.len())
                .filter(|&i| sequential[i].output.is_some())
                .collect();
            if let Some(&victim) = observed.get(rng.gen_range(0..observed.len().max(1))) {
                sequential[victim].output = sequential[victim].output.map(|v| v + 1_000_000);
                assert!(
                    !is_linearizable(&sequential),
                    "round {round}: {sequential:?}"
                );
            }
        }
    }
}
