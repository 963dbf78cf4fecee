//! A span-annotated tree of a YAML document, for editing it as text.
//!
//! The tree is built from `saphyr-parser` events; positions are byte offsets into the source.
//! Extents of entries (which lines belong to a key, including the comments above it) are
//! computed from the lines themselves, because event spans do not cover comments and are
//! not exact for every scalar style. Pure: no I/O.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Why a document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the problem
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Blank,
    Comment,
    Content,
}

/// One physical line: `start..end` excludes the line break.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    pub start: usize,
    pub end: usize,
    /// Leading spaces, in bytes
    pub indent: usize,
    pub kind: LineKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    Scalar {
        value: String,
        style: Style,
    },
    /// `*name`: the anchor id of the node it refers to
    Alias(usize),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// Byte offset where the node's own text starts (after any anchor or tag)
    pub start: usize,
    /// Byte offset after the node's text (exact for single-line scalars and flow collections)
    pub end: usize,
    /// 0-based line of `start`
    pub line: usize,
    /// `{...}` / `[...]`
    pub flow: bool,
    /// The id of the node's anchor (`&name`), 0 without one; an alias names the same id
    pub anchor: usize,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    /// 0-based line of the key
    pub line: usize,
    pub value: Node,
}

impl Node {
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// `null`, `~`, an empty value or `{}`: a value a mapping can replace.
    pub fn is_empty_value(&self) -> bool {
        match &self.kind {
            Kind::Scalar { value, style } => {
                *style == Style::Plain
                    && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL")
            }
            Kind::Map(e) => e.is_empty() && self.flow,
            _ => false,
        }
    }
}

/// An entry a mapping gets through a merge key.
#[derive(Debug, Clone, Copy)]
pub struct MergedEntry<'n> {
    /// The mapping's `<<` entry
    pub merge: &'n Entry,
    /// The mapping the key is written in (usually an anchored one)
    pub source: &'n Node,
    pub entry: &'n Entry,
}

/// A parsed document: its lines and its root node (`None` for an empty document).
#[derive(Debug)]
pub struct Doc<'a> {
    pub src: &'a str,
    pub lines: Vec<Line>,
    pub root: Option<Node>,
}

fn split_lines(src: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = src.as_bytes();
    while start < src.len() {
        let end = src[start..]
            .find('\n')
            .map(|i| start + i)
            .unwrap_or(src.len());
        let text_end = if end > start && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        let text = &src[start..text_end];
        let indent = text.len() - text.trim_start_matches(' ').len();
        let rest = text[indent..].trim_start();
        let kind = if rest.is_empty() {
            LineKind::Blank
        } else if rest.starts_with('#') {
            LineKind::Comment
        } else {
            LineKind::Content
        };
        lines.push(Line {
            start,
            end: text_end,
            indent,
            kind,
        });
        start = end + 1;
    }
    lines
}

struct Builder<'a> {
    src: &'a str,
    /// byte offset of each char index (plus the end)
    char_bytes: Vec<usize>,
    lines: Vec<Line>,
    events: std::iter::Peekable<Parser<'a, saphyr_parser::StrInput<'a>>>,
}

fn scan_error(e: saphyr_parser::ScanError) -> ParseError {
    ParseError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    }
}

impl<'a> Builder<'a> {
    fn byte(&self, char_index: usize) -> usize {
        self.char_bytes
            .get(char_index)
            .copied()
            .unwrap_or(self.src.len())
    }

    fn line_of(&self, byte: usize) -> usize {
        match self.lines.binary_search_by(|l| l.start.cmp(&byte)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), ParseError> {
        match self.events.next() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(scan_error(e)),
            None => Err(ParseError {
                line: self.lines.len().max(1),
                column: 1,
                message: "unexpected end of the document".into(),
            }),
        }
    }

    /// Skips `&anchor` and `!tag` properties and the blanks after them.
    fn skip_properties(&self, mut at: usize, limit: usize) -> (usize, bool) {
        let b = self.src.as_bytes();
        let mut anchored = false;
        loop {
            while at < limit && matches!(b[at], b' ' | b'\t' | b'\n' | b'\r') {
                at += 1;
            }
            if at < limit && (b[at] == b'&' || b[at] == b'!') {
                anchored |= b[at] == b'&';
                while at < limit && !matches!(b[at], b' ' | b'\t' | b'\n' | b'\r') {
                    at += 1;
                }
            } else {
                return (at, anchored);
            }
        }
    }

    /// The end of a collection: after its closing bracket for flow style (the event span may
    /// run on over a trailing comment, or start at a trailing comma), where the next token
    /// starts for block style.
    fn flow_end(&self, flow: bool, end_start: usize, end: usize) -> usize {
        if !flow {
            return end_start;
        }
        let b = self.src.as_bytes();
        let mut i = end_start;
        while let Some(c) = b.get(i) {
            match c {
                b'}' | b']' => return i + 1,
                b' ' | b'\t' | b'\r' | b'\n' | b',' => i += 1,
                b'#' => i += self.src[i..].find('\n').unwrap_or(b.len() - i),
                _ => break,
            }
        }
        end
    }

