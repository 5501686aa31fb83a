//! Token allocation: where a member's new tokens go so that every member's share of the
//! ring tracks its weight. docs/ring.md ("Allocation") is the normative text; this file
//! follows it step for step, in integer arithmetic only, so other languages can match it.
//!
//! It works on the [`TokenTable`], whose widths, loads and weight groups are kept current,
//! so placing `k` tokens costs O((k + distinct weights) × log tokens), not a pass over the
//! ring. The original whole-ring version (`crate::reference`) is the oracle it is tested
//! against: same positions, same refusals.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::tokens::{TokenTable, RING_SPAN};
use crate::{MemberId, RingError};

/// Places `count` new tokens of `joiner` straight into `table`. The joiner will hold
/// `joiner_weight`; if it already holds tokens, the caller has set that weight in the table.
/// On error the table is as it was.
pub(crate) fn allocate(
    table: &mut TokenTable,
    joiner: MemberId,
    joiner_weight: u32,
    count: u32,
) -> Result<(), RingError> {
    if count == 0 {
        return Ok(());
    }
    if table.is_empty() {
        for position in evenly_spaced(count) {
            table.insert(position, joiner, joiner_weight);
        }
        return Ok(());
    }
    let mut placed = Vec::with_capacity(count as usize);
    let result = if table.count_of(joiner) == table.len() {
        split_own_ranges(table, joiner, joiner_weight, count, &mut placed)
    } else {
        steal_from_heaviest(table, joiner, joiner_weight, count, &mut placed)
    };
    if result.is_err() {
        // Taking the new tokens out gives every range back to the token it came from.
        for &position in placed.iter().rev() {
            table.remove(position);
        }
    }
    result
}

/// The first tokens of an empty ring: token j at floor((2j + 1) * 2^64 / (2 * count)).
fn evenly_spaced(count: u32) -> impl Iterator<Item = u64> {
    let halves = 2 * u128::from(count);
    (0..u128::from(count)).map(move |j| ((2 * j + 1) * RING_SPAN / halves) as u64)
}

/// Only the joiner holds tokens (its weight grows while it is alone): no key can move, so
/// each new token halves the joiner's widest range.
fn split_own_ranges(
    table: &mut TokenTable,
    joiner: MemberId,
    joiner_weight: u32,
    count: u32,
    placed: &mut Vec<u64>,
) -> Result<(), RingError> {
    for _ in 0..count {
        let (width, end) = table.widest_of(joiner).ok_or(RingError::RingExhausted)?;
        if width < 2 {
            return Err(RingError::RingExhausted);
        }
        // A lone token's width is 2^64, which `as u64` turns into 0: its range starts at itself.
        let start = end.wrapping_sub(width as u64);
        let position = start.wrapping_add((width / 2) as u64);
        table.insert(position, joiner, joiner_weight);
        placed.push(position);
    }
    Ok(())
}

/// The general case: each new token takes an equal slice of what the joiner still lacks,
/// cut from the front of the widest range of the member furthest above its target.
///
/// All holders of one weight share a target, so the member furthest above target within a
/// weight is the heaviest of that weight ([`TokenTable::heaviest_of_weight`]); a heap over
/// the weights' heaviest members then finds the victim. Ties go to the smallest id in both.
fn steal_from_heaviest(
    table: &mut TokenTable,
    joiner: MemberId,
    joiner_weight: u32,
    count: u32,
    placed: &mut Vec<u64>,
) -> Result<(), RingError> {
    let joiner_holds = table.count_of(joiner) > 0;
    let total_weight = table.holder_weight()
        + if joiner_holds {
            0
        } else {
            u128::from(joiner_weight)
        };
    // A hostile snapshot could give token holders weight 0; never divide by zero.
    let total_weight = total_weight.max(1);
    let target = |weight: u32| RING_SPAN * u128::from(weight) / total_weight;
    let candidate = |table: &TokenTable, weight: u32| {
        table
            .heaviest_of_weight(weight, joiner)
            .map(|(member, load)| (excess(load, target(weight)), Reverse(member), weight))
    };

    let weights: Vec<u32> = table.weights().collect();
    let mut heaviest: BinaryHeap<(i128, Reverse<MemberId>, u32)> = weights
        .iter()
        .filter_map(|&w| candidate(table, w))
        .collect();
    let mut lacking: u128 = target(joiner_weight).saturating_sub(table.load_of(joiner));
    for step in 0..count {
        let remaining = u128::from(count - step);
        let quota = quota(lacking, remaining);
        let Some((_, Reverse(victim), weight)) = heaviest.pop() else {
            return Err(RingError::RingExhausted);
        };
        let (width, end) = table.widest_of(victim).ok_or(RingError::RingExhausted)?;
        if width < 2 {
            return Err(RingError::RingExhausted);
        }
        let taken = quota.min(width - 1);
        let start = end.wrapping_sub(width as u64);
        let position = start.wrapping_add(taken as u64);
        // The new token splits the victim's range: the victim keeps `(position, end]`, so its
        // width and load drop by `taken`, exactly docs/ring.md §4.1 (c) step 5.5.
        table.insert(position, joiner, joiner_weight);
        placed.push(position);
        lacking = lacking.saturating_sub(taken);
        // Only the victim's load changed among non-joiners: only its weight's head can move.
        heaviest.extend(candidate(table, weight));
    }
    Ok(())
}

/// What one new token takes: an equal share of what is still lacking, rounded up, at least 1.
fn quota(lacking: u128, remaining: u128) -> u128 {
    #[cfg(test)]
    if crate::mutant::is(crate::mutant::Mutant::QuotaRoundedDown) {
        return (lacking / remaining).max(1);
    }
    lacking.div_ceil(remaining).max(1)
}

fn excess(load: u128, target: u128) -> i128 {
    // Both are at most 2^64, so the difference fits.
    load as i128 - target as i128
}
