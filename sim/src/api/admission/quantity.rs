//! Resource quantities (`500m`, `1.5`, `256Mi`, `2G`) as thousandths of a unit, exact, and
//! back to text the way the API server prints sums.

/// A quantity in thousandths (`1` cpu = 1000, `1Ki` = 1_024_000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Milli(pub i128);

impl Milli {
    pub fn parse(text: &str) -> Option<Milli> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let factor: i128 = match suffix {
            "m" => 1,
            "" => 1_000,
            "k" => 1_000_000,
            "M" => 1_000_000_000,
            "G" => 1_000_000_000_000,
            "T" => 1_000_000_000_000_000,
            "P" => 1_000_000_000_000_000_000,
            "Ki" => 1_024_000,
            "Mi" => 1_024 * 1_024_000,
            "Gi" => 1_024 * 1_024 * 1_024_000,
            "Ti" => 1_024 * 1_024 * 1_024 * 1_024_000,
            "Pi" => 1_024 * 1_024 * 1_024 * 1_024 * 1_024_000,
            _ => return None,
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let negative = whole.starts_with('-');
        let whole: i128 = match whole.trim_start_matches(['+', '-']) {
            "" if !frac.is_empty() => 0,
            w => w.parse().ok()?,
        };
        let mut value = whole * factor;
        if !frac.is_empty() {
            if !frac.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let scale = 10i128.checked_pow(frac.len() as u32)?;
            let f: i128 = frac.parse().ok()?;
            // Rounded up, as the API server rounds a fraction below the smallest unit.
            value += (f * factor + scale - 1) / scale;
        }
        Some(Milli(if negative { -value } else { value }))
    }

    /// `1500m`, `2`, `256Mi`, `1536Mi`, `1G`: whole units in the largest binary suffix that
    /// divides them exactly, then decimal ones, else thousandths.
    pub fn render(self) -> String {
        let v = self.0;
        if v % 1000 != 0 {
            return format!("{v}m");
        }
        let units = v / 1000;
        if units == 0 {
            return "0".into();
        }
        for (suffix, size) in [
            ("Ti", 1i128 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if units % size == 0 {
                return format!("{}{suffix}", units / size);
            }
        }
        for (suffix, size) in [
            ("T", 1_000_000_000_000i128),
            ("G", 1_000_000_000),
            ("M", 1_000_000),
            ("k", 1_000),
        ] {
            if units % size == 0 && units >= 1_000_000 {
                return format!("{}{suffix}", units / size);
            }
        }
        units.to_string()
    }
}

impl std::ops::Add for Milli {
    type Output = Milli;
    fn add(self, o: Milli) -> Milli {
        Milli(self.0 + o.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_exactly_and_print_as_sums_do() {
        let p = |s: &str| Milli::parse(s).unwrap();
        assert_eq!(p("500m"), Milli(500));
        assert_eq!(p("1.5"), Milli(1500));
        assert_eq!(p("0.1"), Milli(100));
        assert_eq!(p("2"), Milli(2000));
        assert_eq!(p("256Mi"), Milli(256 * 1024 * 1024 * 1000));
        assert_eq!(p("1G"), Milli(1_000_000_000_000));
        assert_eq!(Milli::parse("12x"), None);
        assert_eq!(Milli::parse("abc"), None);
        assert_eq!((p("128Mi") + p("128Mi")).render(), "256Mi");
        assert_eq!((p("1Gi") + p("512Mi")).render(), "1536Mi");
        assert_eq!((p("500m") + p("1")).render(), "1500m");
        assert_eq!((p("500m") + p("500m")).render(), "1");
        assert_eq!(p("1G").render(), "1G");
        assert_eq!(p("0").render(), "0");
        assert_eq!(p("100").render(), "100");
    }
}