    /// The end of a scalar's text starting at `start`, for the styles we may rewrite.
    fn scalar_end(&self, start: usize, style: Style, span_end: usize) -> usize {
        let b = self.src.as_bytes();
        match style {
            Style::SingleQuoted => {
                let mut i = start + 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        return i + 1;
                    }
                    i += 1;
                }
                b.len()
            }
            Style::DoubleQuoted => {
                let mut i = start + 1;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => return i + 1,
                        _ => i += 1,
                    }
                }
                b.len()
            }
            Style::Plain => {
                // One line: up to a comment or the end of the line, without trailing blanks.
                let line = self.lines[self.line_of(start)];
                if span_end <= line.end {
                    return span_end.max(start);
                }
                let text = &self.src[start..line.end];
                let cut = text.find(" #").unwrap_or(text.len());
                start + text[..cut].trim_end().len()
            }
            Style::Block => span_end,
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, ParseError> {
        let span_start = self.byte(span.start.index());
        let span_end = self.byte(span.end.index());
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    _ => Style::Block,
                };
                let (start, _) = self.skip_properties(span_start, span_end.max(span_start));
                let start = if style == Style::Plain && value.is_empty() {
                    span_start
                } else {
                    start
                };
                let end = if value.is_empty() && style == Style::Plain {
                    start
                } else {
                    self.scalar_end(start, style, span_end)
                };
                Ok(Node {
                    kind: Kind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                    start,
                    end,
                    line: self.line_of(start),
                    flow: false,
                    anchor,
                })
            }
            Event::Alias(id) => Ok(Node {
                kind: Kind::Alias(id),
                start: span_start,
                end: span_end,
                line: self.line_of(span_start),
                flow: false,
                anchor: 0,
            }),
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::MappingEnd = ev {
                        let end_start = self.byte(sp.start.index());
                        let end = self.byte(sp.end.index());
                        let flow = end > end_start;
                        let (start, _) = self.skip_properties(span_start, span_end.max(span_start));
                        return Ok(Node {
                            kind: Kind::Map(entries),
                            start,
                            end: self.flow_end(flow, end_start, end),
                            line: self.line_of(start),
                            flow,
                            anchor,
                        });
                    }
                    let key = self.node(ev, sp)?;
                    let key_text = match &key.kind {
                        Kind::Scalar { value, .. } => value.clone(),
                        _ => {
                            return Err(ParseError {
                                line: key.line + 1,
                                column: 1,
                                message: "a mapping key that is not a scalar is not supported"
                                    .into(),
                            })
                        }
                    };
                    let (vev, vsp) = self.next()?;
                    let value = self.node(vev, vsp)?;
                    entries.push(Entry {
                        key: key_text,
                        key_start: key.start,
                        key_end: key.end,
                        line: key.line,
                        value,
                    });
                }
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::SequenceEnd = ev {
                        let end_start = self.byte(sp.start.index());
                        let end = self.byte(sp.end.index());
                        let flow = end > end_start;
                        let (start, _) = self.skip_properties(span_start, span_end.max(span_start));
                        return Ok(Node {
                            kind: Kind::Seq(items),
                            start,
                            end: self.flow_end(flow, end_start, end),
                            line: self.line_of(start),
                            flow,
                            anchor,
                        });
                    }
                    items.push(self.node(ev, sp)?);
                }
            }
            other => Err(ParseError {
                line: self.line_of(span_start) + 1,
                column: 1,
                message: format!("unexpected YAML event {other:?}"),
            }),
        }
    }
}

