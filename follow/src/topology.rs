//! The fetch tree: who an observer pulls the committed log from.
//!
//! # The tree rule
//!
//! Each observer has a position, `xxh3_64(id)` (ties broken by id). The position space
//! `[0, 2^64)` is an interval; an interval splits into `fan_out` equal sub-intervals, and so on
//! down. Each interval below the root is *held* by the observer of smallest position among the
//! observers inside it that hold none of its ancestors. So every observer holds exactly one
//! interval, the holder of an interval is the upstream of the holders of its sub-intervals (at
//! most `fan_out` downstreams), and the holders of the root's sub-intervals hang below the voters,
//! sub-interval `k` below voter `k mod voters` in id order.
//!
//! The tree is a function of the set of members alone (not of the order of changes), so every
//! member computes the same one. It is stable: adding an observer changes the holder of at most
//! one interval per level (the newcomer takes an interval and the holder it displaced moves one
//! level down, and so on), removing one promotes the smallest holder below, one per level. Each
//! holder change re-parents that interval's at most `fan_out` downstreams, so one change
//! re-parents O(fan_out · depth) members, and an update costs O(fan_out · depth) here: no rank
//! shifts, no full rebuild.
//!
//! # The fallback rule
//!
//! An observer's candidates are its ancestors' holders from its upstream up, then the voters from
//! its branch's voter on. Its fallback is the second candidate: its grandparent, or the next
//! voter for a member right below a voter. An ancestor is never inside the member's own subtree.

use std::collections::{BTreeSet, HashMap};

use thiserror::Error;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::config::Config;
use crate::mutants::Mutant;
use crate::types::{MembershipChange, NodeId, Role};

/// Seed of the position hash: a constant of the protocol (every member must use the same).
const POSITION_SEED: u64 = 0x666f_6c6c_6f77_7472; // "followtr"
const NO_SLOT: u32 = u32::MAX;
const ROOT: u32 = 0;
/// The width of the root interval, 2^64.
const ROOT_WIDTH: u128 = 1 << 64;

/// The position of a member in the tree's hash space.
pub fn position(id: NodeId) -> u64 {
    xxh3_64_with_seed(&id.to_le_bytes(), POSITION_SEED)
}

fn order_key(id: NodeId) -> (u64, NodeId) {
    (position(id), id)
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error("node id 0 is not valid")]
    ZeroId,
    #[error("member {0} is not in the membership")]
    UnknownMember(NodeId),
}

/// One interval of the position space and the observer holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    holder: NodeId,
    holder_key: (u64, NodeId),
    lo: u64,
    width: u128,
    level: u32,
    parent: u32,
    index_in_parent: u32,
    /// Sub-interval slots, `NO_SLOT` where empty; allocated on first use (most slots are leaves).
    children: Vec<u32>,
}

/// The membership and the fetch tree over it. Cloning copies it (O(members)); updating it in
/// place costs O(fan_out · depth) per change.
#[derive(Debug, Clone)]
pub struct Topology {
    fan_out: u32,
    voters: Vec<NodeId>,
    learners: BTreeSet<NodeId>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    slot_of: HashMap<NodeId, u32>,
    mutant: Option<Mutant>,
    /// Only under the `TopologyByRank` mutant: observers in position order.
    ranked: Vec<NodeId>,
}

impl Topology {
    /// An empty membership.
    pub fn new(config: &Config) -> Topology {
        let root = Slot {
            holder: 0,
            holder_key: (0, 0),
            lo: 0,
            width: ROOT_WIDTH,
            level: 0,
            parent: NO_SLOT,
            index_in_parent: 0,
            children: Vec::new(),
        };
        let mut mutant = None;
        for candidate in Mutant::ALL {
            if config.mutated(candidate) {
                mutant = Some(candidate);
            }
        }
        Topology {
            fan_out: config.fan_out.max(2),
            voters: Vec::new(),
            learners: BTreeSet::new(),
            slots: vec![root],
            free_slots: Vec::new(),
            slot_of: HashMap::new(),
            mutant,
            ranked: Vec::new(),
        }
    }

    /// The tree of a whole membership, built by the same insertions as incremental changes.
    pub fn from_members(
        config: &Config,
        members: impl IntoIterator<Item = (NodeId, Role)>,
    ) -> Result<Topology, TopologyError> {
        let mut topology = Topology::new(config);
        for (id, role) in members {
            topology.apply(MembershipChange::Set(id, role))?;
        }
        Ok(topology)
    }

