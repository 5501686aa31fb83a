use std::time::Duration;

use ringraft_proto::{ServerLimits, FRAME_BYTES_MAX};

/// Limits and permissions of the local socket server.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Peer uids (from SO_PEERCRED) allowed to make admin requests.
    pub admin_uids: Vec<u32>,
    /// Connections served at once; a client past the limit is told `Busy` in the handshake.
    pub connections_max: usize,
    /// Largest request payload accepted (capped at `FRAME_BYTES_MAX`).
    pub frame_bytes_max: usize,
    /// Largest proposal the node commits (told to clients in the handshake; the node checks it).
    pub proposal_bytes_max: usize,
    /// Largest register value the node stores (told to clients in the handshake; checked again
    /// by the registers and by every acceptor).
    pub kv_value_bytes_max: usize,
    /// Requests answered concurrently per connection; past it the server stops reading from that
    /// connection until answers drain (backpressure, not an error).
    pub in_flight_per_connection_max: usize,
    /// Running `WatchLog` streams per connection; one more is answered `Busy`.
    pub watches_per_connection_max: usize,
    /// Encoded answers queued for one connection's writer before request tasks wait.
    pub outbound_frames_max: usize,
    /// A client that has not sent its hello within this time is disconnected.
    pub handshake_timeout: Duration,
    /// A client that began a frame must finish it within this time, or it is disconnected (a
    /// half-sent frame would otherwise hold a connection slot forever).
    pub frame_read_timeout: Duration,
}

impl Default for ApiConfig {
    /// Root and the daemon's own uid are admins; generous limits for a node-local socket.
    fn default() -> ApiConfig {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let own_uid = unsafe { libc::geteuid() };
        let mut admin_uids = vec![0];
        if own_uid != 0 {
            admin_uids.push(own_uid);
        }
        ApiConfig {
            admin_uids,
            connections_max: 1024,
            frame_bytes_max: FRAME_BYTES_MAX,
            proposal_bytes_max: FRAME_BYTES_MAX,
            kv_value_bytes_max: ringraft_proto::limits::KV_VALUE_BYTES_MAX_DEFAULT,
            in_flight_per_connection_max: 256,
            watches_per_connection_max: 16,
            outbound_frames_max: 1024,
            handshake_timeout: Duration::from_secs(5),
            frame_read_timeout: Duration::from_secs(10),
        }
    }
}

impl ApiConfig {
    /// The limits a client learns in the handshake.
    pub fn limits(&self) -> ServerLimits {
        let to_u32 = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
        ServerLimits {
            frame_bytes_max: to_u32(self.frame_bytes_max.min(FRAME_BYTES_MAX)),
            proposal_bytes_max: to_u32(self.proposal_bytes_max),
            kv_value_bytes_max: to_u32(self.kv_value_bytes_max),
        }
    }
}
