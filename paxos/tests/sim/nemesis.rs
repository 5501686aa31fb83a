//! The nemesis: crashes that lose unsynced writes, partitions (one way or both), and the calm
//! phase that heals everything so liveness can be checked.

use rand::seq::SliceRandom;
use rand::Rng;
use ringraft_paxos::{NodeId, OpId};

use super::cluster::{Event, World};
use super::scenario::MS;

impl World {
    pub fn crash(&mut self) {
        if self.calm {
            return;
        }
        let up: Vec<NodeId> = self
            .ids()
            .into_iter()
            .filter(|&n| self.nodes[n as usize - 1].up)
            .collect();
        if let Some(&n) = up.choose(&mut self.rng) {
            self.summary.crashes += 1;
            let keep = self.rng.gen_range(0..3);
            let inc = self.node(n).crash(keep);
            let lost: Vec<OpId> = self
                .inflight
                .iter()
                .filter(|(_, (node, _))| *node == n)
                .map(|(op, _)| *op)
                .collect();
            for op in lost {
                self.lost_answer(op);
            }
            let d = self.rng.gen_range(20 * MS..=500 * MS);
            self.at(d, Event::Restart(n, inc));
        }
        let d = self.every(self.s.crash_every);
        self.at(d, Event::Crash);
    }

    pub fn partition(&mut self) {
        if self.calm {
            return;
        }
        self.summary.partitions += 1;
        let mut ids = self.ids();
        ids.shuffle(&mut self.rng);
        let size = self.rng.gen_range(1..=ids.len() / 2 + 1);
        let one_way = self.rng.gen_bool(0.2);
        let all = self.ids();
        self.net.partition(&ids[..size], &all, one_way);
        let d = self.rng.gen_range(50 * MS..=800 * MS);
        self.at(d, Event::Heal);
        let d = self.every(self.s.partition_every);
        self.at(d, Event::Partition);
    }

    pub fn calm(&mut self) -> Result<(), String> {
        self.calm = true;
        self.net.calm = true;
        self.net.heal();
        for n in self.ids() {
            if !self.node(n).up {
                self.restart(n)?;
            }
        }
        for k in 0..self.ring.len() {
            let d = self.s.calm_phase / 2 + self.rng.gen_range(0..100 * MS);
            self.at(d, Event::FinalRead(k));
        }
        Ok(())
    }
}
