//! CPU time of processes from `/proc/<pid>/stat` (utime + stime, all threads, clock-tick
//! resolution: 10 ms on this kernel, so only long phases give meaningful per-operation figures).

use std::time::Duration;

/// User plus system CPU time `pid` has used so far.
pub fn process_cpu(pid: i32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|err| format!("{path}: {err}"))?;
    let ticks = cpu_ticks_from_stat(&text).ok_or_else(|| format!("{path}: unexpected format"))?;
    Ok(ticks_to_duration(ticks))
}

/// The sum over `pids`.
pub fn processes_cpu(pids: &[i32]) -> Result<Duration, String> {
    pids.iter().map(|pid| process_cpu(*pid)).sum()
}

/// CPU time of this process (the load generator itself).
pub fn own_cpu() -> Result<Duration, String> {
    process_cpu(std::process::id() as i32)
}

/// utime (field 14) + stime (field 15). The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn cpu_ticks_from_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // after_name starts at field 3 (state); utime is field 14, i.e. the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks_per_second = u64::try_from(ticks_per_second).unwrap_or(100).max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / ticks_per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_an_awkward_name() {
        let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    700 55 0 0 20 0 3 0 12345 1000 10 18446744073709551615";
        assert_eq!(cpu_ticks_from_stat(stat), Some(755));
        assert_eq!(cpu_ticks_from_stat("garbage"), None);
        assert_eq!(cpu_ticks_from_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn own_cpu_grows_when_working() {
        let before = own_cpu().expect("own stat");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut spin = 0u64;
        let mut after = before;
        while after == before && std::time::Instant::now() < deadline {
            for _ in 0..1_000_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            after = own_cpu().expect("own stat");
        }
        assert!(after > before, "no CPU time counted after 30 s of spinning");
    }
}
