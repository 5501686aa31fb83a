//! The per-key registers' messages as they travel on a link: an rkyv mirror of
//! `ringraft_paxos::Message` (the sans-IO core knows no encoding). Decoding checks the bytes
//! (bytecheck, via the link's codec); the core then checks the values (`Acceptor::step` and
//! `Proposer::step` drop malformed messages), so nothing here trusts the peer.

use ringraft_paxos::{Ballot, Body, Message, Refusal, Register};
use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RegisterMessage {
    pub from: u64,
    pub to: u64,
    pub key: Vec<u8>,
    pub epoch: u64,
    pub body: RegisterBody,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireBallot {
    pub counter: u64,
    pub node: u64,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireRegister {
    pub value: Option<Vec<u8>>,
    pub version: u64,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum RegisterBody {
    Prepare {
        ballot: WireBallot,
    },
    Promise {
        ballot: WireBallot,
        accepted: Option<(WireBallot, WireRegister)>,
    },
    Accept {
        ballot: WireBallot,
        register: WireRegister,
    },
    Accepted {
        ballot: WireBallot,
    },
    Refuse {
        ballot: WireBallot,
        reason: WireRefusal,
    },
    Forget {
        ballot: WireBallot,
    },
    Forgot {
        ballot: WireBallot,
    },
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum WireRefusal {
    Promised(WireBallot),
    StaleEpoch,
    EpochAhead,
    NotAcceptor,
    TooLarge,
    NotTombstone,
}

impl From<Ballot> for WireBallot {
    fn from(b: Ballot) -> WireBallot {
        WireBallot {
            counter: b.counter,
            node: b.node,
        }
    }
}

impl From<WireBallot> for Ballot {
    fn from(b: WireBallot) -> Ballot {
        Ballot {
            counter: b.counter,
            node: b.node,
        }
    }
}

impl From<Register> for WireRegister {
    fn from(r: Register) -> WireRegister {
        WireRegister {
            value: r.value,
            version: r.version,
        }
    }
}

impl From<WireRegister> for Register {
    fn from(r: WireRegister) -> Register {
        Register {
            value: r.value,
            version: r.version,
        }
    }
}

impl From<Refusal> for WireRefusal {
    fn from(r: Refusal) -> WireRefusal {
        match r {
            Refusal::Promised(b) => WireRefusal::Promised(b.into()),
            Refusal::StaleEpoch => WireRefusal::StaleEpoch,
            Refusal::EpochAhead => WireRefusal::EpochAhead,
            Refusal::NotAcceptor => WireRefusal::NotAcceptor,
            Refusal::TooLarge => WireRefusal::TooLarge,
            Refusal::NotTombstone => WireRefusal::NotTombstone,
        }
    }
}

impl From<WireRefusal> for Refusal {
    fn from(r: WireRefusal) -> Refusal {
        match r {
            WireRefusal::Promised(b) => Refusal::Promised(b.into()),
            WireRefusal::StaleEpoch => Refusal::StaleEpoch,
            WireRefusal::EpochAhead => Refusal::EpochAhead,
            WireRefusal::NotAcceptor => Refusal::NotAcceptor,
            WireRefusal::TooLarge => Refusal::TooLarge,
            WireRefusal::NotTombstone => Refusal::NotTombstone,
        }
    }
}

impl From<Message> for RegisterMessage {
    fn from(m: Message) -> RegisterMessage {
        let body = match m.body {
            Body::Prepare { ballot } => RegisterBody::Prepare {
                ballot: ballot.into(),
            },
            Body::Promise { ballot, accepted } => RegisterBody::Promise {
                ballot: ballot.into(),
                accepted: accepted.map(|(b, r)| (b.into(), r.into())),
            },
            Body::Accept { ballot, register } => RegisterBody::Accept {
                ballot: ballot.into(),
                register: register.into(),
            },
            Body::Accepted { ballot } => RegisterBody::Accepted {
                ballot: ballot.into(),
            },
            Body::Refuse { ballot, reason } => RegisterBody::Refuse {
                ballot: ballot.into(),
                reason: reason.into(),
            },
            Body::Forget { ballot } => RegisterBody::Forget {
                ballot: ballot.into(),
            },
            Body::Forgot { ballot } => RegisterBody::Forgot {
                ballot: ballot.into(),
            },
        };
        RegisterMessage {
            from: m.from,
            to: m.to,
            key: m.key,
            epoch: m.epoch,
            body,
        }
    }
}

impl From<RegisterMessage> for Message {
    fn from(m: RegisterMessage) -> Message {
        let body = match m.body {
            RegisterBody::Prepare { ballot } => Body::Prepare {
                ballot: ballot.into(),
            },
            RegisterBody::Promise { ballot, accepted } => Body::Promise {
                ballot: ballot.into(),
                accepted: accepted.map(|(b, r)| (b.into(), r.into())),
            },
            RegisterBody::Accept { ballot, register } => Body::Accept {
                ballot: ballot.into(),
                register: register.into(),
            },
            RegisterBody::Accepted { ballot } => Body::Accepted {
                ballot: ballot.into(),
            },
            RegisterBody::Refuse { ballot, reason } => Body::Refuse {
                ballot: ballot.into(),
                reason: reason.into(),
            },
            RegisterBody::Forget { ballot } => Body::Forget {
                ballot: ballot.into(),
            },
            RegisterBody::Forgot { ballot } => Body::Forgot {
                ballot: ballot.into(),
            },
        };
        Message {
            from: m.from,
            to: m.to,
            key: m.key,
            epoch: m.epoch,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::wire::LinkFrame;
    use ringraft_proto::codec;

    fn ballot(counter: u64, node: u64) -> Ballot {
        Ballot { counter, node }
    }

    #[test]
    fn every_body_survives_the_wire() {
        let register = Register {
            value: Some(b"v".to_vec()),
            version: 3,
        };
        let bodies = vec![
            Body::Prepare {
                ballot: ballot(1, 2),
            },
            Body::Promise {
                ballot: ballot(1, 2),
                accepted: Some((ballot(1, 1), register.clone())),
            },
            Body::Promise {
                ballot: ballot(1, 2),
                accepted: None,
            },
            Body::Accept {
                ballot: ballot(4, 2),
                register,
            },
            Body::Accepted {
                ballot: ballot(4, 2),
            },
            Body::Refuse {
                ballot: ballot(4, 2),
                reason: Refusal::Promised(ballot(9, 3)),
            },
            Body::Refuse {
                ballot: ballot(4, 2),
                reason: Refusal::NotTombstone,
            },
            Body::Forget {
                ballot: ballot(5, 1),
            },
            Body::Forgot {
                ballot: ballot(5, 1),
            },
        ];
        for body in bodies {
            let message = Message {
                from: 1,
                to: 2,
                key: b"key".to_vec(),
                epoch: 7,
                body,
            };
            let frame = LinkFrame::Registers(RegisterMessage::from(message.clone()));
            let bytes = codec::encode(&frame).unwrap();
            let LinkFrame::Registers(back) = codec::decode::<LinkFrame>(&bytes).unwrap() else {
                panic!("not a registers frame");
            };
            assert_eq!(Message::from(back), message);
        }
    }

    #[test]
    fn forwarded_calls_and_answers_survive_the_wire() {
        let frames = vec![
            LinkFrame::RegisterCall {
                call: 9,
                request: ringraft_proto::Request::KvCas {
                    key: b"k".to_vec(),
                    expected_version: 3,
                    value: b"v".to_vec(),
                    timeout_ms: 500,
                },
            },
            LinkFrame::RegisterAnswer {
                call: 9,
                response: ringraft_proto::Response::KvConflict {
                    current_version: 4,
                    epoch: 12,
                },
            },
        ];
        for frame in frames {
            let bytes = codec::encode(&frame).unwrap();
            assert_eq!(codec::decode::<LinkFrame>(&bytes).unwrap(), frame);
        }
    }
}
