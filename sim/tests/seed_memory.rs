//! The generator streams: a dataset many times larger than its buffers passes through with
//! flat memory. Alone in its own test binary, so the process's peak RSS is this test's.

use std::fs;

use la_sim::seed::{self, SeedOptions};

/// Peak resident set size of this process (kB), from `/proc/self/status`.
fn peak_rss_kb() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn generating_hundreds_of_megabytes_keeps_memory_flat() {
    let before = peak_rss_kb();
    let stats = seed::write_sql(&SeedOptions::new(300_000_000, 1), std::io::sink()).unwrap();
    let grown_mb = (peak_rss_kb().saturating_sub(before)) / 1024;
    eprintln!(
        "peak memory grew by {grown_mb} MB for {} MB of SQL",
        stats.bytes / 1_000_000
    );
    assert!(stats.bytes > 250_000_000, "wrote {} bytes", stats.bytes);
    assert!(
        grown_mb < 32,
        "peak memory grew by {grown_mb} MB while streaming {} MB",
        stats.bytes / 1_000_000
    );
}