    /// Apply one change. A change that leaves the membership as it was (setting a member to the
    /// role it has) is a no-op; removing an unknown member is an error and changes nothing.
    pub fn apply(&mut self, change: MembershipChange) -> Result<(), TopologyError> {
        match change {
            MembershipChange::Set(0, _) | MembershipChange::Remove(0) => Err(TopologyError::ZeroId),
            MembershipChange::Set(id, role) => {
                if self.role(id) == Some(role) {
                    return Ok(());
                }
                if self.role(id).is_some() {
                    self.remove_member(id);
                }
                match role {
                    Role::Voter => {
                        let at = self.voters.binary_search(&id).unwrap_or_else(|at| at);
                        self.voters.insert(at, id);
                    }
                    Role::Learner => {
                        self.learners.insert(id);
                    }
                    Role::Observer => self.insert_observer(id),
                }
                Ok(())
            }
            MembershipChange::Remove(id) => {
                if self.role(id).is_none() {
                    return Err(TopologyError::UnknownMember(id));
                }
                self.remove_member(id);
                Ok(())
            }
        }
    }

    fn remove_member(&mut self, id: NodeId) {
        if let Ok(at) = self.voters.binary_search(&id) {
            self.voters.remove(at);
        } else if !self.learners.remove(&id) {
            self.remove_observer(id);
        }
    }

    pub fn role(&self, id: NodeId) -> Option<Role> {
        if self.voters.binary_search(&id).is_ok() {
            Some(Role::Voter)
        } else if self.learners.contains(&id) {
            Some(Role::Learner)
        } else if self.slot_of.contains_key(&id) {
            Some(Role::Observer)
        } else {
            None
        }
    }

    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    pub fn learners(&self) -> &BTreeSet<NodeId> {
        &self.learners
    }

    pub fn observer_count(&self) -> usize {
        self.slot_of.len()
    }

    pub fn fan_out(&self) -> u32 {
        self.fan_out
    }

