//! The ring at scale (issue 14, "a ring that changes in O(change)"): for rings of 100, 1,000
//! and 10,000 members of weight 1 (128 tokens each), the time of one join, removal and
//! reweight done incrementally (state, lookup view and delta encoding: what a member needs
//! per epoch) against the original full rebuild run on the same ring in the same run
//! (whole-ring allocation, a new lookup view, the whole encoding), plus lookup times, memory
//! and bytes per member, and delta bytes per change.
//!
//!     cargo build -p ringraft-bench --release --bin ring_scale
//!     target/release/ring_scale [--members 100,1000,10000] [--reps 9]
//!
//! Times are medians over the repetitions; the machine is shared, so compare the ratios.
//! The run checks that both paths end with the same bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use ringraft_bench::report::Table;
use ringraft_ring::reference::{FlatState, FlatView};
use ringraft_ring::{Member, MemberId, Ring, RingDelta, RingState, DEFAULT_VNODES};

/// Counts live heap bytes, so memory per member is measured rather than estimated.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Debug, Parser)]
#[command(about = "ring changes: incremental vs full rebuild, lookups, memory, delta bytes")]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    members: Vec<u64>,
    /// Repetitions of each change (median reported).
    #[arg(long, default_value_t = 9)]
    reps: usize,
    /// Keys per lookup measurement (best of 3).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
}

/// Medians of one kind of change, incremental and full rebuild.
struct ChangeTimes {
    incremental: Duration,
    rebuild: Duration,
    delta_bytes: usize,
}

struct Scale {
    members: u64,
    build: Duration,
    join: ChangeTimes,
    leave: ChangeTimes,
    reweight_up: ChangeTimes,
    reweight_down: ChangeTimes,
    view_and_encode: Duration,
    owner_ns: f64,
    replicas_ns: f64,
    flat_owner_ns: f64,
    live_bytes: usize,
    estimated_bytes: usize,
    encoded_bytes: usize,
    /// (buckets, buckets spilled) of the lookup index.
    index_shape: (usize, usize),
    same_bytes: bool,
}

fn main() {
    let args = Args::parse();
    let scales: Vec<Scale> = args
        .members
        .iter()
        .map(|&n| measure(n, args.reps, args.keys))
        .collect();
    print_tables(&scales);
}

fn measure(n: u64, reps: usize, keys: u64) -> Scale {
    eprintln!("ring_scale: {n} members");
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut ring = Ring::new(RingState::new(DEFAULT_VNODES).expect("vnodes"));
    for id in 1..=n {
        ring.join(Member::new(id, 1), id).expect("join");
    }
    let build = started.elapsed();
    let live_bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
    let estimated_bytes = ring.memory_bytes();
    let encoded_bytes = ring.encode().len();
    let index_shape = ring.index_shape();

    let owner_ns = time_per_call(keys, |i| {
        ring.owner(&i.to_le_bytes()).map_or(0, |o| o.member)
    });
    let mut out = Vec::with_capacity(3);
    let replicas_ns = time_per_call(keys, |i| {
        ring.replicas_into(&i.to_le_bytes(), 3, &mut out);
        out[2]
    });

    let mut flat = FlatState::of(ring.state());
    let flat_view = FlatView::new(&flat);
    let flat_owner_ns = time_per_call(keys, |i| {
        flat_view
            .owner_at(ringraft_ring::key_position(&i.to_le_bytes()))
            .unwrap_or(0)
    });
    drop(flat_view);

    let mut times = ChangeSeries::default();
    let mut epoch = n;
    for rep in 0..reps {
        let joiner = n + 1 + rep as u64;
        let reweighted = 1 + (rep as u64 * 7919) % n;
        epoch += 1;
        times.join.push(change(
            &mut ring,
            &mut flat,
            epoch,
            joiner,
            |r| r.join(Member::new(joiner, 1), epoch),
            |f| f.join(Member::new(joiner, 1), epoch),
        ));
        epoch += 1;
        times.leave.push(change(
            &mut ring,
            &mut flat,
            epoch,
            joiner,
            |r| r.leave(joiner, epoch).map(|_| ()),
            |f| f.leave(joiner, epoch).map(|_| ()),
        ));
        epoch += 1;
        times.up.push(change(
            &mut ring,
            &mut flat,
            epoch,
            reweighted,
            |r| r.set_weight(reweighted, 2, epoch),
            |f| f.set_weight(reweighted, 2, epoch),
        ));
        epoch += 1;
        times.down.push(change(
            &mut ring,
            &mut flat,
            epoch,
            reweighted,
            |r| r.set_weight(reweighted, 1, epoch),
            |f| f.set_weight(reweighted, 1, epoch),
        ));
    }
    let same_bytes = flat.encode() == ring.encode();

    // What a member pays today if it keeps rebuilding its view from the (now incremental)
    // state each epoch, as daemon/src/node/view.rs does: the part the daemon still has to
    // switch to `Ring`'s change methods and deltas.
    let mut view_and_encode = Vec::new();
    for _ in 0..reps.min(3) {
        let started = Instant::now();
        let rebuilt = Ring::new(ring.state().clone());
        black_box(rebuilt.encode());
        view_and_encode.push(started.elapsed());
    }

    Scale {
        members: n,
        build,
        join: times.join.summary(),
        leave: times.leave.summary(),
        reweight_up: times.up.summary(),
        reweight_down: times.down.summary(),
        view_and_encode: median(&mut view_and_encode),
        owner_ns,
        replicas_ns,
        flat_owner_ns,
        live_bytes,
        estimated_bytes,
        encoded_bytes,
        index_shape,
        same_bytes,
    }
}

