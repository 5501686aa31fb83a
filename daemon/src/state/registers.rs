//! Where the per-key registers' acceptor sets stand: the replicated half of the handoff in
//! docs/paxos.md ("Ring epoch changes and the handoff", and "In the daemon").
//!
//! A key's acceptors are its replicas on the *acceptor ring*: the ring with down members counted
//! as members (a down acceptor is a missing vote; only joins, removals, drains and weight
//! changes move sets). The plane holds the acceptor ring of the last completed transition
//! (`stable`) and at most one transition in progress (`pending`): while it is pending, a key whose
//! sets differ between the two rings runs every round under both majorities. Each node hands off
//! the registers it holds and then reports through the log; the transition completes once, for
//! every acceptor set of the stable ring whose keys move, a majority of that set has reported.
//! Why a majority per set and not "every live node": a register chosen on a majority M of its old
//! set A is held by every member of M, and a majority of A that reported meets M, so some
//! reporter held the register and carried it to the new set before reporting. Ring changes that
//! arrive while a transition is pending wait; the next transition then goes straight to the newest
//! acceptor ring.

use std::collections::BTreeSet;

use ringraft_proto::NodeId;
use ringraft_ring::{MemberState, Ring, RingState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPlane {
    /// False in a state that came from a daemon that ran no registers (a version-2 snapshot
    /// image, and the entries replayed on top of it): nodes that restarted from different
    /// snapshots would disagree about transitions. The leader then commits
    /// `StateCommand::RegistersEnabled`, which makes the plane stable at that entry on every node
    /// alike; until it is applied, the registers do not serve.
    enabled: bool,
    stable_epoch: u64,
    stable: RingState,
    pending: Option<Transition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub epoch: u64,
    pub ring: RingState,
    pub reported: BTreeSet<NodeId>,
    /// The acceptor sets of the stable ring whose keys move (derived from the two rings, not
    /// stored in snapshots): each needs a majority of its members reported.
    moving_sets: Vec<Vec<NodeId>>,
}

impl Transition {
    fn new(epoch: u64, stable: &RingState, ring: RingState, replication: u32) -> Transition {
        let moving_sets = moving_sets(stable, &ring, replication);
        Transition {
            epoch,
            ring,
            reported: BTreeSet::new(),
            moving_sets,
        }
    }

    /// The acceptor sets still waiting for reports; `ring` is the current ring (who is still a
    /// member).
    pub fn sets_waiting(&self, ring: &RingState) -> usize {
        self.moving_sets
            .iter()
            .filter(|set| !set_handed_off(set, &self.reported, ring))
            .count()
    }

    fn is_complete(&self, ring: &RingState) -> bool {
        self.sets_waiting(ring) == 0
    }
}

impl RegisterPlane {
    /// A plane with no transition: acceptor sets from `ring` as of `epoch`.
    pub fn stable(epoch: u64, ring: &RingState) -> RegisterPlane {
        RegisterPlane {
            enabled: true,
            stable_epoch: epoch,
            stable: acceptor_ring(ring),
            pending: None,
        }
    }

    /// A plane that waits for `StateCommand::RegistersEnabled` (see `enabled`).
    pub fn disabled() -> RegisterPlane {
        RegisterPlane {
            enabled: false,
            stable_epoch: 0,
            stable: RingState::new(ringraft_ring::DEFAULT_VNODES)
                .unwrap_or_else(|err| panic!("the default vnodes setting is valid: {err}")),
            pending: None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The entry at `index` enables the registers: stable on `ring`. True if it changed.
    pub(super) fn enable(&mut self, index: u64, ring: &RingState) -> bool {
        if self.enabled {
            return false;
        }
        *self = RegisterPlane::stable(index, ring);
        true
    }

    /// Rebuilds a plane read from a snapshot image; `None` if the parts cannot belong together.
    pub fn from_parts(
        enabled: bool,
        stable_epoch: u64,
        stable: RingState,
        pending: Option<(u64, RingState, BTreeSet<NodeId>)>,
        replication: u32,
    ) -> Option<RegisterPlane> {
        let pending = match pending {
            None => None,
            Some((epoch, _, _)) if epoch <= stable_epoch => return None,
            Some((epoch, ring, reported)) => {
                let mut transition = Transition::new(epoch, &stable, ring, replication);
                transition.reported = reported;
                Some(transition)
            }
        };
        if !enabled && (stable_epoch != 0 || pending.is_some()) {
            return None;
        }
        Some(RegisterPlane {
            enabled,
            stable_epoch,
            stable,
            pending,
        })
    }

    pub fn stable_epoch(&self) -> u64 {
        self.stable_epoch
    }

    pub fn stable_ring(&self) -> &RingState {
        &self.stable
    }

    /// What tells two states of one plane apart in O(1): every change of the plane moves it
    /// (enabling; a completion moves the stable epoch; a new transition has a newer epoch; a
    /// report grows the reported set, which never shrinks within a transition). For deciding
    /// whether to republish without comparing whole rings; not for planes of different nodes.
    pub fn revision(&self) -> (bool, u64, Option<(u64, usize)>) {
        (
            self.enabled,
            self.stable_epoch,
            self.pending.as_ref().map(|t| (t.epoch, t.reported.len())),
        )
    }

    pub fn pending(&self) -> Option<&Transition> {
        self.pending.as_ref()
    }

    /// The newest epoch the plane knows: the pending one, else the stable one.
    pub fn epoch(&self) -> u64 {
        self.pending.as_ref().map_or(self.stable_epoch, |t| t.epoch)
    }

    /// The ring changed (the entry at `ring.epoch()`): start a transition if none is pending and
    /// the acceptor sets differ. True if the plane changed.
    pub(super) fn ring_changed(&mut self, ring: &RingState, replication: u32) -> bool {
        if !self.enabled {
            return false;
        }
        if self.pending.is_some() {
            // The next transition starts from the newest ring once this one completes; a
            // removal may complete this one (see `set_handed_off`).
            let before = self.pending.as_ref().map(|t| t.epoch);
            self.complete_if_done(ring, replication);
            return self.pending.as_ref().map(|t| t.epoch) != before;
        }
        let next = acceptor_ring(ring);
        if same_acceptor_sets(&self.stable, &next) {
            return false;
        }
        let transition = Transition::new(ring.epoch(), &self.stable, next, replication);
        self.pending = Some(transition);
        self.complete_if_done(ring, replication);
        true
    }

    /// `node` has handed off every register it holds for the transition at `epoch`. True if the
    /// plane changed. A report for another epoch is stale (or early) and ignored.
    pub(super) fn handed_off(
        &mut self,
        node: NodeId,
        epoch: u64,
        ring: &RingState,
        replication: u32,
    ) -> bool {
        let Some(transition) = self.pending.as_mut().filter(|t| t.epoch == epoch) else {
            return false; // also when disabled: nothing is pending
        };
        if !transition.reported.insert(node) {
            return false;
        }
        self.complete_if_done(ring, replication);
        true
    }

    /// Completes the pending transition if every moving set has a reporting majority, then
    /// starts the next one if the ring has moved on meanwhile.
    fn complete_if_done(&mut self, ring: &RingState, replication: u32) {
        if !self.pending.as_ref().is_some_and(|t| t.is_complete(ring)) {
            return;
        }
        if let Some(done) = self.pending.take() {
            self.stable_epoch = done.epoch;
            self.stable = done.ring;
        }
        if ring.epoch() > self.stable_epoch {
            self.ring_changed(ring, replication);
        }
    }
}

impl RegisterPlane {
    /// Why removing `id` now could lose registers, if it could: it is in a set of the pending
    /// transition that still waits for reports, it has not reported, and without it the set's
    /// remaining members are no majority (so they might all lack a register that only `id`
    /// and members already removed hold). A member held down is not waited for: it may never
    /// come back, and the operator removing it knows.
    pub fn removal_hazard(&self, id: NodeId, ring: &RingState, down: bool) -> Option<String> {
        let transition = self.pending.as_ref()?;
        if down || transition.reported.contains(&id) {
            return None;
        }
        let set = transition.moving_sets.iter().find(|set| {
            set.contains(&id) && !set_handed_off(set, &transition.reported, ring) && {
                let others = set
                    .iter()
                    .filter(|m| **m != id && ring.member(**m).is_some())
                    .count();
                others <= set.len() / 2
            }
        })?;
        Some(format!(
            "member {id} has not yet handed off its registers for the transition at epoch {} and \
             without it their acceptor set {set:?} has no majority left to do so",
            transition.epoch
        ))
    }
}

/// The ring acceptor sets come from: down members count as members.
pub fn acceptor_ring(ring: &RingState) -> RingState {
    let mut acceptors = ring.clone();
    let down: Vec<NodeId> = ring
        .members()
        .filter(|m| m.state == MemberState::Down)
        .map(|m| m.id)
        .collect();
    for id in down {
        // Same epoch, known member: cannot fail.
        let _ = acceptors.set_state(id, MemberState::Active, ring.epoch());
    }
    acceptors
}

/// Same members (with zone, weight and state) and the same tokens: every key has the same
/// acceptors in both.
fn same_acceptor_sets(a: &RingState, b: &RingState) -> bool {
    a.vnodes() == b.vnodes() && a.members().eq(b.members()) && a.tokens().eq(b.tokens())
}

/// A moving set is handed off once a majority of it reported, or once every member of it that
/// is still in the cluster reported. The second case is a set that lost members to removal
/// before they reported: a register chosen on a majority of the set that includes a remaining
/// member was carried by it; one chosen only on removed members went with them (as a Raft log
/// goes with a removed majority), and waiting would bring nothing back but would stop every
/// later change of acceptor sets.
fn set_handed_off(set: &[NodeId], reported: &BTreeSet<NodeId>, ring: &RingState) -> bool {
    let count = set.iter().filter(|id| reported.contains(id)).count();
    count > set.len() / 2
        || set
            .iter()
            .all(|id| reported.contains(id) || ring.member(*id).is_none())
}

/// Every distinct acceptor set of `from` whose keys have another set in `to`. The sets are
/// constant between consecutive token positions of either ring, so looking at every position
/// of both covers every key.
fn moving_sets(from: &RingState, to: &RingState, replication: u32) -> Vec<Vec<NodeId>> {
    // The same clamp as the registers' key configurations (`registers::acceptor_sets`).
    let n = (replication as usize).min(ringraft_paxos::limits::ACCEPTORS_MAX);
    let (old, new) = (Ring::new(from.clone()), Ring::new(to.clone()));
    let positions: BTreeSet<u64> = from
        .tokens()
        .chain(to.tokens())
        .map(|t| t.position)
        .collect();
    let mut sets = BTreeSet::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for position in positions {
        old.replicas_at_into(position, n, &mut a);
        new.replicas_at_into(position, n, &mut b);
        a.sort_unstable();
        b.sort_unstable();
        if a != b && !a.is_empty() {
            sets.insert(a.clone());
        }
    }
    sets.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_ring::Member;

    fn ring_of(ids: &[NodeId], epoch: u64) -> RingState {
        let mut ring = RingState::new(ringraft_ring::DEFAULT_VNODES).unwrap();
        for id in ids {
            ring.join(Member::new(*id, 1), epoch).unwrap();
        }
        ring
    }

    #[test]
    fn a_disabled_plane_ignores_changes_until_enabled_then_is_stable_there() {
        let mut ring = ring_of(&[1, 2, 3], 1);
        let mut plane = RegisterPlane::disabled();
        ring.join(Member::new(4, 1), 7).unwrap();
        assert!(!plane.ring_changed(&ring, 3));
        assert!(!plane.handed_off(1, 7, &ring, 3));
        assert!(plane.enable(9, &ring));
        assert!(!plane.enable(10, &ring), "once");
        assert_eq!(plane, RegisterPlane::stable(9, &ring));
    }

    #[test]
    fn a_down_member_moves_no_acceptor_set() {
        let mut ring = ring_of(&[1, 2, 3, 4], 1);
        let mut plane = RegisterPlane::stable(1, &ring);
        ring.set_state(2, MemberState::Down, 5).unwrap();
        assert!(!plane.ring_changed(&ring, 3));
        assert!(plane.pending().is_none());
        ring.set_state(3, MemberState::Draining, 6).unwrap();
        assert!(plane.ring_changed(&ring, 3));
        assert_eq!(plane.pending().unwrap().epoch, 6);
    }

    #[test]
    fn a_transition_completes_once_a_majority_of_every_moving_set_reported() {
        let mut ring = ring_of(&[1, 2, 3], 1);
        let mut plane = RegisterPlane::stable(1, &ring);
        ring.join(Member::new(4, 1), 7).unwrap();
        assert!(plane.ring_changed(&ring, 3));
        // With three members and replication 3, the only old set is {1, 2, 3}: two of them.
        assert!(plane.handed_off(4, 7, &ring, 3), "node 4 is recorded");
        assert!(!plane.handed_off(4, 7, &ring, 3), "once");
        assert!(plane.handed_off(1, 7, &ring, 3));
        assert!(
            plane.pending().is_some(),
            "4 is not in the old set; 1 alone is no majority"
        );
        assert!(
            !plane.handed_off(2, 6, &ring, 3),
            "a report for another epoch"
        );
        assert!(plane.handed_off(2, 7, &ring, 3));
        assert!(plane.pending().is_none());
        assert_eq!(plane.stable_epoch(), 7);
        assert_eq!(plane.stable_ring(), &acceptor_ring(&ring));
    }

    #[test]
    fn changes_during_a_transition_wait_and_the_next_goes_to_the_newest_ring() {
        let mut ring = ring_of(&[1, 2, 3], 1);
        let mut plane = RegisterPlane::stable(1, &ring);
        ring.join(Member::new(4, 1), 7).unwrap();
        plane.ring_changed(&ring, 3);
        ring.join(Member::new(5, 1), 9).unwrap();
        assert!(!plane.ring_changed(&ring, 3), "waits");
        plane.handed_off(1, 7, &ring, 3);
        plane.handed_off(2, 7, &ring, 3);
        assert_eq!(plane.stable_epoch(), 7);
        let next = plane.pending().expect("the next transition started");
        assert_eq!(next.epoch, 9);
        assert_eq!(next.ring, acceptor_ring(&ring));
    }

    #[test]
    fn a_set_that_lost_members_to_removal_completes_once_the_rest_reported() {
        let mut ring = ring_of(&[1, 2, 3], 1);
        let mut plane = RegisterPlane::stable(1, &ring);
        ring.join(Member::new(4, 1), 7).unwrap();
        plane.ring_changed(&ring, 3);
        // Old set {1, 2, 3}: 1 and 2 are removed before reporting; 3 alone is no majority.
        ring.leave(1, 8).unwrap();
        assert!(!plane.ring_changed(&ring, 3));
        ring.leave(2, 9).unwrap();
        assert!(plane.pending().is_some());
        assert!(plane.handed_off(3, 7, &ring, 3));
        assert_eq!(
            plane.stable_epoch(),
            7,
            "every remaining member of the set reported"
        );
        assert_eq!(
            plane.pending().map(|t| t.epoch),
            Some(9),
            "the next one started"
        );
    }

    #[test]
    fn removing_a_live_member_that_a_set_still_needs_is_a_hazard() {
        let mut ring = ring_of(&[1, 2, 3], 1);
        let mut plane = RegisterPlane::stable(1, &ring);
        ring.leave(1, 5).unwrap();
        plane.ring_changed(&ring, 3);
        // {1, 2, 3} waits; 1 is gone: removing 2 would leave 3 alone.
        assert!(plane.removal_hazard(2, &ring, false).is_some());
        assert!(
            plane.removal_hazard(2, &ring, true).is_none(),
            "down: not waited for"
        );
        plane.handed_off(2, 5, &ring, 3);
        assert!(
            plane.removal_hazard(2, &ring, false).is_none(),
            "2 reported"
        );
        let mut ring4 = ring_of(&[1, 2, 3, 4], 1);
        let mut plane4 = RegisterPlane::stable(1, &ring4);
        ring4.join(Member::new(5, 1), 5).unwrap();
        plane4.ring_changed(&ring4, 3);
        let any_set_member = plane4.pending().unwrap().moving_sets[0][0];
        assert!(
            plane4
                .removal_hazard(any_set_member, &ring4, false)
                .is_none(),
            "the other two of its set are a majority"
        );
    }

    /// Over a random run of joins, leaves, drains, verdicts and reports, the plane changed
    /// exactly when its revision did.
    #[test]
    fn the_revision_moves_exactly_when_the_plane_changes() {
        let mut ring = ring_of(&[1, 2, 3, 4, 5], 1);
        let mut plane = RegisterPlane::disabled();
        let mut next_id = 6;
        let (mut changes, mut steps) = (0, 0);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random = |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        for epoch in 2..300 {
            let before = plane.clone();
            let ids: Vec<NodeId> = ring.members().map(|m| m.id).collect();
            let any = ids[random(ids.len() as u64) as usize];
            match random(8) {
                0 => {
                    plane.enable(epoch, &ring);
                }
                1 => {
                    ring.join(Member::new(next_id, 1), epoch).unwrap();
                    next_id += 1;
                    plane.ring_changed(&ring, 3);
                }
                2 if ids.len() > 3 => {
                    ring.leave(any, epoch).unwrap();
                    plane.ring_changed(&ring, 3);
                }
                3 => {
                    let state = [
                        MemberState::Active,
                        MemberState::Draining,
                        MemberState::Down,
                    ][random(3) as usize];
                    if ring.set_state(any, state, epoch).is_ok() {
                        plane.ring_changed(&ring, 3);
                    }
                }
                _ => {
                    let pending = plane.pending().map_or(epoch, |t| t.epoch);
                    plane.handed_off(any, pending, &ring, 3);
                }
            }
            steps += 1;
            let changed = plane != before;
            changes += usize::from(changed);
            assert_eq!(
                changed,
                plane.revision() != before.revision(),
                "step at epoch {epoch}"
            );
        }
        assert!(changes > 20, "{changes} changes in {steps} steps");
    }

    #[test]
    fn moving_sets_are_exactly_the_old_sets_that_change() {
        let from = ring_of(&[1, 2, 3, 4, 5], 1);
        let mut to = from.clone();
        to.join(Member::new(6, 1), 2).unwrap();
        let sets = moving_sets(&from, &to, 3);
        assert!(!sets.is_empty());
        // Brute force over many keys: every key whose set changes has its old set listed,
        // and every listed set is the old set of some key that moves.
        let (old, new) = (Ring::new(from.clone()), Ring::new(to.clone()));
        let mut seen = BTreeSet::new();
        for k in 0..20_000u32 {
            let key = k.to_le_bytes();
            let mut a = old.replicas(&key, 3).members;
            let mut b = new.replicas(&key, 3).members;
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                assert!(sets.contains(&a), "key {k}: old set {a:?} not listed");
                seen.insert(a);
            }
        }
        assert_eq!(seen.len(), sets.len(), "every listed set moves some key");
        assert!(moving_sets(&from, &from, 3).is_empty());
    }
}
