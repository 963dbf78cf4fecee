//! Dataset sizes as people write them: `50MB`, `2GB`, `500M`, `1.5GiB`, `1048576`.

/// Parses a size; decimal units (`kB`, `MB`, `GB`) are powers of 1000, binary units (`KiB`,
/// `MiB`, `GiB`) and bare letters (`K`, `M`, `G`) powers of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("size {text:?} does not start with a number (try 50MB or 2GB)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "size {text:?} has unknown unit {other:?} (use B, kB, MB, GB, KiB, MiB or GiB)"
            ))
        }
    };
    let bytes = number * factor as f64;
    if !bytes.is_finite() || !(1.0..=1e15).contains(&bytes) {
        return Err(format!("size {text:?} is out of range"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("50MB"), Ok(50_000_000));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size("500M"), Ok(524_288_000));
        assert_eq!(parse_size("4096"), Ok(4096));
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        assert!(parse_size("MB").unwrap_err().contains("number"));
        assert!(parse_size("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("0").unwrap_err().contains("out of range"));
    }
}
