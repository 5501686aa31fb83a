//! ringraft-campaign: the fault campaign of issue 10. Real `ringraftd` processes, each in its own
//! network namespace, clients on every node's socket, faults injected at random from a seed, and a
//! checker that reads the whole history afterwards.
//!
//! - `history`: the history file (JSON lines) and its recorder;
//! - `checker`: what a history must satisfy, pure.

pub mod checker;
pub mod history;
