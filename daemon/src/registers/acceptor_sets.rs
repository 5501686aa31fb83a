//! Who a key's acceptors are, from the registers' plane (`state::registers`): the key's
//! replicas on the stable acceptor ring, and while a transition is pending, on its ring too.

use std::sync::Arc;

use ringraft_paxos::KeyConfig;
use ringraft_ring::Ring;

use crate::state::RegisterPlane;

/// Query-ready rings of one plane, rebuilt only when the plane changes.
pub struct AcceptorSets {
    plane: Arc<RegisterPlane>,
    stable: Ring,
    pending: Option<(u64, Ring)>,
    replication: usize,
}

impl AcceptorSets {
    pub fn new(plane: Arc<RegisterPlane>, replication: u32) -> AcceptorSets {
        let stable = Ring::new(plane.stable_ring().clone());
        let pending = plane
            .pending()
            .map(|t| (t.epoch, Ring::new(t.ring.clone())));
        AcceptorSets {
            plane,
            stable,
            pending,
            replication: (replication as usize).min(ringraft_paxos::limits::ACCEPTORS_MAX),
        }
    }

    pub fn plane(&self) -> &Arc<RegisterPlane> {
        &self.plane
    }

    /// True if `plane` is the one these sets were built from.
    pub fn is_of(&self, plane: &Arc<RegisterPlane>) -> bool {
        Arc::ptr_eq(&self.plane, plane) || *self.plane == **plane
    }

    /// The key's configuration, or `None` if no member owns keys (nothing to ask).
    pub fn config_of(&self, key: &[u8]) -> Option<KeyConfig> {
        let stable_epoch = self.plane.stable_epoch();
        let old = self.replicas(&self.stable, key);
        match &self.pending {
            None => (!old.is_empty()).then(|| KeyConfig::stable(stable_epoch, old)),
            Some((epoch, ring)) => {
                let new = self.replicas(ring, key);
                if new.is_empty() {
                    return None;
                }
                if old == new || old.is_empty() {
                    // This key does not move (or had no acceptors to move from).
                    return Some(KeyConfig::stable(*epoch, new));
                }
                Some(KeyConfig {
                    epoch: *epoch,
                    acceptors: new,
                    previous: Some((stable_epoch, old)),
                })
            }
        }
    }

    /// The key's owner on the newest acceptor ring: the node requests for the key are
    /// forwarded to, so that one proposer keeps its next ballot promised.
    pub fn owner_of(&self, key: &[u8]) -> Option<u64> {
        let ring = self.pending.as_ref().map_or(&self.stable, |(_, ring)| ring);
        ring.owner(key).map(|owner| owner.member)
    }

    fn replicas(&self, ring: &Ring, key: &[u8]) -> Vec<u64> {
        let mut set = ring.replicas(key, self.replication).members;
        set.sort_unstable();
        set
    }
}
