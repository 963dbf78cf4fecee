//! `COPY ... FROM STDIN` in PostgreSQL's text format: one row per line, columns separated by
//! tabs, `\N` for NULL, and backslash, newline, carriage return and tab escaped. Because every
//! backslash in data is doubled, no data line can read as the `\.` end marker.

use std::io::{self, Write};

use super::clock;

/// Rows are collected here and flushed in large chunks, so writing stays fast without ever
/// holding more than one chunk in memory.
const FLUSH_AT: usize = 256 * 1024;

pub struct CopyBlock<'a, W: Write> {
    out: &'a mut W,
    line: Vec<u8>,
    at_row_start: bool,
    rows: u64,
}

impl<'a, W: Write> CopyBlock<'a, W> {
    /// Writes the `COPY` header for `table` with `columns` in this order.
    pub fn begin(out: &'a mut W, table: &str, columns: &[&str]) -> io::Result<Self> {
        writeln!(
            out,
            "COPY public.{table} ({}) FROM stdin;",
            columns.join(", ")
        )?;
        Ok(Self {
            out,
            line: Vec::with_capacity(FLUSH_AT + 64 * 1024),
            at_row_start: true,
            rows: 0,
        })
    }

    fn sep(&mut self) {
        if !self.at_row_start {
            self.line.push(b'\t');
        }
        self.at_row_start = false;
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.line.extend_from_slice(b"\\N");
        self
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        self.sep();
        let buf = itoa_buf(v);
        self.line.extend_from_slice(buf.as_bytes());
        self
    }

    pub fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.line.push(if v { b't' } else { b'f' });
        self
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        self.sep();
        escape_into(&mut self.line, v.as_bytes());
        self
    }

    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    /// `timestamp without time zone` from microseconds since the epoch.
    pub fn ts(&mut self, us: i64) -> &mut Self {
        self.sep();
        clock::push_timestamp(&mut self.line, us);
        self
    }

    pub fn opt_ts(&mut self, us: Option<i64>) -> &mut Self {
        match us {
            Some(us) => self.ts(us),
            None => self.null(),
        }
    }

    /// A value already known to contain no byte that needs escaping (numbers, uuids).
    pub fn plain(&mut self, v: &str) -> &mut Self {
        debug_assert!(!v.bytes().any(needs_escape));
        self.sep();
        self.line.extend_from_slice(v.as_bytes());
        self
    }

    pub fn end_row(&mut self) -> io::Result<()> {
        self.line.push(b'\n');
        self.at_row_start = true;
        self.rows += 1;
        if self.line.len() >= FLUSH_AT {
            self.out.write_all(&self.line)?;
            self.line.clear();
        }
        Ok(())
    }

    /// Writes the end marker; returns the number of rows written.
    pub fn finish(mut self) -> io::Result<u64> {
        debug_assert!(self.at_row_start, "finish() in the middle of a row");
        self.line.extend_from_slice(b"\\.\n\n");
        self.out.write_all(&self.line)?;
        Ok(self.rows)
    }
}

fn needs_escape(b: u8) -> bool {
    matches!(b, b'\\' | b'\n' | b'\r' | b'\t')
}

pub fn escape_into(out: &mut Vec<u8>, v: &[u8]) {
    if !v.iter().copied().any(needs_escape) {
        out.extend_from_slice(v);
        return;
    }
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// Decimal digits of an `i64` on the stack (integers are most of the fields).
struct ItoaBuf {
    buf: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(v: i64) -> ItoaBuf {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let negative = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    ItoaBuf { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_tab_separated_with_nulls_and_escapes() {
        let mut out = Vec::new();
        let mut block =
            CopyBlock::begin(&mut out, "messages", &["id", "content", "private"]).unwrap();
        block.int(1).text("a\tb\nc\\d\re").bool(false);
        block.end_row().unwrap();
        block.int(-20).null().bool(true);
        block.end_row().unwrap();
        assert_eq!(block.finish().unwrap(), 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "COPY public.messages (id, content, private) FROM stdin;\n\
             1\ta\\tb\\nc\\\\d\\re\tf\n\
             -20\t\\N\tt\n\
             \\.\n\n"
        );
    }

    #[test]
    fn a_backslash_dot_value_cannot_end_the_data() {
        let mut out = Vec::new();
        escape_into(&mut out, b"\\.");
        assert_eq!(out, b"\\\\.");
    }

    #[test]
    fn integers_print_in_decimal() {
        for v in [0, 7, -1, 1234567890123, i64::MIN, i64::MAX] {
            assert_eq!(itoa_buf(v).as_bytes(), v.to_string().as_bytes());
        }
    }
}
