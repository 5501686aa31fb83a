//! The snapshot image of the replicated state: what a snapshot's data holds, what a lagging
//! follower installs. Versioned, rkyv-encoded, and checked on the way in (it comes from a peer or
//! the disk).
//!
//! Version 3 is `IMAGE_V3_MAGIC` followed by the rkyv bytes of `StateImage`. Older versions, written
//! by older daemons, are still read: version 2 (`IMAGE_V2_MAGIC`, `StateImageV2`) lacks the
//! registers' plane (it loads disabled, to be enabled through the log: see
//! `state::registers`), and version 1 is the bare rkyv bytes of `StateImageV1`, which also lacks
//! `member_since`. The magics' first byte, 0xff, can begin no UTF-8 string, so a version-1 image,
//! which begins with its first member's out-of-line bytes, is not mistaken for a later one.

use std::collections::{BTreeMap, BTreeSet};

use ringraft_proto::{LogRecord, Member};
use ringraft_ring::RingState;
use rkyv::{Archive, Deserialize, Serialize};

use super::command::decode_checked;
use super::{AppLog, RegisterPlane, ReplicatedState, Retention};

const IMAGE_VERSION: u32 = 3;
const IMAGE_V2: u32 = 2;
const IMAGE_V1: u32 = 1;
const IMAGE_V3_MAGIC: &[u8; 8] = b"\xffRRIMG\x00\x03";
const IMAGE_V2_MAGIC: &[u8; 8] = b"\xffRRIMG\x00\x02";

#[derive(Archive, Serialize, Deserialize)]
struct StateImage {
    version: u32,
    cluster_id: u64,
    members: Vec<Member>,
    ring: Vec<u8>,
    replication_factor: u32,
    epoch: u64,
    applied_index: u64,
    log_first_index: u64,
    log: Vec<LogRecord>,
    /// (member id, index of the change that added it).
    member_since: Vec<MemberSince>,
    registers: PlaneImage,
}

#[derive(Archive, Serialize, Deserialize)]
struct PlaneImage {
    enabled: bool,
    stable_epoch: u64,
    /// `ringraft_ring` encoding of the stable acceptor ring.
    stable_ring: Vec<u8>,
    pending: Option<TransitionImage>,
}

#[derive(Archive, Serialize, Deserialize)]
struct TransitionImage {
    epoch: u64,
    ring: Vec<u8>,
    reported: Vec<u64>,
}

/// The version-2 layout, kept to read snapshots written before the registers' plane existed.
#[derive(Archive, Serialize, Deserialize)]
struct StateImageV2 {
    version: u32,
    cluster_id: u64,
    members: Vec<Member>,
    ring: Vec<u8>,
    replication_factor: u32,
    epoch: u64,
    applied_index: u64,
    log_first_index: u64,
    log: Vec<LogRecord>,
    member_since: Vec<MemberSince>,
}

#[derive(Archive, Serialize, Deserialize)]
struct MemberSince {
    id: u64,
    index: u64,
}

/// The version-1 layout, kept to read snapshots written before `member_since` existed.
#[derive(Archive, Serialize, Deserialize)]
struct StateImageV1 {
    version: u32,
    cluster_id: u64,
    members: Vec<Member>,
    ring: Vec<u8>,
    replication_factor: u32,
    epoch: u64,
    applied_index: u64,
    log_first_index: u64,
    log: Vec<LogRecord>,
}

impl From<StateImageV1> for StateImageV2 {
    fn from(v1: StateImageV1) -> StateImageV2 {
        StateImageV2 {
            version: v1.version,
            cluster_id: v1.cluster_id,
            members: v1.members,
            ring: v1.ring,
            replication_factor: v1.replication_factor,
            epoch: v1.epoch,
            applied_index: v1.applied_index,
            log_first_index: v1.log_first_index,
            log: v1.log,
            member_since: Vec::new(),
        }
    }
}

impl StateImageV2 {
    /// Older daemons ran no registers: their plane waits to be enabled through the log (nodes
    /// restarted from snapshots at different indexes would otherwise disagree about it).
    fn upgrade(self) -> StateImage {
        let registers = PlaneImage::of(&RegisterPlane::disabled());
        StateImage {
            version: IMAGE_VERSION,
            cluster_id: self.cluster_id,
            members: self.members,
            ring: self.ring,
            replication_factor: self.replication_factor,
            epoch: self.epoch,
            applied_index: self.applied_index,
            log_first_index: self.log_first_index,
            log: self.log,
            member_since: self.member_since,
            registers,
        }
    }
}

impl PlaneImage {
    fn of(plane: &RegisterPlane) -> PlaneImage {
        PlaneImage {
            enabled: plane.is_enabled(),
            stable_epoch: plane.stable_epoch(),
            stable_ring: plane.stable_ring().encode(),
            pending: plane.pending().map(|t| TransitionImage {
                epoch: t.epoch,
                ring: t.ring.encode(),
                reported: t.reported.iter().copied().collect(),
            }),
        }
    }

