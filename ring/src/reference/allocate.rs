//! The original allocation (docs/ring.md, "Allocation"), kept verbatim: every change walks
//! the whole sorted token list, O(tokens of the ring). It is the oracle the incremental
//! allocation in `crate::allocate` is tested against, and the benchmark's "full rebuild".

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use crate::{MemberId, RingError, Token};

/// The size of the ring: positions are u64, so the full circle is 2^64.
const RING_SPAN: u128 = 1 << 64;

/// Width of each token's range `(previous token, token]`, in ring order of `tokens`.
/// A lone token owns the full circle.
pub(crate) fn range_widths(tokens: &[Token]) -> Vec<u128> {
    let positions: Vec<u64> = tokens.iter().map(|token| token.position).collect();
    position_widths(&positions)
}

/// [`range_widths`] over bare sorted positions.
pub(crate) fn position_widths(positions: &[u64]) -> Vec<u128> {
    let Some(&last) = positions.last() else {
        return Vec::new();
    };
    if positions.len() == 1 {
        return vec![RING_SPAN];
    }
    let mut previous = last;
    positions
        .iter()
        .map(|&position| {
            let width = position.wrapping_sub(previous);
            previous = position;
            u128::from(width)
        })
        .collect()
}

/// Positions for `count` new tokens of `joiner`, which will hold `joiner_weight` once they
/// are placed. `weights` gives the weight of every member that holds tokens now (the
/// joiner included if it already holds some). Only positions are returned; the caller
/// merges them. Every returned position is distinct from every existing token and from
/// each other.
pub(crate) fn allocate(
    tokens: &[Token],
    weights: &BTreeMap<MemberId, u32>,
    joiner: MemberId,
    joiner_weight: u32,
    count: u32,
) -> Result<Vec<u64>, RingError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if tokens.is_empty() {
        return Ok(evenly_spaced(count));
    }
    let others_hold_tokens = tokens.iter().any(|token| token.member != joiner);
    if !others_hold_tokens {
        return split_own_ranges(tokens, count);
    }
    steal_from_heaviest(tokens, weights, joiner, joiner_weight, count)
}

/// The first tokens of an empty ring: token j at floor((2j + 1) * 2^64 / (2 * count)).
fn evenly_spaced(count: u32) -> Vec<u64> {
    let halves = 2 * u128::from(count);
    (0..u128::from(count))
        .map(|j| ((2 * j + 1) * RING_SPAN / halves) as u64)
        .collect()
}

/// Only the joiner holds tokens (its weight grows while it is alone): no key can move, so
/// each new token halves the joiner's widest range.
fn split_own_ranges(tokens: &[Token], count: u32) -> Result<Vec<u64>, RingError> {
    let mut positions: Vec<u64> = tokens.iter().map(|token| token.position).collect();
    for _ in 0..count {
        let widths = position_widths(&positions);
        let (widest, width) = widest_range(widths.iter().copied().enumerate(), &positions);
        if width < 2 {
            return Err(RingError::RingExhausted);
        }
        let start = positions[widest].wrapping_sub(width as u64);
        let position = start.wrapping_add((width / 2) as u64);
        let at = positions.partition_point(|&p| p < position);
        positions.insert(at, position);
    }
    let old: std::collections::BTreeSet<u64> = tokens.iter().map(|t| t.position).collect();
    Ok(positions.into_iter().filter(|p| !old.contains(p)).collect())
}

/// Index and width of the widest of the given ranges; ties go to the smallest position.
fn widest_range(ranges: impl Iterator<Item = (usize, u128)>, positions: &[u64]) -> (usize, u128) {
    let mut best = (usize::MAX, 0u128);
    for (index, width) in ranges {
        let better = best.0 == usize::MAX
            || width > best.1
            || (width == best.1 && positions[index] < positions[best.0]);
        if better {
            best = (index, width);
        }
    }
    best
}

/// The general case: each new token takes an equal slice of what the joiner still lacks,
/// cut from the front of the widest range of the member furthest above its target.
fn steal_from_heaviest(
    tokens: &[Token],
    weights: &BTreeMap<MemberId, u32>,
    joiner: MemberId,
    joiner_weight: u32,
    count: u32,
) -> Result<Vec<u64>, RingError> {
    let positions: Vec<u64> = tokens.iter().map(|token| token.position).collect();
    let mut widths = range_widths(tokens);

    // Dense indices keep the per-token work to one hash lookup on large rings.
    let mut holders: Vec<MemberId> = tokens.iter().map(|token| token.member).collect();
    holders.sort_unstable();
    holders.dedup();
    let dense: HashMap<MemberId, usize> =
        holders.iter().enumerate().map(|(i, &m)| (m, i)).collect();
    let mut loads = vec![0u128; holders.len()];
    let mut tokens_of: Vec<Vec<usize>> = vec![Vec::new(); holders.len()];
    for (index, (token, &width)) in tokens.iter().zip(&widths).enumerate() {
        let holder = dense[&token.member];
        loads[holder] += width;
        tokens_of[holder].push(index);
    }

    let weight_of = |member: MemberId| {
        if member == joiner {
            joiner_weight
        } else {
            weights.get(&member).copied().unwrap_or(0)
        }
    };
    let mut total_weight: u128 = holders.iter().map(|&m| u128::from(weight_of(m))).sum();
    if !dense.contains_key(&joiner) {
        total_weight += u128::from(joiner_weight);
    }
    // A hostile snapshot could give token holders weight 0; never divide by zero.
    let total_weight = total_weight.max(1);
    let target = |member: MemberId| RING_SPAN * u128::from(weight_of(member)) / total_weight;

    let mut heaviest: BinaryHeap<(i128, Reverse<MemberId>, usize)> = holders
        .iter()
        .enumerate()
        .filter(|(_, &member)| member != joiner)
        .map(|(holder, &member)| {
            (
                excess(loads[holder], target(member)),
                Reverse(member),
                holder,
            )
        })
        .collect();

    let joiner_load = dense.get(&joiner).map_or(0, |&holder| loads[holder]);
    let mut lacking: u128 = target(joiner).saturating_sub(joiner_load);
    let mut placed = Vec::with_capacity(count as usize);
    for step in 0..count {
        let remaining = u128::from(count - step);
        let quota = lacking.div_ceil(remaining).max(1);
        let Some((_, Reverse(victim), holder)) = heaviest.pop() else {
            return Err(RingError::RingExhausted);
        };
        let candidates = &tokens_of[holder];
        let (widest, width) = widest_range(candidates.iter().map(|&i| (i, widths[i])), &positions);
        if widest == usize::MAX || width < 2 {
            return Err(RingError::RingExhausted);
        }
        let taken = quota.min(width - 1);
        let start = positions[widest].wrapping_sub(width as u64);
        placed.push(start.wrapping_add(taken as u64));
        widths[widest] -= taken;
        lacking = lacking.saturating_sub(taken);
        loads[holder] -= taken;
        heaviest.push((
            excess(loads[holder], target(victim)),
            Reverse(victim),
            holder,
        ));
    }
    Ok(placed)
}

fn excess(load: u128, target: u128) -> i128 {
    // Both are at most 2^64, so the difference fits.
    load as i128 - target as i128
}
