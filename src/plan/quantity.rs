//! Kubernetes storage quantities (`10Gi`, `500M`, `1.5Ti`) as bytes, and back.

/// Parses a quantity as Kubernetes writes storage sizes. `None` when it is not one.
pub fn parse_bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some((number * factor).ceil() as u64)
}

/// A cpu quantity (`500m`, `1`, `1.5`) in millicores. `None` when it is not one.
pub fn parse_millicores(q: &str) -> Option<u64> {
    let q = q.trim();
    let (number, factor) = match q.strip_suffix('m') {
        Some(n) => (n, 1.0),
        None => (q, 1000.0),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    Some((value * factor).ceil() as u64)
}

/// The size as a request: whole GiB, rounded up.
pub fn to_gibibytes(bytes: u64) -> String {
    let gib = bytes.div_ceil(1 << 30).max(1);
    format!("{gib}Gi")
}

/// A size for people: `1.5 GiB`, `320 MiB`, `12 KiB`, `7 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes_are_understood() {
        assert_eq!(parse_bytes("10Gi"), Some(10 << 30));
        assert_eq!(parse_bytes("500M"), Some(500_000_000));
        assert_eq!(parse_bytes("1.5Ti"), Some(3 << 39));
        assert_eq!(parse_bytes("8"), Some(8));
        assert_eq!(parse_bytes("ten"), None);
        assert_eq!(parse_bytes("5Zi"), None);
    }

    #[test]
    fn cpu_is_read_in_millicores() {
        assert_eq!(parse_millicores("500m"), Some(500));
        assert_eq!(parse_millicores("1"), Some(1000));
        assert_eq!(parse_millicores("1.5"), Some(1500));
        assert_eq!(parse_millicores("0.1"), Some(100));
        assert_eq!(parse_millicores("m"), None);
        assert_eq!(parse_millicores("1Gi"), None);
        assert_eq!(parse_millicores("-1"), None);
    }

    #[test]
    fn requests_are_whole_gibibytes_rounded_up() {
        assert_eq!(to_gibibytes(1), "1Gi");
        assert_eq!(to_gibibytes(1 << 30), "1Gi");
        assert_eq!(to_gibibytes((1 << 30) + 1), "2Gi");
        assert_eq!(to_gibibytes(0), "1Gi");
    }

    #[test]
    fn sizes_for_people_keep_one_decimal_below_ten() {
        assert_eq!(human(7), "7 B");
        assert_eq!(human(1536 << 20), "1.5 GiB");
        assert_eq!(human(320 << 20), "320 MiB");
    }
}
