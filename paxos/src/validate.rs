//! Checks on messages from peers, before any of their content is used. Peers are authenticated
//! but may be buggy, old or replaying: every field is bounded and consistent, or the message is
//! dropped.

use crate::limits::{BALLOT_COUNTER_MAX, KEY_BYTES_MAX};
use crate::message::{Body, Message};

/// A request to an acceptor: the ballot is the sender's own and not zero, the key is bounded.
/// The register's size is checked separately so an oversized value gets a `TooLarge` refusal.
pub(crate) fn is_well_formed_request(message: &Message) -> bool {
    if message.key.len() > KEY_BYTES_MAX || message.body.ballot().counter > BALLOT_COUNTER_MAX {
        return false;
    }
    match &message.body {
        Body::Prepare { ballot } | Body::Accept { ballot, .. } | Body::Forget { ballot } => {
            ballot.counter > 0 && ballot.node == message.from
        }
        _ => false,
    }
}

/// A reply to a proposer: registers well formed, an accepted ballot below the promised one.
pub(crate) fn is_well_formed_reply(message: &Message, value_bytes_max: usize) -> bool {
    if message.key.len() > KEY_BYTES_MAX || message.body.ballot().counter > BALLOT_COUNTER_MAX {
        return false;
    }
    if let Body::Refuse {
        reason: crate::message::Refusal::Promised(promised),
        ..
    } = &message.body
    {
        if promised.counter > BALLOT_COUNTER_MAX {
            return false;
        }
    }
    match &message.body {
        Body::Promise { ballot, accepted } => accepted
            .as_ref()
            .is_none_or(|(b, r)| b < ballot && r.is_well_formed(value_bytes_max)),
        Body::Accepted { .. } | Body::Refuse { .. } | Body::Forgot { .. } => true,
        _ => false,
    }
}
