//! Virtual time and the queue of things scheduled to happen. Nothing in the simulator reads a real
//! clock: time moves only when the next event is popped, so a run is a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual microseconds since the start of the run.
pub type Micros = u64;

pub const MICROS_PER_MILLI: Micros = 1_000;

struct Scheduled<E> {
    at: Micros,
    /// Insertion order breaks ties, so equal times pop in a reproducible order.
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: the earliest event must compare greatest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

pub struct EventQueue<E> {
    now: Micros,
    next_seq: u64,
    heap: BinaryHeap<Scheduled<E>>,
}

impl<E> EventQueue<E> {
    pub fn new() -> EventQueue<E> {
        EventQueue {
            now: 0,
            next_seq: 0,
            heap: BinaryHeap::new(),
        }
    }

    pub fn now(&self) -> Micros {
        self.now
    }

    pub fn schedule_at(&mut self, at: Micros, event: E) {
        let at = at.max(self.now);
        self.heap.push(Scheduled {
            at,
            seq: self.next_seq,
            event,
        });
        self.next_seq += 1;
    }

    pub fn schedule_in(&mut self, delay: Micros, event: E) {
        self.schedule_at(self.now + delay, event);
    }

    /// Pops the earliest event and moves the clock to its time.
    pub fn pop(&mut self) -> Option<(Micros, E)> {
        let next = self.heap.pop()?;
        debug_assert!(next.at >= self.now, "time went backwards");
        self.now = next.at;
        Some((next.at, next.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pop_in_time_order_then_insertion_order() {
        let mut queue = EventQueue::new();
        queue.schedule_at(30, "c");
        queue.schedule_at(10, "a");
        queue.schedule_at(30, "d");
        queue.schedule_at(20, "b");
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(10, "a"), (20, "b"), (30, "c"), (30, "d")]);
        assert_eq!(queue.now(), 30);
        queue.schedule_at(5, "late");
        assert_eq!(
            queue.pop(),
            Some((30, "late")),
            "the past is clamped to now"
        );
    }
}
