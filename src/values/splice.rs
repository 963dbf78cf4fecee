//! Text splices on a document: deleted lines, blocks inserted before a line, and byte ranges
//! replaced inside kept lines. Everything else is copied byte for byte.

use std::collections::BTreeMap;

use super::doc::Doc;

#[derive(Debug, Default)]
pub(super) struct Splice {
    deleted: Vec<bool>,
    /// Blocks of whole lines (each ending in a line break), inserted before a line index;
    /// `lines.len()` appends at the end.
    inserts: BTreeMap<usize, Vec<String>>,
    replaces: Vec<(usize, usize, String)>,
}

impl Splice {
    pub fn new(lines: usize) -> Splice {
        Splice {
            deleted: vec![false; lines],
            ..Splice::default()
        }
    }

    pub fn delete(&mut self, first: usize, last: usize) {
        for d in &mut self.deleted[first..=last] {
            *d = true;
        }
    }

    pub fn is_deleted(&self, line: usize) -> bool {
        self.deleted.get(line).copied().unwrap_or(false)
    }

    pub fn insert(&mut self, before_line: usize, block: String) {
        self.inserts.entry(before_line).or_default().push(block);
    }

    pub fn replace(&mut self, start: usize, end: usize, text: String) {
        self.replaces.push((start, end, text));
    }

    /// The edited text. Fails when two replacements overlap or one falls on a deleted line.
    pub fn render(mut self, doc: &Doc) -> Result<String, String> {
        self.replaces.sort_by_key(|r| r.0);
        for w in self.replaces.windows(2) {
            if w[0].1 > w[1].0 {
                return Err("two edits overlap".into());
            }
        }
        let src = doc.src;
        let mut out = String::with_capacity(src.len() + 256);
        let mut replaces = self.replaces.iter().peekable();
        let emit_inserts = |out: &mut String, at: usize| {
            if let Some(blocks) = self.inserts.get(&at) {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push_str(newline_of(src));
                }
                for b in blocks {
                    out.push_str(b);
                }
            }
        };
        for (i, line) in doc.lines.iter().enumerate() {
            emit_inserts(&mut out, i);
            let next = doc.lines.get(i + 1).map(|l| l.start).unwrap_or(src.len());
            if self.deleted[i] {
                if replaces.peek().is_some_and(|r| r.0 < next) {
                    return Err(format!("an edit falls on removed line {}", i + 1));
                }
                continue;
            }
            let mut at = line.start;
            while let Some(r) = replaces.peek() {
                if r.0 >= next {
                    break;
                }
                out.push_str(&src[at..r.0]);
                out.push_str(&r.2);
                at = r.1;
                replaces.next();
            }
            out.push_str(&src[at..next]);
        }
        emit_inserts(&mut out, doc.lines.len());
        Ok(out)
    }
}

/// The file's line break: `\r\n` when its first line ends so, else `\n`.
pub(super) fn newline_of(src: &str) -> &'static str {
    match src.find('\n') {
        Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_lines_are_copied_byte_for_byte() {
        let src = "a: 1\nb: 'x'  # keep\nc: 3";
        let doc = Doc::parse(src).unwrap();
        let mut s = Splice::new(doc.lines.len());
        s.delete(0, 0);
        s.replace(8, 11, "'y'".into());
        s.insert(3, "d: 4\n".into());
        assert_eq!(s.render(&doc).unwrap(), "b: 'y'  # keep\nc: 3\nd: 4\n");
    }

    #[test]
    fn an_edit_on_a_removed_line_is_refused() {
        let src = "a: 1\nb: 2\n";
        let doc = Doc::parse(src).unwrap();
        let mut s = Splice::new(doc.lines.len());
        s.delete(1, 1);
        s.replace(8, 9, "3".into());
        assert!(s.render(&doc).is_err());
    }
}
