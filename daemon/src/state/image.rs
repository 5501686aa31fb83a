//! The snapshot image of the replicated state: what a snapshot's data holds, what a lagging
//! follower installs. Versioned, rkyv-encoded, and checked on the way in (it comes from a peer or
//! the disk).

use std::collections::BTreeMap;

use ringraft_proto::{LogRecord, Member};
use ringraft_ring::RingState;
use rkyv::{Archive, Deserialize, Serialize};

use super::command::decode_checked;
use super::{AppLog, ReplicatedState, Retention};

const IMAGE_VERSION: u32 = 1;

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
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("snapshot image: {0}")]
    Decode(#[from] super::command::DecodeError),
    #[error(
        "snapshot image version {0} is not supported (this daemon reads version {IMAGE_VERSION})"
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
        };
        rkyv::to_bytes::<rkyv::rancor::Error>(&image)
            .map(|bytes| bytes.into_vec())
            .unwrap_or_else(|err| panic!("encoding the state image cannot fail: {err}"))
    }

    pub fn decode_image(bytes: &[u8], retention: Retention) -> Result<ReplicatedState, ImageError> {
        let image: StateImage = decode_checked(bytes)?;
        if image.version != IMAGE_VERSION {
            return Err(ImageError::Version(image.version));
        }
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
        Ok(ReplicatedState {
            cluster_id: image.cluster_id,
            members,
            ring,
            replication_factor: image.replication_factor,
            epoch: image.epoch,
            applied_index: image.applied_index,
            log: AppLog::from_parts(
                retention,
                image.log_first_index,
                image.applied_index,
                image.log,
            ),
        })
    }
}
