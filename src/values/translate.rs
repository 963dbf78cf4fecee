//! The translation: rules applied to a document as a plan of text splices, then checked.

use std::collections::{BTreeMap, HashSet};

use serde_norway::{Mapping, Value};

use super::chart_keys::{KeySet, KEYS_CHART_VERSION};
use super::doc::{Doc, Entry, Kind, Node, ParseError, Style};
use super::flow;
use super::rules::{self, Action, Rule, CUSTOM_USER_PASSWORD, RULES};
use super::splice::{newline_of, Splice};
use super::{Change, ChangeKind, Conflict, Options, TranslateError, Translation, Warning};
use crate::naming::{Generation, NameInputs, ObjectNames};

fn parse_error(e: ParseError) -> TranslateError {
    TranslateError::Parse {
        line: e.line,
        column: e.column,
        message: e.message,
    }
}

/// One segment of a path through mappings and lists.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn vget<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut v = v;
    for p in path {
        v = v.as_mapping()?.get(*p)?;
    }
    Some(v)
}

fn vremove(v: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut v = v;
    for p in parents {
        v = v.as_mapping_mut()?.get_mut(*p)?;
    }
    v.as_mapping_mut()?.remove(*last)
}

fn vset(v: &mut Value, path: &[&str], value: Value) {
    let mut v = v;
    for p in path {
        if !matches!(v, Value::Mapping(_)) {
            *v = Value::Mapping(Mapping::new());
        }
        let map = v.as_mapping_mut().expect("a mapping");
        if !map.contains_key(*p) {
            map.insert(Value::String(p.to_string()), Value::Null);
        }
        v = map.get_mut(*p).expect("just inserted");
    }
    *v = value;
}

fn vset_segs(v: &mut Value, path: &[Seg], value: Value) {
    let mut v = v;
    for s in path {
        let next = match s {
            Seg::Key(k) => v.as_mapping_mut().and_then(|m| m.get_mut(k.as_str())),
            Seg::Index(i) => v.as_sequence_mut().and_then(|s| s.get_mut(*i)),
        };
        match next {
            Some(n) => v = n,
            None => return,
        }
    }
    *v = value;
}

/// What happens to one old key found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Apply,
    /// The new key already holds the same value: the old key goes (a `Copy` stays).
    Drop,
    /// Another spelling of this key, with the same value, is applied: this one goes, and the
    /// other's change names it.
    Duplicate,
}

struct Found<'d> {
    rule: &'static Rule,
    entry: &'d Entry,
    /// The 0-based line of the merge key (`<<`) the key comes through, when the mapping does
    /// not hold it itself: its translation is written into the mapping, the anchor stays.
    merged: Option<usize>,
    from: Vec<&'static str>,
    to: Vec<&'static str>,
    value: Value,
    fate: Fate,
}

/// A mapping created by the translation, holding moved entries.
#[derive(Default)]
struct NewMap<'d> {
    items: Vec<(String, Item<'d>)>,
}

enum Item<'d> {
    Map(NewMap<'d>),
    /// An entry from elsewhere in the file; `bool`: with the comment lines above it
    Moved(&'d Entry, bool),
}

impl<'d> NewMap<'d> {
    fn put(&mut self, chain: &[&str], key: &str, entry: &'d Entry, comments: bool) {
        match chain.split_first() {
            None => self
                .items
                .push((key.to_string(), Item::Moved(entry, comments))),
            Some((first, rest)) => {
                let pos = self.items.iter().position(|(k, _)| k == first);
                let pos = match pos {
                    Some(p) => p,
                    None => {
                        self.items
                            .push((first.to_string(), Item::Map(NewMap::default())));
                        self.items.len() - 1
                    }
                };
                if let Item::Map(m) = &mut self.items[pos].1 {
                    m.put(rest, key, entry, comments);
                }
            }
        }
    }
}

/// Moved text placed under one existing mapping.
struct Group<'d> {
    anchor: usize,
    indent: usize,
    tree: NewMap<'d>,
}

