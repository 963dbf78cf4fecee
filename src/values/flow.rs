//! Flow-style mappings (`postgresql: {postgresqlDatabase: db, ...}`) on the way to a key to
//! move are written out in block style first, so the translation can cut and move lines.
//! Only those mappings are rewritten: each entry on a line of its own at the file's
//! indentation step, its key and value text as written, and the comments inside the braces
//! and after them kept beside the entries they followed. Every other byte is copied. The
//! rewritten text keeps, for each of its lines, the input line it came from, so the report
//! can name input lines. Pure: no I/O.

use std::collections::HashSet;

use super::doc::{Doc, Entry, Kind, Node};
use super::splice::newline_of;

/// The block-style text, the input line (0-based) each of its lines came from, and the
/// rewritten mappings (dotted path, 0-based input line).
#[derive(Debug)]
pub(super) struct Restyled {
    pub text: String,
    pub origins: Vec<usize>,
    pub mappings: Vec<(String, usize)>,
}

impl Restyled {
    /// The 1-based input line of a 1-based line of the rewritten text.
    pub fn input_line(&self, line: usize) -> usize {
        self.origins
            .get(line.saturating_sub(1))
            .map(|l| l + 1)
            .unwrap_or(line)
    }
}

/// The flow mappings (their start offsets) to write in block style for keys to move, given
/// as (old key, new key) paths: for each old key the file holds, the mappings on the way to
/// it (the root and the values along its parents, up to the one holding it, or the anchor's
/// mapping it comes from through a merge key `<<`) and those on the way to its new place.
/// Only non-empty flow mappings count.
pub(super) fn on_paths(doc: &Doc, moves: &[(Vec<&str>, Vec<&str>)]) -> HashSet<usize> {
    let mut marked = HashSet::new();
    let Some(root) = &doc.root else {
        return marked;
    };
    for (from, to) in moves {
        let (Some((key, from_parents)), Some((_, to_parents))) =
            (from.split_last(), to.split_last())
        else {
            continue;
        };
        let (mut way, holder) = walk(root, from_parents);
        let Some(holder) = holder else { continue };
        if holder.get(key).is_none() {
            match doc.merged_entry(holder, key) {
                Some(m) => way.push(m.source),
                None => continue,
            }
        }
        way.extend(walk(root, to_parents).0);
        for node in way {
            if node.flow && node.entries().is_some_and(|e| !e.is_empty()) {
                marked.insert(node.start);
            }
        }
    }
    marked
}

/// The mappings from the root along `path` as far as the file has them, and the last one
/// when the whole path is there.
fn walk<'d>(root: &'d Node, path: &[&str]) -> (Vec<&'d Node>, Option<&'d Node>) {
    let mut way = vec![root];
    let mut node = root;
    for seg in path {
        match node.get(seg) {
            Some(e) if matches!(e.value.kind, Kind::Map(_)) => {
                node = &e.value;
                way.push(node);
            }
            _ => return (way, None),
        }
    }
    (way, Some(node))
}

/// Output text with the input line of each of its lines.
struct Out<'s> {
    src: &'s str,
    nl: &'static str,
    text: String,
    origins: Vec<usize>,
}

impl Out<'_> {
    /// Copies `src[a..b]`; each line it starts comes from its own input line.
    fn copy(&mut self, doc: &Doc, a: usize, b: usize) {
        let mut at = a;
        while let Some(i) = self.src[at..b].find('\n') {
            let p = at + i + 1;
            self.text.push_str(&self.src[at..p]);
            self.origins.push(doc.line_of(p));
            at = p;
        }
        self.text.push_str(&self.src[at..b]);
    }

    /// A new line, coming from input line `origin`.
    fn new_line(&mut self, origin: usize) {
        self.text.push_str(self.nl);
        self.origins.push(origin);
    }
}

