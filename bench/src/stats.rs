//! Latency percentiles from raw samples (every sample is kept: runs are bounded in count).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// Nearest-rank percentiles; `None` when there are no samples.
pub fn summarize(mut samples_ns: Vec<u64>) -> Option<LatencySummary> {
    if samples_ns.is_empty() {
        return None;
    }
    samples_ns.sort_unstable();
    let count = samples_ns.len();
    let rank = |fraction: f64| -> Duration {
        let position = ((fraction * count as f64).ceil() as usize).clamp(1, count);
        Duration::from_nanos(samples_ns[position - 1])
    };
    let total_ns: u128 = samples_ns.iter().map(|ns| u128::from(*ns)).sum();
    let mean_ns = u64::try_from(total_ns / count as u128).unwrap_or(u64::MAX);
    Some(LatencySummary {
        count,
        p50: rank(0.50),
        p99: rank(0.99),
        max: Duration::from_nanos(samples_ns[count - 1]),
        mean: Duration::from_nanos(mean_ns),
    })
}

/// `12.3 µs`, `4.56 ms`: three significant digits, the unit that keeps the number readable.
pub fn format_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 10.0 {
        format!("{micros:.2} µs")
    } else if micros < 1_000.0 {
        format!("{micros:.1} µs")
    } else if micros < 10_000.0 {
        format!("{:.2} ms", micros / 1_000.0)
    } else {
        format!("{:.1} ms", micros / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        let summary = summarize(samples).expect("samples");
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, Duration::from_nanos(50));
        assert_eq!(summary.p99, Duration::from_nanos(99));
        assert_eq!(summary.max, Duration::from_nanos(100));
        assert_eq!(summary.mean, Duration::from_nanos(50));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let summary = summarize(vec![7]).expect("sample");
        assert_eq!(
            (summary.p50, summary.p99),
            (Duration::from_nanos(7), Duration::from_nanos(7))
        );
        assert_eq!(summarize(Vec::new()), None);
    }

    #[test]
    fn durations_format_with_their_unit() {
        assert_eq!(format_duration(Duration::from_nanos(12_345)), "12.3 µs");
        assert_eq!(format_duration(Duration::from_micros(4_560)), "4.56 ms");
        assert_eq!(format_duration(Duration::from_nanos(1_500)), "1.50 µs");
    }
}
