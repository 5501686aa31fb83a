//! The lookup view inside a [`crate::Ring`]: the active tokens in an [`ActiveIndex`], each
//! tagged with a *slot* (a small number per owning member, reused after the member stops
//! owning) so the zone walk can track picks in bit sets; and zone classes per slot.
//!
//! The view only ever changes one member at a time ([`View::withdraw`] before a change,
//! [`View::admit`] after), so it is never rebuilt after the first time.

use std::collections::HashMap;

use crate::index::ActiveIndex;
use crate::state::RingState;
use crate::{MemberId, MemberState};

#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) index: ActiveIndex,
    pub(crate) slots: Slots,
    /// Owning members (active, holding tokens), ascending id.
    pub(crate) owning: Vec<MemberId>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    /// Member of each slot; a freed slot keeps its last member until reused.
    pub(crate) member: Vec<MemberId>,
    /// Zone class of each slot.
    pub(crate) zone: Vec<u32>,
    free: Vec<u32>,
    of: HashMap<MemberId, u32>,
    pub(crate) zones: ZoneClasses,
}

/// Zone classes: members sharing a non-empty zone share a class; a member without zone has
/// a class of its own. Class numbers are reused once free.
#[derive(Clone, Debug, Default)]
pub(crate) struct ZoneClasses {
    /// Class and member count of each named zone in use.
    named: HashMap<String, (u32, u32)>,
    free: Vec<u32>,
    next: u32,
    live: usize,
}

impl ZoneClasses {
    /// Classes in use.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// One more than the largest class number ever handed out.
    pub(crate) fn capacity(&self) -> usize {
        self.next as usize
    }

    fn acquire(&mut self, zone: &str) -> u32 {
        if let Some((class, count)) = self.named.get_mut(zone) {
            *count += 1;
            return *class;
        }
        let class = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.live += 1;
        if !zone.is_empty() {
            self.named.insert(zone.to_owned(), (class, 1));
        }
        class
    }

    fn release(&mut self, zone: &str, class: u32) {
        if let Some((_, count)) = self.named.get_mut(zone) {
            *count -= 1;
            if *count > 0 {
                return;
            }
            self.named.remove(zone);
        }
        self.free.push(class);
        self.live -= 1;
    }
}

impl View {
    pub(crate) fn new(state: &RingState) -> View {
        let mut view = View {
            index: ActiveIndex::from_sorted(&[]),
            slots: Slots::default(),
            owning: Vec::new(),
        };
        for member in state.members.values() {
            if member.state == MemberState::Active && state.tokens.count_of(member.id) > 0 {
                view.take_slot(member.id, &member.zone);
            }
        }
        let entries: Vec<(u64, u32)> = state
            .tokens
            .iter()
            .filter_map(|t| view.slots.of.get(&t.member).map(|&slot| (t.position, slot)))
            .collect();
        view.index = ActiveIndex::from_sorted(&entries);
        view
    }

    /// Takes member `id` out of the view; `state` must be the one the view was made for.
    pub(crate) fn withdraw(&mut self, id: MemberId, state: &RingState) {
        let Some(slot) = self.slots.of.remove(&id) else {
            return;
        };
        for position in state.tokens.positions_of(id) {
            let removed = self.index.remove(position);
            assert!(
                removed,
                "view out of step: token {position} of {id} not indexed"
            );
        }
        let zone = state.members.get(&id).map_or("", |m| m.zone.as_str());
        self.slots
            .zones
            .release(zone, self.slots.zone[slot as usize]);
        self.slots.free.push(slot);
        if let Ok(at) = self.owning.binary_search(&id) {
            self.owning.remove(at);
        }
    }

    /// Puts member `id` back as `state` now has it: if it is active and holds tokens.
    pub(crate) fn admit(&mut self, id: MemberId, state: &RingState) {
        let Some(member) = state.members.get(&id) else {
            return;
        };
        if member.state != MemberState::Active || self.slots.of.contains_key(&id) {
            return;
        }
        let positions = state.tokens.positions_of(id);
        if positions.is_empty() {
            return;
        }
        let slot = self.take_slot(id, &member.zone);
        for position in positions {
            self.index.insert(position, slot);
        }
    }

    fn take_slot(&mut self, id: MemberId, zone: &str) -> u32 {
        let class = self.slots.zones.acquire(zone);
        let slot = match self.slots.free.pop() {
            Some(slot) => {
                self.slots.member[slot as usize] = id;
                self.slots.zone[slot as usize] = class;
                slot
            }
            None => {
                self.slots.member.push(id);
                self.slots.zone.push(class);
                (self.slots.member.len() - 1) as u32
            }
        };
        self.slots.of.insert(id, slot);
        // Appending is the common case (new ids grow); otherwise one shift of ids, at most
        // MEMBERS_MAX × 8 bytes.
        let at = self.owning.partition_point(|&m| m < id);
        self.owning.insert(at, id);
        slot
    }

    /// Heap bytes held, from capacities (hash maps: entries × entry size × 8/7 for slack).
    pub(crate) fn memory_bytes(&self) -> usize {
        let slots = &self.slots;
        self.index.memory_bytes()
            + slots.member.capacity() * 8
            + slots.zone.capacity() * 4
            + slots.free.capacity() * 4
            + slots.of.capacity() * (8 + 4 + 1) * 8 / 7
            + slots
                .zones
                .named
                .keys()
                .map(|zone| zone.capacity() + 24 + 8 + 1)
                .sum::<usize>()
            + self.owning.capacity() * 8
    }

    /// Compares with a view built from scratch for the same state.
    pub(crate) fn check(&self, fresh: &View) -> Result<(), String> {
        if self.owning != fresh.owning {
            return Err("owning members differ".into());
        }
        let tokens = |view: &View| -> Vec<(u64, MemberId)> {
            view.index
                .iter()
                .map(|(p, s)| (p, view.slots.member[s as usize]))
                .collect()
        };
        if tokens(self) != tokens(fresh) {
            return Err("indexed tokens differ".into());
        }
        if self.slots.zones.live != fresh.slots.zones.live {
            return Err(format!(
                "zone classes: {} kept, {} fresh",
                self.slots.zones.live, fresh.slots.zones.live
            ));
        }
        // Same partition of the owning members into classes: a bijection between numbers.
        let mut mapping: HashMap<u32, u32> = HashMap::new();
        for id in &self.owning {
            let class = |view: &View| view.slots.zone[view.slots.of[id] as usize];
            let (kept, built) = (class(self), class(fresh));
            if *mapping.entry(kept).or_insert(built) != built {
                return Err(format!("zone class of member {id} differs"));
            }
        }
        let mut images: Vec<u32> = mapping.values().copied().collect();
        images.sort_unstable();
        images.dedup();
        if images.len() != mapping.len() {
            return Err("two zone classes merged".into());
        }
        Ok(())
    }
}