/// A comment (`# ...`) in a gap between the tokens of a flow mapping: on the gap's first
/// line (after the previous token) and on its later lines.
fn gap_comments(gap: &str) -> (Option<&str>, Vec<&str>) {
    let mut lines = gap.split('\n');
    let first = lines
        .next()
        .and_then(|l| l.find('#').map(|i| l[i..].trim_end()));
    let rest = lines
        .filter_map(|l| l.find('#').map(|i| l[i..].trim_end()))
        .collect();
    (first, rest)
}

/// The rewritten text, or `None` when no mapping is marked.
pub(super) fn restyle(doc: &Doc, marked: &HashSet<usize>, step: usize) -> Option<Restyled> {
    let root = doc.root.as_ref()?;
    if marked.is_empty() {
        return None;
    }
    let mut r = Rewriter {
        doc,
        marked,
        step,
        edits: Vec::new(),
        mappings: Vec::new(),
    };
    if root.flow {
        r.edits.push(Edit {
            node: root,
            indent: 0,
            path: Vec::new(),
        });
    } else {
        r.find(root, &mut Vec::new());
    }
    let mut out = Out {
        src: doc.src,
        nl: newline_of(doc.src),
        text: String::with_capacity(doc.src.len() + 256),
        origins: vec![0],
    };
    let mut at = 0;
    for edit in &r.edits {
        let node = edit.node;
        let line = doc.line_of(node.start);
        let line_end = doc.lines[doc.line_of(node.end.saturating_sub(1))].end;
        // The mapping alone on its line (the top level, or a value below its key) is replaced
        // from the line's start; else the blanks before the brace go with it (no trailing
        // blanks on the key's line).
        let line_start = doc.lines[line].start;
        let on_key_line = doc.src[line_start..node.start].trim().is_empty();
        let start = if on_key_line {
            line_start
        } else {
            doc.src[..node.start].trim_end_matches(' ').len()
        };
        out.copy(doc, at, start);
        let (after_open, mut above) = gap_comments(
            &doc.src[node.start + 1
                ..node
                    .entries()
                    .and_then(|e| e.first())
                    .map_or(node.end - 1, |e| e.key_start)],
        );
        let after_close = doc.src[node.end..line_end].trim();
        let trailing: Vec<&str> = after_open
            .into_iter()
            .chain((!after_close.is_empty()).then_some(after_close))
            .collect();
        if !trailing.is_empty() {
            if on_key_line {
                // A mapping alone on its line: its comments go above it.
                above.splice(0..0, trailing);
            } else {
                out.text.push_str("  ");
                out.text.push_str(&trailing.join(" "));
            }
        }
        r.entries(&mut out, node, edit.indent, above, on_key_line);
        at = line_end;
        r.mappings.push((
            if edit.path.is_empty() {
                "(top level)".into()
            } else {
                edit.path.join(".")
            },
            line,
        ));
    }
    out.copy(doc, at, doc.src.len());
    Some(Restyled {
        text: out.text,
        origins: out.origins,
        mappings: r.mappings,
    })
}

struct Edit<'d> {
    node: &'d Node,
    indent: usize,
    path: Vec<String>,
}

struct Rewriter<'d, 's> {
    doc: &'d Doc<'s>,
    marked: &'d HashSet<usize>,
    step: usize,
    edits: Vec<Edit<'d>>,
    mappings: Vec<(String, usize)>,
}