fn scalar_text(value: &str, style: Style) -> Option<String> {
    match style {
        Style::Plain => Some(value.to_string()),
        Style::SingleQuoted => Some(format!("'{}'", value.replace('\'', "''"))),
        Style::DoubleQuoted => Some(format!(
            "\"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        )),
        Style::Block => None,
    }
}

struct Planner<'d, 's> {
    doc: &'d Doc<'s>,
    root: &'d Node,
    step: usize,
    nl: &'static str,
}

impl<'d, 's> Planner<'d, 's> {
    fn unsupported(&self, path: &[&str], line: usize, reason: &str) -> TranslateError {
        TranslateError::Unsupported {
            path: path.join("."),
            line: line + 1,
            reason: reason.to_string(),
        }
    }

    /// The entry at `path`, and the line of the merge key it comes through when its mapping
    /// gets it from an anchor; refusing shapes the splicer cannot cut safely.
    fn locate(&self, path: &[&str]) -> Result<Option<(&'d Entry, Option<usize>)>, TranslateError> {
        let mut node = self.root;
        for (i, seg) in path.iter().enumerate() {
            let Kind::Map(entries) = &node.kind else {
                return Ok(None);
            };
            let last = i + 1 == path.len();
            let entry = match entries.iter().find(|e| e.key == *seg) {
                Some(entry) => entry,
                None => match self.doc.merged_entry(node, seg) {
                    None => return Ok(None),
                    Some(m) if !last => {
                        return Err(self.unsupported(
                            &path[..=i],
                            m.merge.line,
                            "it comes through this merge key (<<), and a merge is shallow: writing it out here would hide the rest of it; write that mapping out in place of the merge key, then run again",
                        ))
                    }
                    Some(m) if m.source.flow || !self.doc.starts_line(m.entry) => {
                        return Err(self.unsupported(
                            path,
                            m.entry.line,
                            "it comes through a merge key (<<) from a mapping written in flow style; write that mapping in block style, then run again",
                        ))
                    }
                    Some(m) => return Ok(Some((m.entry, Some(m.merge.line)))),
                },
            };
            if node.flow {
                return Err(self.unsupported(
                    &path[..=i],
                    entry.line,
                    "it is inside a flow-style mapping ({...}); write that mapping in block style, then run again",
                ));
            }
            if last {
                if !self.doc.starts_line(entry) {
                    return Err(self.unsupported(
                        path,
                        entry.line,
                        "the key does not start its line; put it on a line of its own, then run again",
                    ));
                }
                return Ok(Some((entry, None)));
            }
            node = &entry.value;
        }
        Ok(None)
    }

    /// The lines of a moved entry, re-indented to `indent`, with its key renamed.
    fn moved_text(
        &self,
        entry: &Entry,
        key: &str,
        indent: usize,
        comments: bool,
        out: &mut String,
    ) {
        let doc = self.doc;
        let (first, last) = doc.extent(entry);
        let first = if comments { first } else { entry.line };
        let col = doc.column(entry);
        for i in first..=last {
            let l = doc.lines[i];
            let mut text = doc.src[l.start..l.end].to_string();
            if i == entry.line {
                text = format!(
                    "{}{}{}",
                    &doc.src[l.start..entry.key_start],
                    key,
                    &doc.src[entry.key_end..l.end]
                );
            }
            if text.trim().is_empty() {
                out.push_str(self.nl);
                continue;
            }
            if indent >= col {
                out.push_str(&" ".repeat(indent - col));
                out.push_str(&text);
            } else {
                let strip = (col - indent).min(l.indent);
                out.push_str(&text[strip..]);
            }
            out.push_str(self.nl);
        }
    }

    fn render_map(&self, map: &NewMap, indent: usize, out: &mut String) {
        for (key, item) in &map.items {
            match item {
                Item::Map(m) => {
                    out.push_str(&" ".repeat(indent));
                    out.push_str(key);
                    out.push(':');
                    out.push_str(self.nl);
                    self.render_map(m, indent + self.step, out);
                }
                Item::Moved(entry, comments) => self.moved_text(entry, key, indent, *comments, out),
            }
        }
    }
}

/// Translates one values file. Returns the new text, the changes and the warnings; or an
/// error, in which case nothing should be written. Flow-style mappings on the way to a key to
/// move are written in block style first (`flow`); the report names input lines.
pub fn translate(src: &str, opts: &Options) -> Result<Translation, TranslateError> {
    let doc = Doc::parse(src).map_err(parse_error)?;
    let moves: Vec<_> = RULES
        .iter()
        .chain([&CUSTOM_USER_PASSWORD])
        .map(|r| (rules::split(r.from), rules::split(r.to)))
        .collect();
    let marked = flow::on_paths(&doc, &moves);
    let Some(restyled) = flow::restyle(&doc, &marked, doc.indent_step()) else {
        return translate_block(&doc, opts);
    };
    let values = |text: &str| serde_norway::from_str::<Value>(text).ok();
    if values(src) != values(&restyled.text) {
        let (path, line) = &restyled.mappings[0];
        return Err(TranslateError::Unsupported {
            path: path.clone(),
            line: line + 1,
            reason: "written in block style it would not hold the same values (a value over several lines?); write it in block style, then run again".into(),
        });
    }
    let relined = |line: usize| restyled.input_line(line);
    let block = Doc::parse(&restyled.text).map_err(|e| {
        TranslateError::Verification(format!(
            "written in block style, the file is not valid YAML (line {}: {})",
            e.line, e.message
        ))
    })?;
    let mut t = translate_block(&block, opts).map_err(|e| relined_error(e, relined))?;
    for c in &mut t.changes {
        c.line = relined(c.line);
    }
    t.changes
        .extend(restyled.mappings.iter().map(|(path, line)| Change {
            kind: ChangeKind::Restyled,
            from: path.clone(),
            to: path.clone(),
            line: line + 1,
            old_value: None,
            new_value: None,
            note: None,
        }));
    t.changes
        .sort_by_key(|c| (c.line, c.kind != ChangeKind::Restyled));
    Ok(t)
}

/// An error about the text written in block style, its lines made the input's.
fn relined_error(e: TranslateError, relined: impl Fn(usize) -> usize) -> TranslateError {
    match e {
        TranslateError::Conflicts(cs) => TranslateError::Conflicts(
            cs.into_iter()
                .map(|c| Conflict {
                    first_line: relined(c.first_line),
                    second_line: c.second_line.map(&relined),
                    ..c
                })
                .collect(),
        ),
        TranslateError::Unsupported { path, line, reason } => TranslateError::Unsupported {
            path,
            line: relined(line),
            reason,
        },
        other => other,
    }
}

/// The translation of a file whose keys to move are all in block style.
fn translate_block(doc: &Doc, opts: &Options) -> Result<Translation, TranslateError> {
    let src = doc.src;
    let Some(root) = mapping_root(doc)? else {
        return Ok(unchanged(src));
    };
    // As written (merge keys as keys), for the check of the edited text; and as the chart
    // reads it (merge keys applied), for every decision.
    let raw = values_as_written(src)?;
    let input = merged(&raw);
    let planner = Planner {
        doc,
        root,
        step: doc.indent_step(),
        nl: newline_of(src),
    };
    let found = find_old_keys(&planner, &input)?;
    let mut edit = Edit {
        splice: Splice::new(doc.lines.len()),
        expected: raw,
        changes: Vec::new(),
    };
    let moves = plan_moves(&planner, &found, &mut edit)?;
    remove_emptied_mappings(doc, &moves, &mut edit);
    insert_moved(&planner, &moves, &mut edit.splice);
    let mut warnings = rename_app_service(doc, &input, opts, &mut edit)?;
    let Edit {
        splice,
        expected,
        mut changes,
    } = edit;
    let yaml = splice.render(doc).map_err(TranslateError::Verification)?;
    let (out_doc, actual) = check_rendered(&yaml, &expected)?;
    warnings.extend(anchor_warnings(&found, &out_doc));
    advise(&merged(&actual), Some(&out_doc), &mut warnings);
    warnings.sort_by_key(|w| w.line.unwrap_or(0));
    changes.sort_by_key(|c| c.line);
    Ok(Translation {
        yaml,
        changes,
        warnings,
    })
}

/// Nothing to translate: the file keeps the chart defaults, which can still matter.
fn unchanged(src: &str) -> Translation {
    let mut warnings = Vec::new();
    advise(&Value::Null, None, &mut warnings);
    Translation {
        yaml: src.to_string(),
        changes: Vec::new(),
        warnings,
    }
}

/// The top-level mapping to translate; `None` for an empty document. Anything else at the
/// top level is refused.
fn mapping_root<'d>(doc: &'d Doc) -> Result<Option<&'d Node>, TranslateError> {
    let Some(root) = &doc.root else {
        return Ok(None);
    };
    match &root.kind {
        Kind::Map(_) if root.flow => Err(TranslateError::Unsupported {
            path: "(top level)".into(),
            line: root.line + 1,
            reason: "the file is one flow-style mapping ({...}); write it in block style, then run again".into(),
        }),
        Kind::Map(_) => Ok(Some(root)),
        Kind::Scalar { .. } if root.is_empty_value() => Ok(None),
        Kind::Scalar { .. } => Err(TranslateError::NotMapping { found: "a scalar" }),
        Kind::Seq(_) => Err(TranslateError::NotMapping { found: "a list" }),
        Kind::Alias(_) => Err(TranslateError::NotMapping { found: "an alias" }),
    }
}

/// The values as written: merge keys (`<<`) are keys like any other.
fn values_as_written(src: &str) -> Result<Value, TranslateError> {
    serde_norway::from_str(src).map_err(|e| TranslateError::Parse {
        line: e.location().map(|l| l.line()).unwrap_or(1),
        column: e.location().map(|l| l.column()).unwrap_or(1),
        message: e.to_string(),
    })
}

