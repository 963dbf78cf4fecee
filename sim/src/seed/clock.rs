//! Timestamps as PostgreSQL prints `timestamp without time zone` (Rails' `datetime`), from
//! microseconds since the Unix epoch. Pure arithmetic, so the output never depends on the
//! machine's time zone.

/// 2021-01-01 00:00:00 UTC: the dataset's history starts here.
pub const HISTORY_START_US: i64 = 1_609_459_200 * 1_000_000;
/// Two years of history.
pub const HISTORY_SPAN_US: i64 = 730 * 86_400 * 1_000_000;

/// Appends `YYYY-MM-DD HH:MM:SS.ffffff` for `us` microseconds since the epoch.
pub fn push_timestamp(out: &mut Vec<u8>, us: i64) {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    out.extend_from_slice(s.as_bytes());
}

/// Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(us: i64) -> String {
        let mut v = Vec::new();
        push_timestamp(&mut v, us);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn timestamps_print_like_postgres() {
        assert_eq!(ts(0), "1970-01-01 00:00:00.000000");
        assert_eq!(ts(HISTORY_START_US), "2021-01-01 00:00:00.000000");
        // 2024-02-29 23:59:59.999999 (a leap day)
        assert_eq!(ts(1_709_251_199_999_999), "2024-02-29 23:59:59.999999");
        assert_eq!(
            ts(951_782_400 * 1_000_000 + 1),
            "2000-02-29 00:00:00.000001"
        );
        assert_eq!(
            ts(HISTORY_START_US + HISTORY_SPAN_US),
            "2023-01-01 00:00:00.000000"
        );
    }
}