impl<'a> Doc<'a> {
    /// Parses one YAML document. Several documents in one file are refused.
    pub fn parse(src: &'a str) -> Result<Doc<'a>, ParseError> {
        let mut char_bytes: Vec<usize> = src.char_indices().map(|(i, _)| i).collect();
        char_bytes.push(src.len());
        let mut b = Builder {
            src,
            char_bytes,
            lines: split_lines(src),
            events: Parser::new_from_str(src).peekable(),
        };
        let mut root = None;
        let mut documents = 0;
        loop {
            let (ev, sp) = match b.events.next() {
                None => break,
                Some(Ok(ev)) => ev,
                Some(Err(e)) => return Err(scan_error(e)),
            };
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(ParseError {
                            line: b.line_of(b.byte(sp.start.index())) + 1,
                            column: 1,
                            message:
                                "the file holds several YAML documents; a values file holds one"
                                    .into(),
                        });
                    }
                }
                ev => root = Some(b.node(ev, sp)?),
            }
        }
        Ok(Doc {
            src,
            lines: b.lines,
            root,
        })
    }

    pub fn line_of(&self, byte: usize) -> usize {
        match self.lines.binary_search_by(|l| l.start.cmp(&byte)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// The entry at a key path, through block or flow mappings.
    pub fn entry(&self, path: &[&str]) -> Option<&Entry> {
        let mut node = self.root.as_ref()?;
        let (last, parents) = path.split_last()?;
        for p in parents {
            node = &node.get(p)?.value;
        }
        node.get(last)
    }

    /// The node that carries anchor `id`.
    pub fn anchored(&self, id: usize) -> Option<&Node> {
        fn find(node: &Node, id: usize) -> Option<&Node> {
            if node.anchor == id {
                return Some(node);
            }
            match &node.kind {
                Kind::Map(entries) => entries.iter().find_map(|e| find(&e.value, id)),
                Kind::Seq(items) => items.iter().find_map(|n| find(n, id)),
                _ => None,
            }
        }
        if id == 0 {
            return None;
        }
        find(self.root.as_ref()?, id)
    }

    /// An entry a mapping does not hold itself but gets through a merge key (`<<: *anchor`,
    /// `<<: [*a, *b]`, the first one holding it wins, or an inline mapping): the `<<` entry,
    /// the mapping that holds the key, and its entry. Nested merges are followed.
    pub fn merged_entry<'n>(&'n self, map: &'n Node, key: &str) -> Option<MergedEntry<'n>> {
        self.merged_entry_at(map, key, 0)
    }

    fn merged_entry_at<'n>(
        &'n self,
        map: &'n Node,
        key: &str,
        depth: usize,
    ) -> Option<MergedEntry<'n>> {
        if depth > 16 {
            return None;
        }
        let merge = map.get("<<")?;
        let sources: Vec<&Node> = match &merge.value.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![&merge.value],
        };
        sources.into_iter().find_map(|source| {
            let source = match source.kind {
                Kind::Alias(id) => self.anchored(id)?,
                _ => source,
            };
            match source.get(key) {
                Some(entry) => Some(MergedEntry {
                    merge,
                    source,
                    entry,
                }),
                None => self
                    .merged_entry_at(source, key, depth + 1)
                    .map(|inner| MergedEntry { merge, ..inner }),
            }
        })
    }

    /// Whether the key is the first thing on its line (so its lines can be cut and moved).
    pub fn starts_line(&self, entry: &Entry) -> bool {
        let l = self.lines[entry.line];
        entry.key_start == l.start + l.indent
    }

    /// The key's column, in bytes.
    pub fn column(&self, entry: &Entry) -> usize {
        entry.key_start - self.lines[entry.line].start
    }

    /// The lines an entry occupies, first to last inclusive, including the comment lines
    /// directly above it at its own indentation and the comment lines inside it.
    pub fn extent(&self, entry: &Entry) -> (usize, usize) {
        let col = self.column(entry);
        let is_seq = matches!(entry.value.kind, Kind::Seq(_)) && !entry.value.flow;
        let mut first = entry.line;
        while first > 0 {
            let l = self.lines[first - 1];
            if l.kind == LineKind::Comment && l.indent == col {
                first -= 1;
            } else {
                break;
            }
        }
        let mut last = entry.line;
        let mut i = entry.line + 1;
        while i < self.lines.len() {
            let l = self.lines[i];
            if l.kind == LineKind::Content {
                let text = &self.src[l.start + l.indent..l.end];
                let seq_item = is_seq && l.indent == col && (text == "-" || text.starts_with("- "));
                if l.indent < col || (l.indent == col && !seq_item) {
                    break;
                }
                last = i;
            } else if l.kind == LineKind::Comment && l.indent > col {
                last = i;
            }
            i += 1;
        }
        // The value may end on a later line than its last indented line (a multi-line flow
        // value closing at the key's column): never cut inside the node.
        let exact_end = entry.value.flow
            || matches!(
                entry.value.kind,
                Kind::Scalar {
                    style: Style::SingleQuoted | Style::DoubleQuoted,
                    ..
                }
            );
        if exact_end {
            let value_last = self.line_of(entry.value.end.saturating_sub(1).max(entry.key_start));
            last = last.max(value_last.min(self.lines.len().saturating_sub(1)));
        }
        (first, last)
    }

    /// The indentation step the file uses (difference between a mapping and its children);
    /// 2 when the file gives no example.
    pub fn indent_step(&self) -> usize {
        fn walk(doc: &Doc, node: &Node, parent_col: Option<usize>, out: &mut Vec<usize>) {
            if let Kind::Map(entries) = &node.kind {
                if node.flow {
                    return;
                }
                for e in entries {
                    let col = doc.column(e);
                    if let Some(p) = parent_col {
                        if col > p && doc.starts_line(e) {
                            out.push(col - p);
                        }
                    }
                    walk(doc, &e.value, Some(col), out);
                }
            }
        }
        let mut steps = Vec::new();
        if let Some(root) = &self.root {
            walk(self, root, None, &mut steps);
        }
        steps.sort_unstable();
        // the most common step
        let mut best = (0, 2);
        let mut i = 0;
        while i < steps.len() {
            let j = steps[i..].iter().take_while(|s| **s == steps[i]).count();
            if j > best.0 {
                best = (j, steps[i]);
            }
            i += j;
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "# head\n\npostgresql:\n  # the database\n  postgresqlDatabase: 'live''db'  # trailing\n  persistence:\n    size: 8Gi\n    # commented: child\n\n# about redis\nredis:\n  auth: {password: x}\nlist:\n- a\n- b\nend: \"q\"\n";

    #[test]
    fn keys_and_scalars_have_exact_spans() {
        let doc = Doc::parse(SRC).unwrap();
        let e = doc.entry(&["postgresql", "postgresqlDatabase"]).unwrap();
        assert_eq!(&SRC[e.key_start..e.key_end], "postgresqlDatabase");
        assert_eq!(&SRC[e.value.start..e.value.end], "'live''db'");
        assert_eq!(e.line, 4);
        let e = doc.entry(&["end"]).unwrap();
        assert_eq!(&SRC[e.value.start..e.value.end], "\"q\"");
    }

    #[test]
    fn an_extent_takes_the_comments_above_and_inside_but_not_the_next_keys_comments() {
        let doc = Doc::parse(SRC).unwrap();
        let db = doc.entry(&["postgresql", "postgresqlDatabase"]).unwrap();
        assert_eq!(doc.extent(db), (3, 4));
        let p = doc.entry(&["postgresql", "persistence"]).unwrap();
        assert_eq!(doc.extent(p), (5, 7));
        let pg = doc.entry(&["postgresql"]).unwrap();
        assert_eq!(doc.extent(pg), (2, 7));
        let list = doc.entry(&["list"]).unwrap();
        assert_eq!(doc.extent(list), (12, 14));
        let redis = doc.entry(&["redis"]).unwrap();
        assert_eq!(doc.extent(redis), (9, 11));
    }

    #[test]
    fn flow_mappings_are_marked() {
        let doc = Doc::parse(SRC).unwrap();
        let auth = doc.entry(&["redis", "auth"]).unwrap();
        assert!(auth.value.flow);
        assert_eq!(&SRC[auth.value.start..auth.value.end], "{password: x}");
        assert!(!doc.entry(&["postgresql"]).unwrap().value.flow);
    }

    #[test]
    fn a_flow_mapping_ends_after_its_brace_also_after_a_trailing_comma() {
        let src = "a: {b: 1,\n  c: 2,  # two\n  }  # end\nd: [1, 2,]\n";
        let doc = Doc::parse(src).unwrap();
        let a = &doc.entry(&["a"]).unwrap().value;
        assert_eq!(&src[a.start..a.end], "{b: 1,\n  c: 2,  # two\n  }");
        let d = &doc.entry(&["d"]).unwrap().value;
        assert_eq!(&src[d.start..d.end], "[1, 2,]");
    }

    #[test]
    fn the_indent_step_is_learnt_from_the_file() {
        assert_eq!(Doc::parse(SRC).unwrap().indent_step(), 2);
        assert_eq!(
            Doc::parse("a:\n    b:\n        c: 1\n")
                .unwrap()
                .indent_step(),
            4
        );
    }

    #[test]
    fn keys_merged_through_aliases_are_found_in_their_anchors_first_one_wins() {
        let src =
            "a: &a\n  x: 1\nb: &b\n  x: 2\n  y: 3\nc: &c\n  <<: *a\nm:\n  <<: [*c, *b]\n  z: 4\n";
        let doc = Doc::parse(src).unwrap();
        let m = &doc.entry(&["m"]).unwrap().value;
        let x = doc.merged_entry(m, "x").unwrap();
        assert_eq!((x.merge.line, x.entry.line), (8, 1), "through c, from a");
        assert_eq!(doc.merged_entry(m, "y").unwrap().entry.line, 4);
        assert!(doc.merged_entry(m, "z").is_none(), "its own key");
        assert!(doc.merged_entry(m, "w").is_none());
    }

    #[test]
    fn errors_carry_a_line() {
        let err = Doc::parse("a: 1\nb: [\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        let err = Doc::parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err.message.contains("several"));
    }

    #[test]
    fn empty_and_comment_only_files_have_no_root() {
        assert!(Doc::parse("").unwrap().root.is_none());
        assert!(Doc::parse("# nothing\n").unwrap().root.is_none());
    }
}