/// Stage 1: the old keys in the file and each one's fate, in the order of their lines; or
/// every conflict between them.
fn find_old_keys<'d>(
    planner: &Planner<'d, '_>,
    input: &Value,
) -> Result<Vec<Found<'d>>, TranslateError> {
    let doc = planner.doc;
    let mut found: Vec<Found> = Vec::new();
    let mut conflicts = Vec::new();
    let extra = custom_user_of_the_charts_database(input).then_some(&CUSTOM_USER_PASSWORD);
    for rule in RULES.iter().chain(extra) {
        let from = rules::split(rule.from);
        let to = rules::split(rule.to);
        let Some((entry, merged)) = planner.locate(&from)? else {
            continue;
        };
        if rule.action == Action::Also && vget(input, &to).is_some() {
            // Set already: left as it is (`advise` warns when it is not the app's password).
            continue;
        }
        let value = vget(input, &from).cloned().unwrap_or(Value::Null);
        let fate = if let Some(existing) = vget(input, &to) {
            if *existing == value {
                Fate::Drop
            } else {
                conflicts.push(Conflict {
                    first: rule.from.to_string(),
                    first_line: entry.line + 1,
                    second: rule.to.to_string(),
                    second_line: doc.entry(&to).map(|e| e.line + 1),
                    both_become: None,
                });
                continue;
            }
        } else if let Some(prev) = found
            .iter()
            .find(|f| f.rule.to == rule.to && f.fate == Fate::Apply)
        {
            if prev.value == value && rule.action == Action::Move {
                Fate::Duplicate
            } else {
                // RULES lists the spelling the old chart reads first.
                conflicts.push(Conflict {
                    first: prev.rule.from.to_string(),
                    first_line: prev.entry.line + 1,
                    second: rule.from.to_string(),
                    second_line: Some(entry.line + 1),
                    both_become: Some(rule.to.to_string()),
                });
                continue;
            }
        } else {
            Fate::Apply
        };
        found.push(Found {
            rule,
            entry,
            merged,
            from,
            to,
            value,
            fate,
        });
    }
    if !conflicts.is_empty() {
        return Err(TranslateError::Conflicts(conflicts));
    }
    found.sort_by_key(|f| f.entry.line);
    Ok(found)
}

/// The edit as planned so far: the splices, the values the edited text must hold, and the
/// changes to report.
struct Edit {
    splice: Splice,
    expected: Value,
    changes: Vec<Change>,
}

/// Where stage 2 moved keys from and to.
#[derive(Default)]
struct Moves<'d> {
    /// The old paths whose entries were deleted.
    deleted: Vec<Vec<&'static str>>,
    /// The moved text, per receiving mapping and the first new key under it.
    groups: BTreeMap<(String, String), Group<'d>>,
    /// The mappings that receive moved keys (dotted paths).
    receiving: HashSet<String>,
    /// The entries whose empty value (`{}`, `~`) was cut to receive keys, by key offset.
    converted: HashSet<usize>,
}

/// The note of the change `f` makes: the rule's own, and the spellings removed beside it.
fn change_note(f: &Found, found: &[Found]) -> Option<String> {
    let duplicates = found
        .iter()
        .filter(|d| d.fate == Fate::Duplicate && d.rule.to == f.rule.to)
        .map(|d| {
            format!(
                "{} (line {}) held the same value and was removed",
                d.rule.from,
                d.entry.line + 1
            )
        });
    let note: Vec<String> = (!f.rule.note.is_empty())
        .then(|| f.rule.note.to_string())
        .into_iter()
        .chain(duplicates)
        .collect();
    (!note.is_empty()).then(|| note.join("; "))
}

/// Stage 2: the splices that rename, move, copy or remove each key found.
fn plan_moves<'d>(
    planner: &Planner<'d, '_>,
    found: &[Found<'d>],
    edit: &mut Edit,
) -> Result<Moves<'d>, TranslateError> {
    let mut moves = Moves::default();
    for f in found {
        plan_key(planner, f, change_note(f, found), edit, &mut moves)?;
    }
    Ok(moves)
}

/// The splices for one key found.
fn plan_key<'d>(
    planner: &Planner<'d, '_>,
    f: &Found<'d>,
    note: Option<String>,
    edit: &mut Edit,
    moves: &mut Moves<'d>,
) -> Result<(), TranslateError> {
    let doc = planner.doc;
    let change = |kind| Change {
        kind,
        from: f.rule.from.to_string(),
        to: f.rule.to.to_string(),
        line: f.entry.line + 1,
        old_value: None,
        new_value: None,
        note: note.clone(),
    };
    let extent = doc.extent(f.entry);
    if f.merged.is_some() && f.fate != Fate::Apply {
        // The old key stays in its anchor (`anchor_warnings` says so).
        return Ok(());
    }
    if f.fate == Fate::Duplicate {
        edit.splice.delete(extent.0, extent.1);
        moves.deleted.push(f.from.clone());
        vremove(&mut edit.expected, &f.from);
        return Ok(());
    }
    if f.fate == Fate::Drop {
        if f.rule.action == Action::Move {
            edit.splice.delete(extent.0, extent.1);
            moves.deleted.push(f.from.clone());
            vremove(&mut edit.expected, &f.from);
            edit.changes.push(change(ChangeKind::Removed));
        }
        return Ok(());
    }
    let (to_key, to_parent) = f.to.split_last().expect("non-empty path");
    let (_, from_parent) = f.from.split_last().expect("non-empty path");
    // A key merged from an anchor is copied into the mapping that merges it.
    let action = match f.merged {
        Some(_) if f.rule.action == Action::Move => Action::Copy,
        _ => f.rule.action,
    };
    if action == Action::Move {
        vremove(&mut edit.expected, &f.from);
    }
    vset(&mut edit.expected, &f.to, f.value.clone());
    if from_parent == to_parent && action == Action::Move {
        edit.splice
            .replace(f.entry.key_start, f.entry.key_end, to_key.to_string());
        edit.changes.push(change(ChangeKind::Renamed));
        return Ok(());
    }
    if action == Action::Move {
        edit.splice.delete(extent.0, extent.1);
        moves.deleted.push(f.from.clone());
    }
    edit.changes.push(match f.merged {
        Some(merge_line) => Change {
            line: merge_line + 1,
            note: Some(format!(
                "merged from the anchor's line {}: written into {}, the anchor left as it is",
                f.entry.line + 1,
                from_parent.join(".")
            )),
            ..change(ChangeKind::Copied)
        },
        None => change(match action {
            Action::Move => ChangeKind::Moved,
            Action::Copy => ChangeKind::Copied,
            Action::Also => ChangeKind::Also,
        }),
    });
    place_moved(planner, f, action, &mut edit.splice, moves)
}

/// The deepest mapping on a new key's path that exists in the file.
struct Deepest<'d> {
    /// The mapping's node (the root when `entry` is `None`).
    node: &'d Node,
    /// How many segments of the path lead to it.
    len: usize,
    entry: Option<&'d Entry>,
    /// It holds an empty value (`{}`, `~`, nothing) that must become a mapping.
    empty: bool,
}

