//! The token table: every token of the ring, plus what allocation reads from it — each
//! token's range width, each member's load, the holders grouped by weight — kept current on
//! every insert and removal in O(log tokens). A change then costs O(its own tokens × log)
//! instead of a pass over the whole ring (issue 14). Only [`TokenTable::insert`] and
//! [`TokenTable::remove`] change tokens, so the derived data cannot drift from them;
//! [`TokenTable::check`] recomputes it from scratch for the tests.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::Arc;

use crate::{MemberId, Token};

/// The size of the ring: positions are u64, so the full circle is 2^64.
pub(crate) const RING_SPAN: u128 = 1 << 64;

/// A range width stored as `width − 1`: widths are 1 ..= 2^64, which then fits a u64.
type WidthLess1 = u64;

/// How a holding orders its tokens: (width − 1, Reverse(position)).
type WidthKey = (WidthLess1, Reverse<u64>);

/// One member's tokens with their widths, widest first when read from the back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holding {
    /// The member's weight, mirrored here so the weight groups need no member lookup.
    weight: u32,
    /// Sum of the widths of the member's tokens: at most 2^64.
    load: u128,
    /// (width − 1, Reverse(position)): the last entry is the widest range, ties going to the
    /// smallest position, which is the order docs/ring.md §4 asks for.
    widths: BTreeSet<WidthKey>,
}

/// All tokens and the derived data. Equal tables hold equal tokens: the derived parts are
/// functions of the tokens and the weights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TokenTable {
    owner_at: BTreeMap<u64, MemberId>,
    /// Hashed: touched two or three times per token placed, the hottest lookup of a change.
    /// Each holding is shared between clones until one of them changes it (`Arc::make_mut`),
    /// so cloning a state (the daemon publishes one per epoch) copies pointers, not 10,000
    /// B-trees, and a change copies only the holdings it touches.
    holdings: HashMap<MemberId, Arc<Holding>>,
    /// Holders by weight, each group ordered by (load, Reverse(id)): within one weight the
    /// target share is the same, so the last entry is the member furthest above it.
    by_weight: BTreeMap<u32, BTreeSet<(u128, Reverse<MemberId>)>>,
    /// Sum of the weights of the members that hold tokens.
    holder_weight: u128,
}

impl TokenTable {
    /// A table over tokens sorted by strictly ascending position; `weight_of` gives each
    /// holder's weight. O(tokens × log).
    pub(crate) fn from_sorted(tokens: &[Token], weight_of: impl Fn(MemberId) -> u32) -> Self {
        // Grouped first, then each member's set built in bulk (sort + bulk load): inserting
        // token by token into 10,000 sets made decoding a 10,000-member ring take ~0.9 s.
        let mut grouped: HashMap<MemberId, (u128, Vec<WidthKey>)> = HashMap::new();
        let mut previous = tokens.last().map_or(0, |t| t.position);
        for token in tokens {
            let width = if tokens.len() == 1 {
                RING_SPAN
            } else {
                u128::from(token.position.wrapping_sub(previous))
            };
            previous = token.position;
            let (load, keys) = grouped.entry(token.member).or_default();
            *load += width;
            keys.push(width_key(width, token.position));
        }
        let mut table = TokenTable {
            owner_at: tokens.iter().map(|t| (t.position, t.member)).collect(),
            ..TokenTable::default()
        };
        table.holdings.reserve(grouped.len());
        for (id, (load, keys)) in grouped {
            let weight = weight_of(id);
            table.holder_weight += u128::from(weight);
            table
                .by_weight
                .entry(weight)
                .or_default()
                .insert((load, Reverse(id)));
            let widths = keys.into_iter().collect();
            table.holdings.insert(
                id,
                Arc::new(Holding {
                    weight,
                    load,
                    widths,
                }),
            );
        }
        table
    }

    pub(crate) fn len(&self) -> usize {
        self.owner_at.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.owner_at.is_empty()
    }

    pub(crate) fn contains(&self, position: u64) -> bool {
        self.owner_at.contains_key(&position)
    }

    pub(crate) fn holder_of(&self, position: u64) -> Option<MemberId> {
        self.owner_at.get(&position).copied()
    }