    /// Observers in no particular order.
    pub fn observers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.slot_of.keys().copied()
    }

    // ---- the tree rule: insertion and removal -------------------------------------------------

    /// Which sub-interval of `slot` holds `pos`: `k = floor((pos - lo) · fan_out / width)`, the
    /// sub-intervals being `[lo + ceil(k·w/f), lo + ceil((k+1)·w/f))`.
    fn child_index(&self, slot: u32, pos: u64) -> u32 {
        let s = &self.slots[slot as usize];
        debug_assert!(pos >= s.lo && ((pos - s.lo) as u128) < s.width);
        (((pos - s.lo) as u128 * self.fan_out as u128) / s.width) as u32
    }

    fn new_child(&mut self, parent: u32, k: u32, holder: NodeId) -> u32 {
        let f = self.fan_out as u128;
        let p = &self.slots[parent as usize];
        let start = (k as u128 * p.width).div_ceil(f);
        let end = ((k as u128 + 1) * p.width).div_ceil(f);
        let slot = Slot {
            holder,
            holder_key: order_key(holder),
            lo: p.lo + start as u64,
            width: end - start,
            level: p.level + 1,
            parent,
            index_in_parent: k,
            children: Vec::new(),
        };
        let at = match self.free_slots.pop() {
            Some(at) => {
                self.slots[at as usize] = slot;
                at
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let fan_out = self.fan_out as usize;
        let p = &mut self.slots[parent as usize];
        if p.children.is_empty() {
            p.children = vec![NO_SLOT; fan_out];
        }
        p.children[k as usize] = at;
        self.slot_of.insert(holder, at);
        at
    }

    fn insert_observer(&mut self, id: NodeId) {
        if self.mutant == Some(Mutant::TopologyByRank) {
            let at = self
                .ranked
                .binary_search_by_key(&order_key(id), |&m| order_key(m))
                .unwrap_or_else(|at| at);
            self.ranked.insert(at, id);
        }
        // Walk down from the root carrying a member that still needs an interval: it takes the
        // first interval on its path where it is smaller than the holder, and the holder it
        // displaces is carried on (it is smaller than everyone below, so it takes the next one).
        let mut carried = id;
        let mut carried_key = order_key(id);
        let mut at = ROOT;
        loop {
            let k = self.child_index(at, carried_key.0);
            let child = self.slots[at as usize]
                .children
                .get(k as usize)
                .copied()
                .unwrap_or(NO_SLOT);
            if child == NO_SLOT {
                self.new_child(at, k, carried);
                return;
            }
            let slot = &mut self.slots[child as usize];
            if carried_key < slot.holder_key {
                let displaced = slot.holder;
                slot.holder = carried;
                slot.holder_key = carried_key;
                self.slot_of.insert(carried, child);
                carried = displaced;
                carried_key = order_key(displaced);
            }
            at = child;
        }
    }

    fn remove_observer(&mut self, id: NodeId) {
        if self.mutant == Some(Mutant::TopologyByRank) {
            if let Ok(at) = self
                .ranked
                .binary_search_by_key(&order_key(id), |&m| order_key(m))
            {
                self.ranked.remove(at);
            }
        }
        let Some(mut vacant) = self.slot_of.remove(&id) else {
            return;
        };
        // The smallest holder below moves up into the vacant interval, leaving its own vacant:
        // one promotion per level until a leaf empties.
        loop {
            let smallest = self.slots[vacant as usize]
                .children
                .iter()
                .copied()
                .filter(|&c| c != NO_SLOT)
                .min_by_key(|&c| self.slots[c as usize].holder_key);
            match smallest {
                Some(child) => {
                    let (holder, key) = {
                        let c = &self.slots[child as usize];
                        (c.holder, c.holder_key)
                    };
                    let slot = &mut self.slots[vacant as usize];
                    slot.holder = holder;
                    slot.holder_key = key;
                    self.slot_of.insert(holder, vacant);
                    vacant = child;
                }
                None => {
                    let (parent, k) = {
                        let s = &self.slots[vacant as usize];
                        (s.parent, s.index_in_parent)
                    };
                    self.slots[parent as usize].children[k as usize] = NO_SLOT;
                    if self.slots[parent as usize]
                        .children
                        .iter()
                        .all(|&c| c == NO_SLOT)
                    {
                        self.slots[parent as usize].children = Vec::new();
                    }
                    self.free_slots.push(vacant);
                    return;
                }
            }
        }
    }

    // ---- queries ------------------------------------------------------------------------------

    fn voter_for_branch(&self, k: u32) -> Option<NodeId> {
        if self.voters.is_empty() {
            None
        } else {
            Some(self.voters[k as usize % self.voters.len()])
        }
    }

    /// The level-1 branch (sub-interval of the root) an observer's interval is in.
    fn branch_of(&self, mut slot: u32) -> u32 {
        while self.slots[slot as usize].parent != ROOT {
            slot = self.slots[slot as usize].parent;
        }
        self.slots[slot as usize].index_in_parent
    }

    /// The members an observer fetches from, in order of preference: its upstream first, its
    /// fallback second, then further up and the other voters. Empty for voters, learners and
    /// non-members (voters and learners get the log from Raft).
    pub fn candidates(&self, id: NodeId) -> Vec<NodeId> {
        let Some(&slot) = self.slot_of.get(&id) else {
            return Vec::new();
        };
        let mut chain = Vec::new();
        let branch = match self.mutant {
            Some(Mutant::TopologyIgnoresFanOut) => {
                (position(id) % self.voters.len().max(1) as u64) as u32
            }
            Some(Mutant::TopologyByRank) => {
                let rank = self.rank(id);
                let mut r = rank;
                while r >= self.fan_out as usize {
                    r = (r - self.fan_out as usize) / self.fan_out as usize;
                    chain.push(self.ranked[r]);
                }
                r as u32
            }
            _ => {
                let mut at = self.slots[slot as usize].parent;
                while at != ROOT {
                    chain.push(self.slots[at as usize].holder);
                    at = self.slots[at as usize].parent;
                }
                self.branch_of(slot)
            }
        };
        for i in 0..self.voters.len() as u32 {
            if let Some(voter) = self.voter_for_branch(branch + i) {
                chain.push(voter);
            }
        }
        if self.mutant == Some(Mutant::FallbackInSubtree) {
            if let Some(&child) = self.children(id).first() {
                chain.insert(1.min(chain.len()), child);
            }
        }
        chain
    }

    fn rank(&self, id: NodeId) -> usize {
        self.ranked
            .binary_search_by_key(&order_key(id), |&m| order_key(m))
            .unwrap_or(0)
    }

    pub fn upstream(&self, id: NodeId) -> Option<NodeId> {
        self.candidates(id).first().copied()
    }

    pub fn fallback(&self, id: NodeId) -> Option<NodeId> {
        self.candidates(id).get(1).copied()
    }

    /// The members whose upstream is `id`: at most `fan_out` for an observer; for a voter, the
    /// holders of the root sub-intervals of its branches.
    pub fn children(&self, id: NodeId) -> Vec<NodeId> {
        match self.mutant {
            Some(Mutant::TopologyIgnoresFanOut) => {
                if self.voters.binary_search(&id).is_err() {
                    return Vec::new();
                }
                let mut all: Vec<NodeId> = self
                    .slot_of
                    .keys()
                    .copied()
                    .filter(|&m| self.upstream(m) == Some(id))
                    .collect();
                all.sort_unstable();
                return all;
            }
            Some(Mutant::TopologyByRank) => {
                let f = self.fan_out as usize;
                let range = if let Ok(v) = self.voters.binary_search(&id) {
                    (0..f.min(self.ranked.len()))
                        .filter(|r| r % self.voters.len() == v)
                        .collect::<Vec<_>>()
                } else if self.slot_of.contains_key(&id) {
                    let r = self.rank(id);
                    (f + r * f..f + r * f + f)
                        .filter(|&c| c < self.ranked.len())
                        .collect()
                } else {
                    Vec::new()
                };
                return range.into_iter().map(|r| self.ranked[r]).collect();
            }
            _ => {}
        }
        if let Ok(v) = self.voters.binary_search(&id) {
            let root = &self.slots[ROOT as usize];
            return root
                .children
                .iter()
                .enumerate()
                .filter(|&(k, &c)| c != NO_SLOT && k % self.voters.len() == v)
                .map(|(_, &c)| self.slots[c as usize].holder)
                .collect();
        }
        match self.slot_of.get(&id) {
            Some(&slot) => self.slots[slot as usize]
                .children
                .iter()
                .filter(|&&c| c != NO_SLOT)
                .map(|&c| self.slots[c as usize].holder)
                .collect(),
            None => Vec::new(),
        }
    }

    /// An observer's level: 1 right below a voter. `None` for anyone else.
    pub fn level(&self, id: NodeId) -> Option<u32> {
        if self.mutant == Some(Mutant::TopologyByRank) && self.slot_of.contains_key(&id) {
            return Some(self.candidates(id).len() as u32 + 1 - self.voters.len() as u32);
        }
        self.slot_of
            .get(&id)
            .map(|&slot| self.slots[slot as usize].level)
    }

    /// The deepest observer level: a change climbs at most this many fetch hops from a voter.
    pub fn depth(&self) -> u32 {
        self.slot_of
            .keys()
            .filter_map(|&id| self.level(id))
            .max()
            .unwrap_or(0)
    }

    /// Whether `member` is in the subtree below `root` (`root` itself included).
    pub fn in_subtree(&self, root: NodeId, member: NodeId) -> bool {
        if root == member {
            return true;
        }
        // Walk up from `member` (without the mutant's extra candidate, which is what we check).
        let mut at = member;
        for _ in 0..=self.slot_of.len() {
            let Some(&slot) = self.slot_of.get(&at) else {
                return false;
            };
            let parent = self.slots[slot as usize].parent;
            if parent == ROOT {
                return false;
            }
            at = self.slots[parent as usize].holder;
            if at == root {
                return true;
            }
        }
        false
    }

    /// An order-independent digest of the membership and the tree, equal on two members exactly
    /// when (barring hash collisions) they hold the same tree. O(members).
    pub fn fingerprint(&self) -> u64 {
        let mut sum: u64 = 0;
        let mut mix = |parts: &[u64]| {
            let mut bytes = Vec::with_capacity(parts.len() * 8);
            for part in parts {
                bytes.extend_from_slice(&part.to_le_bytes());
            }
            sum = sum.wrapping_add(xxh3_64_with_seed(&bytes, POSITION_SEED));
        };
        for &voter in &self.voters {
            mix(&[1, voter]);
        }
        for &learner in &self.learners {
            mix(&[2, learner]);
        }
        for (&id, &slot) in &self.slot_of {
            let parent = self.slots[slot as usize].parent;
            let upstream = if parent == ROOT {
                0
            } else {
                self.slots[parent as usize].holder
            };
            mix(&[3, id, upstream, self.slots[slot as usize].lo]);
        }
        sum
    }

    /// Check the tree's own invariants (each holder is the smallest in its interval's subtree,
    /// positions inside intervals, `slot_of` consistent); for tests and debug assertions.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (&id, &slot) in &self.slot_of {
            let s = &self.slots[slot as usize];
            if s.holder != id {
                return Err(format!("slot of {id} is held by {}", s.holder));
            }
            let pos = position(id);
            if pos < s.lo || (pos - s.lo) as u128 >= s.width {
                return Err(format!("{id} lies outside its interval"));
            }
            for &c in s.children.iter().filter(|&&c| c != NO_SLOT) {
                let child = &self.slots[c as usize];
                if child.parent != slot || child.holder_key <= s.holder_key {
                    return Err(format!("{} below {id} breaks the order", child.holder));
                }
            }
        }
        Ok(())
    }
}

impl PartialEq for Topology {
    /// Two topologies are equal when they hold the same members with the same roles and each
    /// observer has the same interval and upstream (the arena layout does not matter).
    fn eq(&self, other: &Topology) -> bool {
        self.fan_out == other.fan_out
            && self.voters == other.voters
            && self.learners == other.learners
            && self.slot_of.len() == other.slot_of.len()
            && self.slot_of.keys().all(|&id| {
                other.slot_of.contains_key(&id)
                    && self.upstream(id) == other.upstream(id)
                    && self.level(id) == other.level(id)
            })
    }
}