impl<'d> Planner<'d, '_> {
    /// The deepest mapping on `to_parent` (the parent path of the rule's new key `to`) that
    /// exists in the file; refusing a path that runs through a merge key or another value.
    fn deepest_mapping(&self, to_parent: &[&str], to: &str) -> Result<Deepest<'d>, TranslateError> {
        let doc = self.doc;
        let mut deepest = Deepest {
            node: self.root,
            len: 0,
            entry: None,
            empty: false,
        };
        for (i, seg) in to_parent.iter().enumerate() {
            let Some(e) = deepest.node.get(seg) else {
                if let Some(m) = doc.merged_entry(deepest.node, seg) {
                    return Err(self.unsupported(
                        &to_parent[..=i],
                        m.merge.line,
                        &format!(
                            "{} comes through this merge key (<<) and must hold {}; a merge is shallow, so writing it here would hide the rest of it; write that mapping out in place of the merge key, then run again",
                            to_parent[..=i].join("."),
                            to
                        ),
                    ));
                }
                break;
            };
            if e.value.is_empty_value() {
                deepest.len = i + 1;
                deepest.entry = Some(e);
                deepest.empty = true;
                break;
            }
            match &e.value.kind {
                Kind::Map(_) if !e.value.flow => {
                    if !doc.starts_line(e) {
                        return Err(self.unsupported(
                            &to_parent[..=i],
                            e.line,
                            "the key does not start its line",
                        ));
                    }
                    deepest.node = &e.value;
                    deepest.len = i + 1;
                    deepest.entry = Some(e);
                }
                _ => {
                    return Err(self.unsupported(
                        &to_parent[..=i],
                        e.line,
                        &format!(
                            "{} must become a mapping to hold {}, but it holds another value or a flow-style mapping",
                            to_parent[..=i].join("."),
                            to
                        ),
                    ))
                }
            }
        }
        Ok(deepest)
    }
}

/// Puts the text of a moved or copied key under the deepest mapping on its new path,
/// creating the mappings below it.
fn place_moved<'d>(
    planner: &Planner<'d, '_>,
    f: &Found<'d>,
    action: Action,
    splice: &mut Splice,
    moves: &mut Moves<'d>,
) -> Result<(), TranslateError> {
    let doc = planner.doc;
    let extent = doc.extent(f.entry);
    let (to_key, to_parent) = f.to.split_last().expect("non-empty path");
    let (_, from_parent) = f.from.split_last().expect("non-empty path");
    let deepest = planner.deepest_mapping(to_parent, f.rule.to)?;
    let a_path = &to_parent[..deepest.len];
    let chain = &to_parent[deepest.len..];
    let (anchor, indent) = match deepest.entry {
        None => (doc.lines.len(), 0),
        Some(e) if deepest.empty => {
            if moves.converted.insert(e.key_start) {
                if let Kind::Map(_) | Kind::Scalar { .. } = e.value.kind {
                    if e.value.end > e.key_end {
                        let colon = doc.src[e.key_end..]
                            .find(':')
                            .map(|i| e.key_end + i + 1)
                            .unwrap_or(e.key_end);
                        if e.value.end > colon {
                            splice.replace(colon, e.value.end, String::new());
                        }
                    }
                }
            }
            (e.line + 1, doc.column(e) + planner.step)
        }
        Some(e) => {
            let children = deepest.node.entries().unwrap_or_default();
            let indent = children
                .iter()
                .find(|c| doc.starts_line(c))
                .map(|c| doc.column(c))
                .unwrap_or(doc.column(e) + planner.step);
            let end = doc.extent(e).1 + 1;
            if !chain.is_empty() && from_parent == a_path && f.merged.is_none() {
                (extent.0, indent)
            } else {
                (end, indent)
            }
        }
    };
    let anchor = if deepest.entry.is_none() && !chain.is_empty() && from_parent.is_empty() {
        extent.0
    } else {
        anchor
    };
    moves.receiving.insert(a_path.join("."));
    let key = (
        a_path.join("."),
        chain.first().map(|s| s.to_string()).unwrap_or_default(),
    );
    let group = moves.groups.entry(key).or_insert_with(|| Group {
        anchor,
        indent,
        tree: NewMap::default(),
    });
    group.anchor = group.anchor.min(anchor);
    // A copy leaves the comments with the key that stays.
    group
        .tree
        .put(chain, to_key, f.entry, action == Action::Move);
    Ok(())
}

/// Stage 3: mappings emptied by the moves go too, unless something moves into them.
fn remove_emptied_mappings(doc: &Doc, moves: &Moves, edit: &mut Edit) {
    let mut parents: Vec<Vec<&str>> = moves
        .deleted
        .iter()
        .filter(|p| p.len() > 1)
        .map(|p| p[..p.len() - 1].to_vec())
        .collect();
    while let Some(parent) = parents.pop() {
        let joined = parent.join(".");
        if moves
            .receiving
            .iter()
            .any(|r| *r == joined || r.starts_with(&format!("{joined}.")))
        {
            continue;
        }
        let Some(entry) = doc.entry(&parent) else {
            continue;
        };
        let Some(children) = entry.value.entries() else {
            continue;
        };
        if entry.value.flow
            || !doc.starts_line(entry)
            || children.is_empty()
            || !children.iter().all(|c| edit.splice.is_deleted(c.line))
        {
            continue;
        }
        let (first, last) = doc.extent(entry);
        if (first..=last).all(|l| edit.splice.is_deleted(l)) {
            continue;
        }
        edit.splice.delete(first, last);
        vremove(&mut edit.expected, &parent);
        if parent.len() > 1 {
            parents.push(parent[..parent.len() - 1].to_vec());
        }
    }
}

/// The moved text, each group inserted at its place.
fn insert_moved(planner: &Planner, moves: &Moves, splice: &mut Splice) {
    let mut ordered: Vec<&Group> = moves.groups.values().collect();
    ordered.sort_by_key(|g| g.anchor);
    for g in ordered {
        let mut text = String::new();
        planner.render_map(&g.tree, g.indent, &mut text);
        splice.insert(g.anchor, text);
    }
}

/// The app Service's name before and after 4.44, for this release and its values.
struct AppService {
    old: String,
    new: String,
}

impl AppService {
    /// Renames a scalar that holds the old name; whether it did.
    fn rename(
        &self,
        node: &Node,
        segs: Vec<Seg>,
        shown: String,
        edit: &mut Edit,
    ) -> Result<bool, TranslateError> {
        let Kind::Scalar { value, style } = &node.kind else {
            return Ok(false);
        };
        if *value != self.old {
            return Ok(false);
        }
        let text = scalar_text(&self.new, *style).ok_or_else(|| TranslateError::Unsupported {
            path: shown.clone(),
            line: node.line + 1,
            reason: "the name is a block scalar; write it on one line".into(),
        })?;
        edit.splice.replace(node.start, node.end, text);
        vset_segs(&mut edit.expected, &segs, Value::String(self.new.clone()));
        edit.changes.push(Change {
            kind: ChangeKind::Value,
            from: shown.clone(),
            to: shown,
            line: node.line + 1,
            old_value: Some(self.old.clone()),
            new_value: Some(self.new.clone()),
            note: Some("the app Service is <fullname>-app from 4.44 on".into()),
        });
        Ok(true)
    }
}