    /// Every token, ascending position.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = Token> + DoubleEndedIterator + '_ {
        self.owner_at
            .iter()
            .map(|(&position, &member)| Token { position, member })
    }

    pub(crate) fn count_of(&self, member: MemberId) -> usize {
        self.holdings.get(&member).map_or(0, |h| h.widths.len())
    }

    /// Positions of one member's tokens, ascending. O(its tokens × log).
    pub(crate) fn positions_of(&self, member: MemberId) -> Vec<u64> {
        let mut positions: Vec<u64> = self
            .holdings
            .get(&member)
            .map(|h| h.widths.iter().map(|&(_, Reverse(p))| p).collect())
            .unwrap_or_default();
        positions.sort_unstable();
        positions
    }

    pub(crate) fn load_of(&self, member: MemberId) -> u128 {
        self.holdings.get(&member).map_or(0, |h| h.load)
    }

    /// Loads of all holders, ascending id.
    pub(crate) fn loads(&self) -> BTreeMap<MemberId, u128> {
        self.holdings.iter().map(|(&id, h)| (id, h.load)).collect()
    }

    pub(crate) fn holder_weight(&self) -> u128 {
        self.holder_weight
    }

    /// The member's widest range as (width, position); ties go to the smallest position.
    pub(crate) fn widest_of(&self, member: MemberId) -> Option<(u128, u64)> {
        let holding = self.holdings.get(&member)?;
        let &(less1, Reverse(position)) = holding.widths.last()?;
        Some((u128::from(less1) + 1, position))
    }

    /// The distinct weights of the holders, ascending.
    pub(crate) fn weights(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_weight.keys().copied()
    }

    /// Among holders of `weight` other than `except`, the one with the largest load (ties:
    /// the smallest id), with its load.
    pub(crate) fn heaviest_of_weight(
        &self,
        weight: u32,
        except: MemberId,
    ) -> Option<(MemberId, u128)> {
        let group = self.by_weight.get(&weight)?;
        group
            .iter()
            .rev()
            .find(|(_, Reverse(id))| *id != except)
            .map(|&(load, Reverse(id))| (id, load))
    }

    /// Width of each token's range, ascending position. O(tokens).
    pub(crate) fn widths(&self) -> Vec<u128> {
        let Some((&last, _)) = self.owner_at.last_key_value() else {
            return Vec::new();
        };
        if self.owner_at.len() == 1 {
            return vec![RING_SPAN];
        }
        let mut previous = last;
        self.owner_at
            .keys()
            .map(|&position| {
                let width = position.wrapping_sub(previous);
                previous = position;
                u128::from(width)
            })
            .collect()
    }

    /// Sets a holder's weight (the member's weight changed). No-op for a non-holder.
    pub(crate) fn set_weight(&mut self, member: MemberId, weight: u32) {
        let Some(holding) = self.holdings.get_mut(&member).map(Arc::make_mut) else {
            return;
        };
        let old = holding.weight;
        let load = holding.load;
        holding.weight = weight;
        self.holder_weight = self.holder_weight - u128::from(old) + u128::from(weight);
        ungroup(&mut self.by_weight, old, load, member);
        self.by_weight
            .entry(weight)
            .or_default()
            .insert((load, Reverse(member)));
    }

    /// Adds a token of `member` at a free `position`; `weight` is used if this is the
    /// member's first token. Its range is cut from the front of the range it lands in.
    pub(crate) fn insert(&mut self, position: u64, member: MemberId, weight: u32) {
        assert!(!self.contains(position), "token {position} is already held");
        let width = match self.neighbours(position) {
            None => RING_SPAN,
            Some((before, after, after_member)) => {
                let after_old = if self.owner_at.len() == 1 {
                    RING_SPAN
                } else {
                    u128::from(after.wrapping_sub(before))
                };
                let after_new = u128::from(after.wrapping_sub(position));
                self.rewidth(after_member, after, after_old, after_new);
                u128::from(position.wrapping_sub(before))
            }
        };
        self.owner_at.insert(position, member);
        if let Entry::Vacant(vacant) = self.holdings.entry(member) {
            vacant.insert(Arc::new(Holding {
                weight,
                load: 0,
                widths: BTreeSet::new(),
            }));
            self.holder_weight += u128::from(weight);
            self.by_weight
                .entry(weight)
                .or_default()
                .insert((0, Reverse(member)));
        }
        self.add_width(member, position, width);
    }

    /// Removes the token at `position`; its range joins the range of the next token.
    /// Returns its member, or `None` if no token is there.
    pub(crate) fn remove(&mut self, position: u64) -> Option<MemberId> {
        let member = *self.owner_at.get(&position)?;
        let neighbours = self.neighbours(position);
        let width = match neighbours {
            None => RING_SPAN,
            Some((before, _, _)) => u128::from(position.wrapping_sub(before)),
        };
        self.owner_at.remove(&position);
        self.remove_width(member, position, width);
        #[cfg(test)]
        if crate::mutant::is(crate::mutant::Mutant::SuccessorNotWidened) {
            return Some(member);
        }
        if let Some((before, after, after_member)) = neighbours {
            let after_old = u128::from(after.wrapping_sub(position));
            let after_new = if before == after {
                RING_SPAN
            } else {
                after_old + width
            };
            self.rewidth(after_member, after, after_old, after_new);
        }
        Some(member)
    }

    /// The tokens around `position` other than itself: (position before, position after,
    /// member after), wrapping; the two are the same token when only one other exists.
    fn neighbours(&self, position: u64) -> Option<(u64, u64, MemberId)> {
        let before = self
            .owner_at
            .range(..position)
            .next_back()
            .or_else(|| {
                self.owner_at
                    .range((Excluded(position), Unbounded))
                    .next_back()
            })
            .map(|(&p, _)| p)?;
        let (&after, &after_member) = self
            .owner_at
            .range((Excluded(position), Unbounded))
            .next()
            .or_else(|| self.owner_at.range(..position).next())?;
        Some((before, after, after_member))
    }

    /// A token's range changed width (a neighbour came or went); the token stays.
    fn rewidth(&mut self, member: MemberId, position: u64, old: u128, new: u128) {
        let holding = self.holding_mut(member);
        let removed = holding.widths.remove(&width_key(old, position));
        assert!(removed, "width of token {position} out of step");
        holding.widths.insert(width_key(new, position));
        let old_load = holding.load;
        holding.load = old_load - old + new;
        let (weight, new_load) = (holding.weight, holding.load);
        regroup(&mut self.by_weight, weight, member, old_load, new_load);
    }

    fn add_width(&mut self, member: MemberId, position: u64, width: u128) {
        let holding = self.holding_mut(member);
        holding.widths.insert(width_key(width, position));
        let old_load = holding.load;
        holding.load += width;
        let (weight, new_load) = (holding.weight, holding.load);
        regroup(&mut self.by_weight, weight, member, old_load, new_load);
    }

    /// Takes a removed token's width out of its holding; drops the holding with its last
    /// token, so that only members holding tokens count as holders.
    fn remove_width(&mut self, member: MemberId, position: u64, width: u128) {
        let holding = self.holding_mut(member);
        let removed = holding.widths.remove(&width_key(width, position));
        assert!(removed, "width of token {position} out of step");
        let old_load = holding.load;
        holding.load -= width;
        let (weight, new_load, empty) = (holding.weight, holding.load, holding.widths.is_empty());
        if empty {
            self.holdings.remove(&member);
            self.holder_weight -= u128::from(weight);
            ungroup(&mut self.by_weight, weight, old_load, member);
        } else {
            regroup(&mut self.by_weight, weight, member, old_load, new_load);
        }
    }

    fn holding_mut(&mut self, member: MemberId) -> &mut Holding {
        // Every token's member has a holding: `insert` creates it before the first width.
        let holding = self
            .holdings
            .get_mut(&member)
            .expect("a token's member has a holding");
        Arc::make_mut(holding)
    }

    /// Estimated heap bytes: B-tree entries × entry size × 3/2 (nodes run about two thirds
    /// full), plus one node header per holding's set, plus the hash table's slots.
    pub(crate) fn memory_bytes(&self) -> usize {
        let btree = |entries: usize, entry: usize| entries * entry * 3 / 2;
        let widths: usize = self.holdings.values().map(|h| h.widths.len()).sum();
        btree(self.owner_at.len(), 16)
            + self.holdings.capacity() * (8 + 8 + 1)
            + self.holdings.len() * (16 + std::mem::size_of::<Holding>())
            + btree(widths, 16)
            + self.holdings.len() * 64
            + btree(self.holdings.len(), 32)
    }

    /// Recomputes every derived field from the tokens and compares. For tests: O(tokens).
    pub(crate) fn check(&self, weight_of: impl Fn(MemberId) -> u32) -> Result<(), String> {
        let tokens: Vec<Token> = self.iter().collect();
        let fresh = TokenTable::from_sorted(&tokens, weight_of);
        if fresh != *self {
            return Err(format!(
                "derived token data out of step: {} tokens, {} holdings (fresh {}), holder weight {} (fresh {})",
                tokens.len(),
                self.holdings.len(),
                fresh.holdings.len(),
                self.holder_weight,
                fresh.holder_weight
            ));
        }
        Ok(())
    }
}

fn width_key(width: u128, position: u64) -> WidthKey {
    debug_assert!((1..=RING_SPAN).contains(&width));
    ((width - 1) as u64, Reverse(position))
}

fn regroup(
    groups: &mut BTreeMap<u32, BTreeSet<(u128, Reverse<MemberId>)>>,
    weight: u32,
    member: MemberId,
    old_load: u128,
    new_load: u128,
) {
    let group = groups.entry(weight).or_default();
    group.remove(&(old_load, Reverse(member)));
    group.insert((new_load, Reverse(member)));
}

fn ungroup(
    groups: &mut BTreeMap<u32, BTreeSet<(u128, Reverse<MemberId>)>>,
    weight: u32,
    load: u128,
    member: MemberId,
) {
    if let Some(group) = groups.get_mut(&weight) {
        group.remove(&(load, Reverse(member)));
        if group.is_empty() {
            groups.remove(&weight);
        }
    }
}