impl<'d> Rewriter<'d, '_> {
    /// The outermost marked flow mappings under a block mapping, in file order.
    fn find(&mut self, node: &'d Node, path: &mut Vec<String>) {
        let Some(entries) = node.entries() else {
            return;
        };
        for e in entries {
            path.push(e.key.clone());
            if e.value.flow && self.marked.contains(&e.value.start) {
                if self.doc.starts_line(e) {
                    self.edits.push(Edit {
                        node: &e.value,
                        indent: self.doc.column(e) + self.step,
                        path: path.clone(),
                    });
                }
            } else if !e.value.flow {
                self.find(&e.value, path);
            }
            path.pop();
        }
    }

    /// The text after an entry's colon up to the end of its value (anchors and tags
    /// included), or `None` for a key without a value (`{a, b: 1}`).
    fn value_text(&self, e: &Entry) -> Option<&str> {
        let src = self.doc.src;
        let rest = &src[e.key_end..];
        let colon = rest.len() - rest.trim_start().len();
        if !rest[colon..].starts_with(':') {
            return None;
        }
        let from = e.key_end + colon + 1;
        Some(src[from..e.value.end.max(from)].trim())
    }

    /// Each entry of a flow mapping on a line of its own at `indent`; the comments between
    /// the entries go where they stood. `above` are the comments before the first entry.
    fn entries(
        &self,
        out: &mut Out,
        node: &Node,
        indent: usize,
        above: Vec<&str>,
        first_on_key_line: bool,
    ) {
        let doc = self.doc;
        let entries = node.entries().unwrap_or_default();
        let pad = " ".repeat(indent);
        let mut first = first_on_key_line;
        let mut line_break = |out: &mut Out, origin: usize| {
            if !std::mem::take(&mut first) {
                out.new_line(origin);
            }
        };
        for c in above {
            line_break(out, doc.line_of(node.start));
            out.text.push_str(&pad);
            out.text.push_str(c);
        }
        for (i, e) in entries.iter().enumerate() {
            line_break(out, e.line);
            out.text.push_str(&pad);
            out.text.push_str(&doc.src[e.key_start..e.key_end]);
            out.text.push(':');
            let gap_end = entries.get(i + 1).map_or(node.end - 1, |n| n.key_start);
            let (trailing, next_above) = gap_comments(&doc.src[e.value.end..gap_end]);
            if e.value.flow && self.marked.contains(&e.value.start) {
                let props = self
                    .value_text(e)
                    .map(|t| t[..t.len() - (e.value.end - e.value.start)].trim())
                    .unwrap_or("");
                if !props.is_empty() {
                    out.text.push(' ');
                    out.text.push_str(props);
                }
                let (after_open, inner_above) = gap_comments(
                    &doc.src[e.value.start + 1
                        ..e.value
                            .entries()
                            .and_then(|c| c.first())
                            .map_or(e.value.end - 1, |c| c.key_start)],
                );
                let trailing: Vec<&str> = after_open.into_iter().chain(trailing).collect();
                if !trailing.is_empty() {
                    out.text.push_str("  ");
                    out.text.push_str(&trailing.join(" "));
                }
                self.entries(out, &e.value, indent + self.step, inner_above, false);
            } else {
                if let Some(v) = self.value_text(e).filter(|v| !v.is_empty()) {
                    out.text.push(' ');
                    out.text.push_str(v);
                }
                if let Some(c) = trailing {
                    out.text.push_str("  ");
                    out.text.push_str(c);
                }
            }
            for c in next_above {
                out.new_line(doc.line_of(gap_end));
                out.text.push_str(&pad);
                out.text.push_str(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text with the flow mappings for moving `keys` (to `<key>.new`) in block style.
    fn block(src: &str, keys: &[&str]) -> Restyled {
        let doc = Doc::parse(src).unwrap();
        let moves: Vec<(Vec<&str>, Vec<&str>)> = keys
            .iter()
            .map(|k| {
                (
                    k.split('.').collect(),
                    k.split('.').chain(["new"]).collect(),
                )
            })
            .collect();
        let marked = on_paths(&doc, &moves);
        restyle(&doc, &marked, doc.indent_step()).expect("a mapping to rewrite")
    }

    #[test]
    fn only_the_flow_mapping_on_the_path_is_written_in_block_style() {
        let src = "# head\npostgresql: {postgresqlDatabase: db, persistence: {size: 8Gi}}  # pg\nredis: {auth: {password: x}}\n";
        let r = block(src, &["postgresql.postgresqlDatabase"]);
        assert_eq!(
            r.text,
            "# head\npostgresql:  # pg\n  postgresqlDatabase: db\n  persistence: {size: 8Gi}\nredis: {auth: {password: x}}\n"
        );
        assert_eq!(r.origins[..5], [0, 1, 1, 1, 2]);
        assert_eq!(r.mappings, vec![("postgresql".to_string(), 1)]);
    }

    #[test]
    fn nested_flow_mappings_on_the_path_and_their_comments_keep_their_places() {
        let src = "redis:\n    master: {\n      # the port\n      service: {port: 6379},  # old key\n      persistence: &p {size: 1Gi}\n    }\n    other: 1\n";
        let r = block(src, &["redis.master.service.port"]);
        assert_eq!(
            r.text,
            "redis:\n    master:\n        # the port\n        service:  # old key\n            port: 6379\n        persistence: &p {size: 1Gi}\n    other: 1\n"
        );
        // Each line names the input line it came from.
        assert_eq!(r.origins[..7], [0, 1, 1, 3, 3, 4, 6]);
    }

    #[test]
    fn a_trailing_comma_and_windows_line_breaks_are_understood() {
        let src =
            "postgresql: {postgresqlDatabase: db,\r\n  postgresqlPort: 5433,}  # x\r\nb: 1\r\n";
        let r = block(src, &["postgresql.postgresqlDatabase"]);
        assert_eq!(
            r.text,
            "postgresql:  # x\r\n  postgresqlDatabase: db\r\n  postgresqlPort: 5433\r\nb: 1\r\n"
        );
    }

    #[test]
    fn quoted_keys_anchors_and_keys_without_values_are_kept_as_written() {
        let src = "postgresql: &pg {'postgresqlDatabase': \"db\", enabled, port: 5432}\n";
        let r = block(src, &["postgresql.postgresqlDatabase"]);
        assert_eq!(
            r.text,
            "postgresql: &pg\n  'postgresqlDatabase': \"db\"\n  enabled:\n  port: 5432\n"
        );
    }

    #[test]
    fn a_flow_mapping_on_the_line_below_its_key_is_replaced_from_the_lines_start() {
        let src = "postgresql:\n    {postgresqlDatabase: db, port: 1}  # pg\nx: 1\n";
        let r = block(src, &["postgresql.postgresqlDatabase"]);
        assert_eq!(
            r.text,
            "postgresql:\n  # pg\n  postgresqlDatabase: db\n  port: 1\nx: 1\n"
        );
    }

    #[test]
    fn a_flow_mapping_as_the_whole_file_becomes_the_top_level() {
        let src = "{postgresql: {postgresqlDatabase: db}, app: {replica: 2}}  # all\n";
        let r = block(src, &["postgresql.postgresqlDatabase"]);
        assert_eq!(
            r.text,
            "# all\npostgresql:\n  postgresqlDatabase: db\napp: {replica: 2}\n"
        );
        assert_eq!(r.mappings, vec![("(top level)".to_string(), 0)]);
    }

    #[test]
    fn an_anchor_in_flow_style_a_key_is_merged_from_is_written_in_block_style() {
        let src = "db: &db {postgresqlDatabase: x, other: 1}\npostgresql:\n  <<: *db\n";
        let r = block(src, &["postgresql.postgresqlDatabase"]);
        assert_eq!(
            r.text,
            "db: &db\n  postgresqlDatabase: x\n  other: 1\npostgresql:\n  <<: *db\n"
        );
    }

    #[test]
    fn no_flow_mapping_on_the_paths_means_nothing_to_rewrite() {
        let moved = |from: &'static str, to: &'static str| {
            vec![(from.split('.').collect(), to.split('.').collect())]
        };
        let doc = Doc::parse("postgresql:\n  postgresqlDatabase: db\nx: {a: 1}\n").unwrap();
        let marked = on_paths(
            &doc,
            &moved("postgresql.postgresqlDatabase", "postgresql.auth.database"),
        );
        assert!(restyle(&doc, &marked, 2).is_none());
        // No old key: a mapping in flow style that is already translated stays.
        let doc = Doc::parse("postgresql: {auth: {database: db}}\n").unwrap();
        let marked = on_paths(
            &doc,
            &moved("postgresql.postgresqlDatabase", "postgresql.auth.database"),
        );
        assert!(marked.is_empty());
    }
}