/// Stage 4: the app Service name, where it held the old default; warnings for ingress
/// backends that name another Service, or a default ingress that would miss it.
fn rename_app_service(
    doc: &Doc,
    input: &Value,
    opts: &Options,
    edit: &mut Edit,
) -> Result<Vec<Warning>, TranslateError> {
    let mut warnings = Vec::new();
    let names = NameInputs::from_values(input);
    let app = AppService {
        old: ObjectNames::new(&opts.release, &names, Generation::Pg11).app_service,
        new: ObjectNames::new(&opts.release, &names, Generation::Pg15).app_service,
    };
    let (old_app, new_app) = (&app.old, &app.new);
    if let Some(e) = doc.entry(&["service", "name"]) {
        app.rename(
            &e.value,
            vec![Seg::Key("service".into()), Seg::Key("name".into())],
            "service.name".into(),
            edit,
        )?;
    }
    let ingress_hosts = doc.entry(&["ingress", "hosts"]);
    if let Some(hosts) = ingress_hosts {
        if let Kind::Seq(items) = &hosts.value.kind {
            for (hi, host) in items.iter().enumerate() {
                let Some(paths) = host.get("paths") else {
                    continue;
                };
                let Kind::Seq(paths) = &paths.value.kind else {
                    continue;
                };
                for (pi, p) in paths.iter().enumerate() {
                    let Some(name) = p
                        .get("backend")
                        .and_then(|b| b.value.get("service"))
                        .and_then(|s| s.value.get("name"))
                    else {
                        continue;
                    };
                    let shown = format!("ingress.hosts[{hi}].paths[{pi}].backend.service.name");
                    let segs = vec![
                        Seg::Key("ingress".into()),
                        Seg::Key("hosts".into()),
                        Seg::Index(hi),
                        Seg::Key("paths".into()),
                        Seg::Index(pi),
                        Seg::Key("backend".into()),
                        Seg::Key("service".into()),
                        Seg::Key("name".into()),
                    ];
                    if !app.rename(&name.value, segs, shown.clone(), edit)? {
                        if let Kind::Scalar { value, .. } = &name.value.kind {
                            if value != new_app {
                                warnings.push(Warning {
                                    path: shown.clone(),
                                    line: Some(name.value.line + 1),
                                    message: format!(
                                        "{shown} is {value:?}, not this release's app Service ({old_app} before 4.44, {new_app} from 4.44 on); left unchanged"
                                    ),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    let ingress_enabled = vget(input, &["ingress", "enabled"])
        .map(|v| v.as_bool().unwrap_or(true))
        .unwrap_or(true);
    if ingress_hosts.is_none() && ingress_enabled && new_app != "cognigy-live-agent-app" {
        warnings.push(Warning {
            path: "ingress.hosts".into(),
            line: None,
            message: format!(
                "ingress.hosts is not set: the chart's default ingress points at cognigy-live-agent-app, but this release's app Service is {new_app}; set ingress.hosts with backend.service.name: {new_app}"
            ),
        });
    }
    Ok(warnings)
}

/// Stage 5: the edited text parsed, checked to hold the values the plan says.
fn check_rendered<'y>(yaml: &'y str, expected: &Value) -> Result<(Doc<'y>, Value), TranslateError> {
    let out_doc = Doc::parse(yaml).map_err(|e| {
        TranslateError::Verification(format!(
            "the result is not valid YAML (line {}: {})",
            e.line, e.message
        ))
    })?;
    let actual: Value = serde_norway::from_str(yaml)
        .map_err(|e| TranslateError::Verification(format!("the result does not parse: {e}")))?;
    if actual != *expected {
        return Err(TranslateError::Verification(
            "the edited text does not hold the expected values (anchors or aliases inside moved keys?); translate this file by hand".into(),
        ));
    }
    Ok((out_doc, actual))
}

/// Stage 6: old keys left in anchors, each named at the merge key it comes through in the
/// edited text. (`advise` adds the keys 4.44.0 will not read and settings that need a person.)
fn anchor_warnings(found: &[Found], out_doc: &Doc) -> Vec<Warning> {
    found
        .iter()
        .filter(|f| f.merged.is_some())
        .map(|f| {
            let (_, parent) = f.from.split_last().expect("non-empty path");
            let merge_key: Vec<&str> = parent.iter().copied().chain(["<<"]).collect();
            Warning {
                path: f.rule.from.to_string(),
                line: out_doc.entry(&merge_key).map(|e| e.line + 1),
                message: format!(
                    "{} comes through this merge key (<<) from an anchor (input line {}), which is left as it is, as other mappings may merge it: chart {KEYS_CHART_VERSION} ignores the old key ({} holds its value); remove it from the anchor when nothing else uses it",
                    f.rule.from,
                    f.entry.line + 1,
                    f.rule.to,
                ),
            }
        })
        .collect()
}

/// The values as the chart reads them: merge keys (`<<`) applied. A merge helm would refuse
/// (a scalar to merge) is left as written.
fn merged(v: &Value) -> Value {
    let mut m = v.clone();
    match m.apply_merge() {
        Ok(()) => m,
        Err(_) => v.clone(),
    }
}

/// Whether the app logs in as a user of its own (not `postgres`) to the PostgreSQL of the
/// chart (not an external one, no `existingSecret`), read from the old or the new keys.
fn custom_user_of_the_charts_database(v: &Value) -> bool {
    let pg = |path: &str| vget(v, &rules::split(path));
    let user = pg("postgresql.postgresqlUsername").or_else(|| pg("postgresql.auth.username"));
    let custom = user
        .and_then(Value::as_str)
        .is_some_and(|u| u != "postgres");
    let internal = pg("postgresql.enabled").and_then(Value::as_bool) != Some(false);
    let own_secret =
        pg("postgresql.existingSecret").is_some() || pg("postgresql.auth.existingSecret").is_some();
    custom && internal && !own_secret
}

/// Warnings about the translated values: keys 4.44.0 will not read, and settings that need
/// a person.
fn advise(actual: &Value, out_doc: Option<&Doc>, warnings: &mut Vec<Warning>) {
    for path in KeySet::chart_4_44_0().ignored(actual) {
        if warnings.iter().any(|w| w.path == path) {
            continue;
        }
        let segs = rules::split(&path);
        let line = out_doc.and_then(|d| d.entry(&segs)).map(|e| e.line + 1);
        let mut message =
            format!("{path} is not read by chart {KEYS_CHART_VERSION}: it will be ignored");
        if let Some(hint) = rules::hint_for(&path) {
            message.push_str("; ");
            message.push_str(hint);
        }
        warnings.push(Warning {
            path,
            line,
            message,
        });
    }
    let auth = |key: &str| vget(actual, &["postgresql", "auth", key]);
    let user_has_the_apps_password = custom_user_of_the_charts_database(actual)
        && auth("password").is_some()
        && auth("password") == auth("postgresPassword");
    if let Some(Value::String(user)) = auth("username") {
        if user != "postgres" && !user_has_the_apps_password {
            warnings.push(Warning {
                path: "postgresql.auth.username".into(),
                line: out_doc
                    .and_then(|d| d.entry(&["postgresql", "auth", "username"]))
                    .map(|e| e.line + 1),
                message: format!(
                    "postgresql.auth.username is {user:?}: chart 4.44 gives the app the admin password (auth.postgresPassword / secretKeys.adminPasswordKey) with this user; make sure that user has that password"
                ),
            });
        }
    }
    // The 4.43 chart's values set a fixed admin password; 4.44.0 comments it out, so
    // Bitnami generates one. A file that never set it changes password silently.
    let internal_db =
        vget(actual, &["postgresql", "enabled"]).and_then(Value::as_bool) != Some(false);
    let pg_set = |keys: &[&str]| {
        keys.iter()
            .any(|k| vget(actual, &rules::split(k)).is_some())
    };
    if internal_db
        && !pg_set(&[
            "postgresql.auth.postgresPassword",
            "postgresql.auth.existingSecret",
            "global.postgresql.auth.postgresPassword",
            "global.postgresql.auth.existingSecret",
        ])
    {
        warnings.push(Warning {
            path: "postgresql.auth.postgresPassword".into(),
            line: None,
            message: "no PostgreSQL password is set: the 4.43 chart's default values set a fixed one, chart 4.44.0 generates a random one (kept in the chart's PostgreSQL Secret); set postgresql.auth.postgresPassword if anything outside the app uses the password".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<Translation, TranslateError> {
        translate(
            src,
            &Options {
                release: "cognigy-live-agent".into(),
            },
        )
    }

    /// Runs `f` on a planner over `src` and its values as the chart reads them.
    fn stage<T>(src: &str, f: impl FnOnce(&Planner, &Value) -> T) -> T {
        let doc = Doc::parse(src).unwrap();
        let planner = Planner {
            doc: &doc,
            root: doc.root.as_ref().unwrap(),
            step: doc.indent_step(),
            nl: newline_of(src),
        };
        f(&planner, &merged(&values_as_written(src).unwrap()))
    }

    /// An edit of `doc` with nothing planned yet.
    fn no_edit(doc: &Doc) -> Edit {
        Edit {
            splice: Splice::new(doc.lines.len()),
            expected: values_as_written(doc.src).unwrap(),
            changes: Vec::new(),
        }
    }

    #[test]
    fn the_top_level_must_be_a_block_mapping_or_empty() {
        for (src, translated) in [
            (
                "~
", false,
            ),
            (
                "# only
", false,
            ),
            (
                "a: 1
", true,
            ),
        ] {
            let doc = Doc::parse(src).unwrap();
            assert_eq!(mapping_root(&doc).unwrap().is_some(), translated, "{src:?}");
        }
        let err = mapping_root(&Doc::parse("{a: 1}\n").unwrap()).unwrap_err();
        assert!(
            matches!(&err, TranslateError::Unsupported { line: 1, reason, .. } if reason.contains("one flow-style mapping")),
            "{err}"
        );
        assert_eq!(
            mapping_root(&Doc::parse("- a\n").unwrap()).unwrap_err(),
            TranslateError::NotMapping { found: "a list" }
        );
    }

    #[test]
    fn errors_about_the_text_in_block_style_name_input_lines() {
        let relined = |line: usize| line * 10;
        let e = TranslateError::Unsupported {
            path: "a".into(),
            line: 3,
            reason: "r".into(),
        };
        assert!(matches!(
            relined_error(e, relined),
            TranslateError::Unsupported { line: 30, .. }
        ));
        let conflict = Conflict {
            first: "a".into(),
            first_line: 1,
            second: "b".into(),
            second_line: Some(2),
            both_become: None,
        };
        let TranslateError::Conflicts(cs) =
            relined_error(TranslateError::Conflicts(vec![conflict]), relined)
        else {
            panic!("still conflicts")
        };
        assert_eq!((cs[0].first_line, cs[0].second_line), (10, Some(20)));
    }

    #[test]
    fn stage_1_gives_each_old_key_its_fate_in_line_order() {
        let src = "postgresql:\n  existingSecretPasswordKey: k\n  postgresqlPassword: pw\n  existingPasswordSecretKey: k\n  postgresqlDatabase: db\n  auth:\n    postgresPassword: pw\n";
        stage(src, |planner, input| {
            let found = find_old_keys(planner, input).unwrap();
            let fates: Vec<(&str, usize, Fate)> = found
                .iter()
                .map(|f| (f.rule.from, f.entry.line + 1, f.fate))
                .collect();
            assert_eq!(
                fates,
                [
                    ("postgresql.existingSecretPasswordKey", 2, Fate::Apply),
                    ("postgresql.postgresqlPassword", 3, Fate::Drop),
                    ("postgresql.existingPasswordSecretKey", 4, Fate::Duplicate),
                    ("postgresql.postgresqlDatabase", 5, Fate::Apply),
                ]
            );
        });
    }

    #[test]
    fn stage_2_renames_in_place_and_gathers_moved_keys_under_their_new_mapping() {
        let src = "postgresql:\n  postgresSSLMode: disable\n  postgresqlDatabase: db\n  auth:\n    username: u\n";
        stage(src, |planner, input| {
            let found = find_old_keys(planner, input).unwrap();
            let mut edit = no_edit(planner.doc);
            let moves = plan_moves(planner, &found, &mut edit).unwrap();
            let kinds: Vec<ChangeKind> = edit.changes.iter().map(|c| c.kind).collect();
            assert_eq!(kinds, [ChangeKind::Renamed, ChangeKind::Moved]);
            assert_eq!(moves.deleted, [vec!["postgresql", "postgresqlDatabase"]]);
            assert!(edit.splice.is_deleted(2) && !edit.splice.is_deleted(1));
            assert_eq!(
                moves.receiving.iter().collect::<Vec<_>>(),
                ["postgresql.auth"]
            );
            assert_eq!(
                vget(&edit.expected, &["postgresql", "auth", "database"]),
                Some(&Value::from("db"))
            );
            assert_eq!(
                vget(&edit.expected, &["postgresql", "postgresqlDatabase"]),
                None
            );
        });
    }

    #[test]
    fn the_deepest_existing_mapping_on_a_new_path_receives_the_key() {
        stage(
            "postgresql:\n  auth:\n    username: u\n  primary: {}\n",
            |planner, _| {
                let d = planner
                    .deepest_mapping(&["postgresql", "auth", "secretKeys"], "x")
                    .unwrap();
                assert_eq!(
                    (d.len, d.empty, d.entry.map(|e| e.line)),
                    (2, false, Some(1))
                );
                let d = planner
                    .deepest_mapping(&["postgresql", "primary", "persistence"], "x")
                    .unwrap();
                assert_eq!(
                    (d.len, d.empty, d.entry.map(|e| e.line)),
                    (2, true, Some(3))
                );
            },
        );
        stage("postgresql:\n  auth: secret\n", |planner, _| {
            let err = planner
                .deepest_mapping(&["postgresql", "auth"], "postgresql.auth.database")
                .err()
                .unwrap();
            assert!(
                matches!(&err, TranslateError::Unsupported { line: 2, reason, .. } if reason.contains("must become a mapping to hold postgresql.auth.database")),
                "{err}"
            );
        });
    }

    #[test]
    fn stage_3_removes_a_mapping_the_moves_emptied_but_not_one_receiving_keys() {
        let src = "postgresql:\n  service:\n    type: NodePort\n  enabled: true\n";
        stage(src, |planner, input| {
            let found = find_old_keys(planner, input).unwrap();
            let mut edit = no_edit(planner.doc);
            let moves = plan_moves(planner, &found, &mut edit).unwrap();
            assert!(!edit.splice.is_deleted(1) && edit.splice.is_deleted(2));
            remove_emptied_mappings(planner.doc, &moves, &mut edit);
            assert!(edit.splice.is_deleted(1), "postgresql.service goes");
            assert!(!edit.splice.is_deleted(0) && !edit.splice.is_deleted(3));
            assert_eq!(vget(&edit.expected, &["postgresql", "service"]), None);
        });
    }

    #[test]
    fn stage_4_renames_the_old_app_service_and_warns_about_other_backends() {
        let opts = Options {
            release: "prod".into(),
        };
        let src = "ingress:\n  hosts:\n    - paths:\n        - backend:\n            service:\n              name: prod-live-agent\n        - backend:\n            service:\n              name: elsewhere\n";
        let doc = Doc::parse(src).unwrap();
        let mut edit = no_edit(&doc);
        let input = edit.expected.clone();
        let warnings = rename_app_service(&doc, &input, &opts, &mut edit).unwrap();
        let renamed: Vec<String> = edit.changes.iter().map(Change::to_string).collect();
        assert_eq!(renamed.len(), 1, "{renamed:?}");
        assert_eq!(edit.changes[0].line, 6);
        assert_eq!(
            edit.changes[0].new_value.as_deref(),
            Some("prod-live-agent-app")
        );
        let warned: Vec<(&str, Option<usize>)> =
            warnings.iter().map(|w| (w.path.as_str(), w.line)).collect();
        assert_eq!(
            warned,
            [("ingress.hosts[0].paths[1].backend.service.name", Some(9))]
        );

        let doc = Doc::parse("a: 1\n").unwrap();
        let mut edit = no_edit(&doc);
        let input = edit.expected.clone();
        let warnings = rename_app_service(&doc, &input, &opts, &mut edit).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .message
                .contains("this release's app Service is prod-live-agent-app"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn stage_5_refuses_text_that_does_not_hold_the_planned_values() {
        let expected = values_as_written("a: 1\n").unwrap();
        let (doc, actual) = check_rendered("a: 1\n", &expected).unwrap();
        assert_eq!(actual, expected);
        assert_eq!(doc.entry(&["a"]).map(|e| e.line), Some(0));
        assert!(matches!(
            check_rendered("a: 2\n", &expected),
            Err(TranslateError::Verification(m)) if m.contains("does not hold the expected values")
        ));
        assert!(matches!(
            check_rendered("a: [1\n", &expected),
            Err(TranslateError::Verification(m)) if m.contains("not valid YAML")
        ));
    }

    #[test]
    fn stage_6_names_an_old_key_left_in_an_anchor_at_its_merge_key() {
        let src = "base: &pg\n  postgresqlDatabase: db\npostgresql:\n  <<: *pg\n";
        stage(src, |planner, input| {
            let found = find_old_keys(planner, input).unwrap();
            let warnings = anchor_warnings(&found, planner.doc);
            assert_eq!(warnings.len(), 1);
            assert_eq!(warnings[0].path, "postgresql.postgresqlDatabase");
            assert_eq!(warnings[0].line, Some(4));
            assert!(
                warnings[0].message.contains("anchor (input line 2)"),
                "{}",
                warnings[0]
            );
        });
    }

    #[test]
    fn keys_move_into_an_existing_mapping_with_its_indentation() {
        let src =
            "postgresql:\n    auth:\n        username: postgres\n    postgresqlDatabase: db\n";
        let t = run(src).unwrap();
        assert_eq!(
            t.yaml,
            "postgresql:\n    auth:\n        username: postgres\n        database: db\n"
        );
    }

    #[test]
    fn an_empty_target_mapping_is_filled_in_place() {
        let src = "postgresql:\n  auth: {}  # later\n  postgresqlDatabase: db\n";
        let t = run(src).unwrap();
        assert_eq!(t.yaml, "postgresql:\n  auth:  # later\n    database: db\n");
    }

    #[test]
    fn windows_line_breaks_are_kept() {
        let src = "postgresql:\r\n  postgresqlDatabase: db\r\n  postgresSSLMode: disable\r\n";
        let t = run(src).unwrap();
        assert_eq!(
            t.yaml,
            "postgresql:\r\n  auth:\r\n    database: db\r\n  SSLMode: disable\r\n"
        );
    }

    #[test]
    fn a_file_without_a_final_line_break_gets_one_only_where_text_was_added() {
        let t = run("postgresql:\n  postgresqlPort: 5433").unwrap();
        assert_eq!(t.yaml, "postgresql:\n  port: 5433");
        let t = run("redis:\n  master:\n    containerPort: 1").unwrap();
        assert_eq!(
            t.yaml,
            "redis:\n  master:\n    containerPorts:\n      redis: 1\n"
        );
    }

    #[test]
    fn a_flow_mapping_holding_keys_to_move_is_translated_in_block_style() {
        let src = "# mine\npostgresql: {postgresqlDatabase: db, postgresqlUsername: u}  # pg\nredis: {auth: {password: x}}\n";
        let t = run(src).unwrap();
        assert_eq!(
            t.yaml,
            "# mine\npostgresql:  # pg\n  auth:\n    database: db\n    username: u\nredis: {auth: {password: x}}\n"
        );
        let report: Vec<String> = t.changes.iter().map(Change::to_string).collect();
        assert_eq!(
            report,
            [
                "line 2: postgresql written in block style (it was a flow-style mapping {...})",
                "line 2: postgresql.postgresqlDatabase -> postgresql.auth.database",
                "line 2: postgresql.postgresqlUsername -> postgresql.auth.username",
            ]
        );
    }

    #[test]
    fn a_flow_target_mapping_is_written_in_block_style_to_receive_keys() {
        let src = "postgresql:\n  auth: {username: u}\n  postgresqlDatabase: db\n";
        let t = run(src).unwrap();
        assert_eq!(
            t.yaml,
            "postgresql:\n  auth:\n    username: u\n    database: db\n"
        );
        assert_eq!(t.changes[0].kind, ChangeKind::Restyled);
        assert_eq!(t.changes[0].from, "postgresql.auth");
        assert_eq!(t.changes[1].line, 3, "{:?}", t.changes);
    }

    #[test]
    fn a_key_merged_from_an_anchor_is_written_into_the_merging_mapping_and_the_anchor_stays() {
        let src = "base: &pg\n  # the name\n  postgresqlDatabase: db\npostgresql:\n  <<: *pg\n  enabled: true\nother:\n  <<: *pg\n";
        let t = run(src).unwrap();
        assert_eq!(
            t.yaml,
            "base: &pg\n  # the name\n  postgresqlDatabase: db\npostgresql:\n  <<: *pg\n  enabled: true\n  auth:\n    database: db\nother:\n  <<: *pg\n"
        );
        assert_eq!(t.changes.len(), 1, "{:?}", t.changes);
        let c = &t.changes[0];
        assert_eq!((c.kind, c.line), (ChangeKind::Copied, 5));
        assert_eq!(c.to, "postgresql.auth.database");
        let w = t
            .warnings
            .iter()
            .find(|w| w.path == "postgresql.postgresqlDatabase")
            .expect("a warning about the old key in the anchor");
        assert_eq!(w.line, Some(5));
        assert!(w.message.contains("anchor (input line 3)"), "{w}");
    }

    #[test]
    fn an_own_key_beside_a_merge_key_moves_as_usual() {
        let src = "base: &pg\n  enabled: true\npostgresql:\n  <<: *pg\n  postgresqlDatabase: db\n";
        let t = run(src).unwrap();
        assert_eq!(
            t.yaml,
            "base: &pg\n  enabled: true\npostgresql:\n  <<: *pg\n  auth:\n    database: db\n"
        );
        assert_eq!(t.changes[0].kind, ChangeKind::Moved);
    }

    #[test]
    fn a_key_merged_from_an_anchor_in_flow_style_is_translated() {
        let t = run("b: &b {postgresqlDatabase: db}\npostgresql:\n  <<: *b\n").unwrap();
        assert_eq!(
            t.yaml,
            "b: &b\n  postgresqlDatabase: db\npostgresql:\n  <<: *b\n  auth:\n    database: db\n"
        );
    }

    #[test]
    fn a_merge_that_would_be_hidden_is_refused_with_the_line() {
        let err = run(
            "b: &b\n  auth:\n    username: u\npostgresql:\n  <<: *b\n  postgresqlDatabase: db\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, TranslateError::Unsupported { line: 5, reason, .. } if reason.contains("merge is shallow")),
            "{err}"
        );
    }

    #[test]
    fn conflicts_inside_a_flow_mapping_name_input_lines() {
        let src =
            "a: 1\npostgresql: {\n  postgresqlPassword: one,\n  auth: {postgresPassword: two}\n}\n";
        let err = run(src).unwrap_err();
        assert_eq!(
            err.to_string(),
            "postgresql.postgresqlPassword (line 3) and postgresql.auth.postgresPassword (line 4) are both set, to different values"
        );
    }

    #[test]
    fn a_non_mapping_document_is_refused_and_null_is_empty() {
        assert_eq!(
            run("just a string\n").unwrap_err(),
            TranslateError::NotMapping { found: "a scalar" }
        );
        assert_eq!(run("null\n").unwrap().yaml, "null\n");
    }

    #[test]
    fn the_old_service_name_changes_only_when_it_was_this_releases_default() {
        let opts = Options {
            release: "prod".into(),
        };
        let t = translate("service:\n  name: prod-live-agent\n", &opts).unwrap();
        assert_eq!(t.yaml, "service:\n  name: prod-live-agent-app\n");
        let t = translate("service:\n  name: cognigy-live-agent\n", &opts).unwrap();
        assert_eq!(t.yaml, "service:\n  name: cognigy-live-agent\n");
    }

    #[test]
    fn conflicts_name_both_keys_and_lines_but_never_the_values() {
        let err = run("postgresql:\n  postgresqlPassword: one-secret\n  auth:\n    postgresPassword: other-secret\n")
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "postgresql.postgresqlPassword (line 2) and postgresql.auth.postgresPassword (line 4) are both set, to different values"
        );
    }

    #[test]
    fn a_custom_users_password_is_also_the_password_bitnami_12_gives_that_user() {
        let t = run("postgresql:\n  postgresqlUsername: chatwoot\n  # the app's\n  postgresqlPassword: app-pw\n  postgresqlPostgresPassword: admin-pw\n")
            .unwrap();
        assert_eq!(
            t.yaml,
            "postgresql:\n  auth:\n    username: chatwoot\n    # the app's\n    postgresPassword: app-pw\n    password: app-pw\n  postgresqlPostgresPassword: admin-pw\n"
        );
        let also: Vec<_> = t
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Also)
            .collect();
        assert_eq!(also.len(), 1, "{:?}", t.changes);
        assert_eq!(also[0].to, "postgresql.auth.password");
        assert!(
            t.warnings
                .iter()
                .any(|w| w.path == "postgresql.postgresqlPostgresPassword"),
            "{:?}",
            t.warnings
        );
        assert!(
            !t.warnings
                .iter()
                .any(|w| w.path == "postgresql.auth.username"),
            "the user has the app's password: {:?}",
            t.warnings
        );
    }

    #[test]
    fn two_spellings_of_the_secret_key_key_with_different_values_conflict() {
        let err = run("postgresql:\n  existingSecret: s\n  existingPasswordSecretKey: b\n  existingSecretPasswordKey: a\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "postgresql.existingSecretPasswordKey (line 4) and postgresql.existingPasswordSecretKey (line 3) both become postgresql.auth.secretKeys.adminPasswordKey, but are set to different values (chart 4.43 reads postgresql.existingSecretPasswordKey)"
        );
    }

    #[test]
    fn the_postgres_user_or_an_external_database_gets_no_second_password() {
        for src in [
            "postgresql:\n  postgresqlUsername: postgres\n  postgresqlPassword: pw\n",
            "postgresql:\n  postgresqlPassword: pw\n",
            "postgresql:\n  enabled: false\n  postgresqlUsername: app\n  postgresqlPassword: pw\n",
            "postgresql:\n  existingSecret: s\n  postgresqlUsername: app\n  postgresqlPassword: pw\n",
        ] {
            let t = run(src).unwrap();
            assert!(!t.yaml.contains("  password:"), "{src} -> {}", t.yaml);
        }
    }

    #[test]
    fn two_spellings_of_the_secret_key_key_with_one_value_are_one_change() {
        let t =
            run("postgresql:\n  existingPasswordSecretKey: pw\n  existingSecretPasswordKey: pw\n")
                .unwrap();
        assert_eq!(
            t.yaml,
            "postgresql:\n  auth:\n    secretKeys:\n      adminPasswordKey: pw\n"
        );
        assert_eq!(t.changes.len(), 1, "{:?}", t.changes);
        let c = &t.changes[0];
        assert_eq!(c.kind, ChangeKind::Moved);
        assert_eq!(c.from, "postgresql.existingSecretPasswordKey");
        assert_eq!(c.to, "postgresql.auth.secretKeys.adminPasswordKey");
        assert_eq!(c.line, 3);
        assert!(
            c.note.as_deref().unwrap_or_default().contains(
                "postgresql.existingPasswordSecretKey (line 2) held the same value and was removed"
            ),
            "{c}"
        );
    }

    #[test]
    fn everything_outside_the_changed_keys_is_byte_identical() {
        let src = "a: 'x'   # c\n\npostgresql:\n  enabled: true  # on\n  postgresqlUsername: u\n  z: [1, 2]\nb: |\n  text\n";
        let t = run(src).unwrap();
        assert_eq!(
            t.yaml,
            "a: 'x'   # c\n\npostgresql:\n  enabled: true  # on\n  auth:\n    username: u\n  z: [1, 2]\nb: |\n  text\n"
        );
    }
}