    fn restore(
        self,
        replication_factor: u32,
        applied_index: u64,
    ) -> Result<RegisterPlane, ImageError> {
        let ring = |bytes: &[u8]| {
            RingState::decode(bytes).map_err(|err| ImageError::Ring(format!("registers: {err}")))
        };
        let stable = ring(&self.stable_ring)?;
        let pending = match self.pending {
            None => None,
            Some(t) => Some((
                t.epoch,
                ring(&t.ring)?,
                t.reported.into_iter().collect::<BTreeSet<_>>(),
            )),
        };
        if self.stable_epoch > applied_index
            || pending
                .as_ref()
                .is_some_and(|(epoch, _, _)| *epoch > applied_index)
        {
            return Err(ImageError::Inconsistent(
                "the registers' plane is ahead of the image".into(),
            ));
        }
        RegisterPlane::from_parts(
            self.enabled,
            self.stable_epoch,
            stable,
            pending,
            replication_factor,
        )
        .ok_or_else(|| {
            ImageError::Inconsistent(
                "the registers' transition is not after its stable epoch".into(),
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("snapshot image: {0}")]
    Decode(#[from] super::command::DecodeError),
    #[error(
        "snapshot image version {0} is not supported (this daemon reads versions {IMAGE_V1} to {IMAGE_VERSION})"
    )]
    Version(u32),
    #[error("snapshot image ring: {0}")]
    Ring(String),
    #[error("snapshot image is inconsistent: {0}")]
    Inconsistent(String),
}

impl ReplicatedState {
    pub fn encode_image(&self) -> Vec<u8> {
        let image = StateImage {
            version: IMAGE_VERSION,
            cluster_id: self.cluster_id,
            members: self.members.values().cloned().collect(),
            ring: self.ring.encode(),
            replication_factor: self.replication_factor,
            epoch: self.epoch,
            applied_index: self.applied_index,
            log_first_index: self.log.first_index(),
            log: self.log.records().cloned().collect(),
            member_since: self
                .member_since
                .iter()
                .map(|(id, index)| MemberSince {
                    id: *id,
                    index: *index,
                })
                .collect(),
            registers: PlaneImage::of(&self.registers),
        };
        let body = ringraft_proto::codec::encode(&image)
            .unwrap_or_else(|err| panic!("encoding the state image cannot fail: {err}"));
        let mut bytes = Vec::with_capacity(IMAGE_V3_MAGIC.len() + body.len());
        bytes.extend_from_slice(IMAGE_V3_MAGIC);
        bytes.extend_from_slice(&body);
        bytes
    }

    pub fn decode_image(bytes: &[u8], retention: Retention) -> Result<ReplicatedState, ImageError> {
        let image: StateImage = if let Some(body) = bytes.strip_prefix(IMAGE_V3_MAGIC.as_slice()) {
            let image: StateImage = decode_checked(body)?;
            if image.version != IMAGE_VERSION {
                return Err(ImageError::Version(image.version));
            }
            image
        } else if let Some(body) = bytes.strip_prefix(IMAGE_V2_MAGIC.as_slice()) {
            let image: StateImageV2 = decode_checked(body)?;
            if image.version != IMAGE_V2 {
                return Err(ImageError::Version(image.version));
            }
            image.upgrade()
        } else {
            let image: StateImageV1 = decode_checked(bytes)?;
            if image.version != IMAGE_V1 {
                return Err(ImageError::Version(image.version));
            }
            StateImageV2::from(image).upgrade()
        };
        let ring =
            RingState::decode(&image.ring).map_err(|err| ImageError::Ring(err.to_string()))?;
        let members: BTreeMap<_, _> = image.members.into_iter().map(|m| (m.id, m)).collect();
        let ring_ids: Vec<u64> = ring.members().map(|m| m.id).collect();
        let member_ids: Vec<u64> = members.keys().copied().collect();
        if ring_ids != member_ids {
            return Err(ImageError::Inconsistent(format!(
                "members {member_ids:?} but ring members {ring_ids:?}"
            )));
        }
        if image.log.windows(2).any(|w| w[0].index >= w[1].index)
            || image
                .log
                .last()
                .is_some_and(|r| r.index > image.applied_index)
        {
            return Err(ImageError::Inconsistent("log records out of order".into()));
        }
        let mut member_since = BTreeMap::new();
        for entry in image.member_since {
            if !members.contains_key(&entry.id) || entry.index > image.applied_index {
                return Err(ImageError::Inconsistent(format!(
                    "member {} added at index {} is not a member of the image at index {}",
                    entry.id, entry.index, image.applied_index
                )));
            }
            member_since.insert(entry.id, entry.index);
        }
        let registers = image
            .registers
            .restore(image.replication_factor, image.applied_index)?;
        Ok(ReplicatedState {
            cluster_id: image.cluster_id,
            members,
            ring,
            replication_factor: image.replication_factor,
            epoch: image.epoch,
            member_since,
            applied_index: image.applied_index,
            log: AppLog::from_parts(
                retention,
                image.log_first_index,
                image.applied_index,
                image.log,
            ),
            registers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringraft_proto::MemberRole;
    use ringraft_raft::{ConfChange, ConfChangeStep, Entry, EntryPayload};

    fn member(id: u64) -> Member {
        super::super::test_member(id)
    }

    /// Three initial voters and a learner added at index 2.
    fn state_with_learner() -> ReplicatedState {
        let mut state = ReplicatedState::bootstrap(
            vec![member(1), member(2), member(3)],
            3,
            Retention::default(),
        )
        .unwrap();
        let mut learner = member(4);
        learner.role = MemberRole::Learner;
        state.apply(&Entry {
            term: 2,
            index: 2,
            payload: EntryPayload::ConfChange(ConfChange {
                changes: vec![ConfChangeStep::AddLearner(4)],
                auto_leave: true,
                context: super::super::encode_member(&learner),
            }),
        });
        state
    }

    #[test]
    fn image_keeps_the_index_each_member_was_added_at() {
        let state = state_with_learner();
        assert_eq!(state.member_since(1), Some(1));
        assert_eq!(state.member_since(4), Some(2));
        let restored =
            ReplicatedState::decode_image(&state.encode_image(), Retention::default()).unwrap();
        assert_eq!(restored, state);
    }

    #[test]
    fn version_one_images_still_load_without_member_since() {
        let state = state_with_learner();
        let v1 = StateImageV1 {
            version: IMAGE_V1,
            cluster_id: state.cluster_id,
            members: state.members.values().cloned().collect(),
            ring: state.ring.encode(),
            replication_factor: state.replication_factor,
            epoch: state.epoch,
            applied_index: state.applied_index,
            log_first_index: state.log.first_index(),
            log: Vec::new(),
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&v1).unwrap();
        let restored = ReplicatedState::decode_image(&bytes, Retention::default()).unwrap();
        assert_eq!(restored.member(4), state.member(4));
        assert_eq!(restored.epoch(), state.epoch());
        assert_eq!(
            restored.member_since(4),
            None,
            "a v1 image does not know it"
        );
    }

    fn v2_image_of(state: &ReplicatedState) -> Vec<u8> {
        let v2 = StateImageV2 {
            version: IMAGE_V2,
            cluster_id: state.cluster_id,
            members: state.members.values().cloned().collect(),
            ring: state.ring.encode(),
            replication_factor: state.replication_factor,
            epoch: state.epoch,
            applied_index: state.applied_index,
            log_first_index: state.log.first_index(),
            log: Vec::new(),
            member_since: Vec::new(),
        };
        let body = rkyv::to_bytes::<rkyv::rancor::Error>(&v2).unwrap();
        let mut bytes = IMAGE_V2_MAGIC.to_vec();
        bytes.extend_from_slice(&body);
        bytes
    }

    fn apply_command(
        state: &mut ReplicatedState,
        index: u64,
        command: &super::super::StateCommand,
    ) {
        state.apply(&Entry {
            term: 2,
            index,
            payload: EntryPayload::Normal(super::super::encode_command(command)),
        });
    }

    /// Two nodes restarted from version-2 snapshots taken before and after a join disagree about
    /// nothing: both planes wait, and the leader's `RegistersEnabled` makes them equal.
    #[test]
    fn version_two_images_load_with_registers_disabled_until_the_log_enables_them() {
        let before = ReplicatedState::bootstrap(
            vec![member(1), member(2), member(3)],
            3,
            Retention::default(),
        )
        .unwrap();
        let after = state_with_learner(); // the same, plus the join at index 2
        let mut early =
            ReplicatedState::decode_image(&v2_image_of(&before), Retention::default()).unwrap();
        let mut late =
            ReplicatedState::decode_image(&v2_image_of(&after), Retention::default()).unwrap();
        assert!(!early.registers().is_enabled() && !late.registers().is_enabled());
        // The early node replays the join the late one's snapshot already holds.
        let mut learner = member(4);
        learner.role = MemberRole::Learner;
        early.apply(&Entry {
            term: 2,
            index: 2,
            payload: EntryPayload::ConfChange(ConfChange {
                changes: vec![ConfChangeStep::AddLearner(4)],
                auto_leave: true,
                context: super::super::encode_member(&learner),
            }),
        });
        assert!(
            !early.registers().is_enabled(),
            "a replayed change starts nothing"
        );
        for state in [&mut early, &mut late] {
            apply_command(state, 3, &super::super::StateCommand::RegistersEnabled);
        }
        assert!(early.registers().is_enabled());
        assert_eq!(early.registers(), late.registers());
        assert_eq!(early.registers().stable_epoch(), 3);
        let restored =
            ReplicatedState::decode_image(&early.encode_image(), Retention::default()).unwrap();
        assert_eq!(
            restored.registers(),
            early.registers(),
            "v3 keeps the plane"
        );
    }

    #[test]
    fn damaged_images_are_errors_not_panics() {
        let bytes = state_with_learner().encode_image();
        for cut in 0..bytes.len() {
            let _ = ReplicatedState::decode_image(&bytes[..cut], Retention::default());
        }
        let mut flipped = bytes.clone();
        for i in (0..flipped.len()).step_by(7) {
            flipped[i] ^= 0x5a;
            let _ = ReplicatedState::decode_image(&flipped, Retention::default());
            flipped[i] ^= 0x5a;
        }
    }
}