#[derive(Default)]
struct ChangeSeries {
    join: Series,
    leave: Series,
    up: Series,
    down: Series,
}

#[derive(Default)]
struct Series {
    incremental: Vec<Duration>,
    rebuild: Vec<Duration>,
    delta_bytes: Vec<usize>,
}

struct Sample {
    incremental: Duration,
    rebuild: Duration,
    delta_bytes: usize,
}

impl Series {
    fn push(&mut self, sample: Sample) {
        self.incremental.push(sample.incremental);
        self.rebuild.push(sample.rebuild);
        self.delta_bytes.push(sample.delta_bytes);
    }

    fn summary(mut self) -> ChangeTimes {
        self.delta_bytes.sort_unstable();
        ChangeTimes {
            incremental: median(&mut self.incremental),
            rebuild: median(&mut self.rebuild),
            delta_bytes: self.delta_bytes[self.delta_bytes.len() / 2],
        }
    }
}

/// One change both ways. Incremental: the change through `Ring` (state and view) plus the
/// delta a cached client fetches, encoded. Rebuild: the original allocation over the flat
/// token list, a new flat lookup view, and the whole encoding.
fn change(
    ring: &mut Ring,
    flat: &mut FlatState,
    epoch: u64,
    touched: MemberId,
    incremental: impl FnOnce(&mut Ring) -> Result<(), ringraft_ring::RingError>,
    original: impl FnOnce(&mut FlatState) -> Result<(), ringraft_ring::RingError>,
) -> Sample {
    let from_epoch = ring.epoch();
    let started = Instant::now();
    incremental(ring).expect("incremental change");
    let delta = RingDelta::for_members(from_epoch, ring.state(), [touched]).encode();
    let incremental = started.elapsed();
    debug_assert_eq!(ring.epoch(), epoch);
    let started = Instant::now();
    original(flat).expect("original change");
    black_box(FlatView::new(flat));
    black_box(flat.encode());
    let rebuild = started.elapsed();
    Sample {
        incremental,
        rebuild,
        delta_bytes: delta.len(),
    }
}

fn median(times: &mut [Duration]) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    times.sort_unstable();
    times[times.len() / 2]
}

/// Nanoseconds per call over `calls` calls, best of 3.
fn time_per_call<T>(calls: u64, mut f: impl FnMut(u64) -> T) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            for i in 0..calls {
                black_box(f(black_box(i)));
            }
            started.elapsed().as_nanos() as f64 / calls as f64
        })
        .fold(f64::MAX, f64::min)
}

fn print_tables(scales: &[Scale]) {
    println!("### Time per change: incremental vs full rebuild (median)");
    println!(
        "incremental = Ring change method (state + lookup view) + the change's delta encoded; \
         rebuild = the original: whole-ring allocation + new lookup view + whole encoding.\n"
    );
    let mut table = Table::new(&[
        ">members",
        "change",
        ">incremental",
        ">rebuild",
        ">rebuild / incremental",
        ">delta bytes",
    ]);
    for scale in scales {
        for (name, times) in [
            ("join", &scale.join),
            ("remove", &scale.leave),
            ("reweight 1→2", &scale.reweight_up),
            ("reweight 2→1", &scale.reweight_down),
        ] {
            let ratio = times.rebuild.as_secs_f64() / times.incremental.as_secs_f64();
            table.row(vec![
                scale.members.to_string(),
                name.to_string(),
                format!("{:.1?}", times.incremental),
                format!("{:.1?}", times.rebuild),
                format!("{ratio:.0}×"),
                times.delta_bytes.to_string(),
            ]);
        }
    }
    println!("{}", table.render());

    println!("### Lookups, memory and encoding");
    println!(
        "owner / replicas(3): ns per call, 8-byte keys, hashing included, best of 3; flat owner = \
         the original flat view on the same ring; spilled = lookup buckets too full for their \
         64-byte block (slower path); memory = live heap bytes of the Ring (state and view), \
         counted by the allocator; estimate = Ring::memory_bytes.\n"
    );
    let mut table = Table::new(&[
        ">members",
        ">build (n joins)",
        ">owner ns",
        ">flat owner ns",
        ">replicas(3) ns",
        ">spilled buckets",
        ">memory B/member",
        ">estimate B/member",
        ">encoded B/member",
        ">Ring::new + encode",
        "same bytes as original",
    ]);
    for scale in scales {
        let n = scale.members as usize;
        table.row(vec![
            scale.members.to_string(),
            format!("{:.1?}", scale.build),
            format!("{:.1}", scale.owner_ns),
            format!("{:.1}", scale.flat_owner_ns),
            format!("{:.1}", scale.replicas_ns),
            format!(
                "{:.2}% of {}",
                100.0 * scale.index_shape.1 as f64 / scale.index_shape.0 as f64,
                scale.index_shape.0
            ),
            (scale.live_bytes / n).to_string(),
            (scale.estimated_bytes / n).to_string(),
            (scale.encoded_bytes / n).to_string(),
            format!("{:.1?}", scale.view_and_encode),
            if scale.same_bytes { "yes" } else { "NO" }.to_string(),
        ]);
    }
    println!("{}", table.render());
}
