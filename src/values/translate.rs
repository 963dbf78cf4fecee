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
    let mut t = translate_block(&block, opts).map_err(|e| match e {
        TranslateError::Conflicts(cs) => TranslateError::Conflicts(
            cs.into_iter()
                .map(|c| Conflict {
                    first_line: relined(c.first_line),
                    second_line: c.second_line.map(relined),
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
    })?;
    for c in &mut t.changes {
        c.line = relined(c.line);
    }
    for (path, line) in &restyled.mappings {
        t.changes.push(Change {
            kind: ChangeKind::Restyled,
            from: path.clone(),
            to: path.clone(),
            line: line + 1,
            old_value: None,
            new_value: None,
            note: None,
        });
    }
    t.changes
        .sort_by_key(|c| (c.line, c.kind != ChangeKind::Restyled));
    Ok(t)
}

/// The translation of a file whose keys to move are all in block style.
fn translate_block(doc: &Doc, opts: &Options) -> Result<Translation, TranslateError> {
    let src = doc.src;
    let unchanged = || {
        // Nothing to translate: the file keeps the chart defaults, which can still matter.
        let mut warnings = Vec::new();
        advise(&Value::Null, None, &mut warnings);
        Translation {
            yaml: src.to_string(),
            changes: Vec::new(),
            warnings,
        }
    };
    let Some(root) = &doc.root else {
        return Ok(unchanged());
    };
    match &root.kind {
        Kind::Map(_) if root.flow => {
            return Err(TranslateError::Unsupported {
                path: "(top level)".into(),
                line: root.line + 1,
                reason: "the file is one flow-style mapping ({...}); write it in block style, then run again".into(),
            })
        }
        Kind::Map(_) => {}
        Kind::Scalar { .. } if root.is_empty_value() => return Ok(unchanged()),
        Kind::Scalar { .. } => return Err(TranslateError::NotMapping { found: "a scalar" }),
        Kind::Seq(_) => return Err(TranslateError::NotMapping { found: "a list" }),
        Kind::Alias(_) => return Err(TranslateError::NotMapping { found: "an alias" }),
    }
    // As written (merge keys as keys), for the check of the edited text; and as the chart
    // reads it (merge keys applied), for every decision.
    let raw: Value = serde_norway::from_str(src).map_err(|e| TranslateError::Parse {
        line: e.location().map(|l| l.line()).unwrap_or(1),
        column: e.location().map(|l| l.column()).unwrap_or(1),
        message: e.to_string(),
    })?;
    let input = merged(&raw);

    let planner = Planner {
        doc,
        root,
        step: doc.indent_step(),
        nl: newline_of(src),
    };

    // 1. Find the old keys and decide each one's fate.
    let mut found: Vec<Found> = Vec::new();
    let mut conflicts = Vec::new();
    let extra = custom_user_of_the_charts_database(&input).then_some(&CUSTOM_USER_PASSWORD);
    for rule in RULES.iter().chain(extra) {
        let from = rules::split(rule.from);
        let to = rules::split(rule.to);
        let Some((entry, merged)) = planner.locate(&from)? else {
            continue;
        };
        if rule.action == Action::Also && vget(&input, &to).is_some() {
            // Set already: left as it is (`advise` warns when it is not the app's password).
            continue;
        }
        let value = vget(&input, &from).cloned().unwrap_or(Value::Null);
        let fate = if let Some(existing) = vget(&input, &to) {
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

    // 2. Plan the splices.
    let mut splice = Splice::new(doc.lines.len());
    let mut expected = raw.clone();
    let mut changes = Vec::new();
    let mut deleted: Vec<Vec<&str>> = Vec::new();
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut receiving: HashSet<String> = HashSet::new();
    let mut converted: HashSet<usize> = HashSet::new();
    for f in &found {
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
        let note = (!note.is_empty()).then(|| note.join("; "));
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
            // The old key stays in its anchor (see the warning below).
            continue;
        }
        if f.fate == Fate::Duplicate {
            splice.delete(extent.0, extent.1);
            deleted.push(f.from.clone());
            vremove(&mut expected, &f.from);
            continue;
        }
        if f.fate == Fate::Drop {
            if f.rule.action == Action::Move {
                splice.delete(extent.0, extent.1);
                deleted.push(f.from.clone());
                vremove(&mut expected, &f.from);
                changes.push(change(ChangeKind::Removed));
            }
            continue;
        }
        let (to_key, to_parent) = f.to.split_last().expect("non-empty path");
        let (_, from_parent) = f.from.split_last().expect("non-empty path");
        // A key merged from an anchor is copied into the mapping that merges it.
        let action = match f.merged {
            Some(_) if f.rule.action == Action::Move => Action::Copy,
            _ => f.rule.action,
        };
        if action == Action::Move {
            vremove(&mut expected, &f.from);
        }
        vset(&mut expected, &f.to, f.value.clone());
        if from_parent == to_parent && action == Action::Move {
            splice.replace(f.entry.key_start, f.entry.key_end, to_key.to_string());
            changes.push(change(ChangeKind::Renamed));
            continue;
        }
        if action == Action::Move {
            splice.delete(extent.0, extent.1);
            deleted.push(f.from.clone());
        }
        changes.push(match f.merged {
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

        // The deepest mapping on the new path that exists in the file.
        let mut node = root;
        let mut a_len = 0;
        let mut a_entry: Option<&Entry> = None;
        let mut a_empty = false;
        for (i, seg) in to_parent.iter().enumerate() {
            let Some(e) = node.get(seg) else {
                if let Some(m) = doc.merged_entry(node, seg) {
                    return Err(planner.unsupported(
                        &to_parent[..=i],
                        m.merge.line,
                        &format!(
                            "{} comes through this merge key (<<) and must hold {}; a merge is shallow, so writing it here would hide the rest of it; write that mapping out in place of the merge key, then run again",
                            to_parent[..=i].join("."),
                            f.rule.to
                        ),
                    ));
                }
                break;
            };
            if e.value.is_empty_value() {
                a_len = i + 1;
                a_entry = Some(e);
                a_empty = true;
                break;
            }
            match &e.value.kind {
                Kind::Map(_) if !e.value.flow => {
                    if !doc.starts_line(e) {
                        return Err(planner.unsupported(
                            &to_parent[..=i],
                            e.line,
                            "the key does not start its line",
                        ));
                    }
                    node = &e.value;
                    a_len = i + 1;
                    a_entry = Some(e);
                }
                _ => {
                    return Err(planner.unsupported(
                        &to_parent[..=i],
                        e.line,
                        &format!(
                            "{} must become a mapping to hold {}, but it holds another value or a flow-style mapping",
                            to_parent[..=i].join("."),
                            f.rule.to
                        ),
                    ))
                }
            }
        }
        let a_path = &to_parent[..a_len];
        let chain = &to_parent[a_len..];
        let (anchor, indent) = match a_entry {
            None => (doc.lines.len(), 0),
            Some(e) if a_empty => {
                if converted.insert(e.key_start) {
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
                let children = node.entries().unwrap_or_default();
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
        let anchor = if a_entry.is_none() && !chain.is_empty() && from_parent.is_empty() {
            extent.0
        } else {
            anchor
        };
        receiving.insert(a_path.join("."));
        let key = (
            a_path.join("."),
            chain.first().map(|s| s.to_string()).unwrap_or_default(),
        );
        let group = groups.entry(key).or_insert_with(|| Group {
            anchor,
            indent,
            tree: NewMap::default(),
        });
        group.anchor = group.anchor.min(anchor);
        // A copy leaves the comments with the key that stays.
        group
            .tree
            .put(chain, to_key, f.entry, action == Action::Move);
    }

    // 3. Mappings emptied by the moves go too, unless something moves into them.
    let mut parents: Vec<Vec<&str>> = deleted
        .iter()
        .filter(|p| p.len() > 1)
        .map(|p| p[..p.len() - 1].to_vec())
        .collect();
    while let Some(parent) = parents.pop() {
        let joined = parent.join(".");
        if receiving
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
            || !children.iter().all(|c| splice.is_deleted(c.line))
        {
            continue;
        }
        let (first, last) = doc.extent(entry);
        if (first..=last).all(|l| splice.is_deleted(l)) {
            continue;
        }
        splice.delete(first, last);
        vremove(&mut expected, &parent);
        if parent.len() > 1 {
            parents.push(parent[..parent.len() - 1].to_vec());
        }
    }

    let mut ordered: Vec<&Group> = groups.values().collect();
    ordered.sort_by_key(|g| g.anchor);
    for g in ordered {
        let mut text = String::new();
        planner.render_map(&g.tree, g.indent, &mut text);
        splice.insert(g.anchor, text);
    }

    // 4. The app Service name, where it held the old default.
    let mut warnings = Vec::new();
    let names = NameInputs::from_values(&input);
    let old_app = ObjectNames::new(&opts.release, &names, Generation::Pg11).app_service;
    let new_app = ObjectNames::new(&opts.release, &names, Generation::Pg15).app_service;
    let mut rename = |node: &Node,
                      segs: Vec<Seg>,
                      shown: String,
                      splice: &mut Splice|
     -> Result<bool, TranslateError> {
        let Kind::Scalar { value, style } = &node.kind else {
            return Ok(false);
        };
        if *value != old_app {
            return Ok(false);
        }
        let text = scalar_text(&new_app, *style).ok_or_else(|| TranslateError::Unsupported {
            path: shown.clone(),
            line: node.line + 1,
            reason: "the name is a block scalar; write it on one line".into(),
        })?;
        splice.replace(node.start, node.end, text);
        vset_segs(&mut expected, &segs, Value::String(new_app.clone()));
        changes.push(Change {
            kind: ChangeKind::Value,
            from: shown.clone(),
            to: shown,
            line: node.line + 1,
            old_value: Some(old_app.clone()),
            new_value: Some(new_app.clone()),
            note: Some("the app Service is <fullname>-app from 4.44 on".into()),
        });
        Ok(true)
    };
    if let Some(e) = doc.entry(&["service", "name"]) {
        rename(
            &e.value,
            vec![Seg::Key("service".into()), Seg::Key("name".into())],
            "service.name".into(),
            &mut splice,
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
                    if !rename(&name.value, segs, shown.clone(), &mut splice)? {
                        if let Kind::Scalar { value, .. } = &name.value.kind {
                            if *value != new_app {
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
    let ingress_enabled = vget(&input, &["ingress", "enabled"])
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

    // 5. Render and check that the text means what the plan says.
    let yaml = splice.render(doc).map_err(TranslateError::Verification)?;
    let out_doc = Doc::parse(&yaml).map_err(|e| {
        TranslateError::Verification(format!(
            "the result is not valid YAML (line {}: {})",
            e.line, e.message
        ))
    })?;
    let actual: Value = serde_norway::from_str(&yaml)
        .map_err(|e| TranslateError::Verification(format!("the result does not parse: {e}")))?;
    if actual != expected {
        return Err(TranslateError::Verification(
            "the edited text does not hold the expected values (anchors or aliases inside moved keys?); translate this file by hand".into(),
        ));
    }

    // 6. Warnings: old keys left in anchors, keys 4.44.0 will not read, and settings that
    // need a person.
    for f in found.iter().filter(|f| f.merged.is_some()) {
        let (_, parent) = f.from.split_last().expect("non-empty path");
        let merge_key: Vec<&str> = parent.iter().copied().chain(["<<"]).collect();
        warnings.push(Warning {
            path: f.rule.from.to_string(),
            line: out_doc.entry(&merge_key).map(|e| e.line + 1),
            message: format!(
                "{} comes through this merge key (<<) from an anchor (input line {}), which is left as it is, as other mappings may merge it: chart {KEYS_CHART_VERSION} ignores the old key ({} holds its value); remove it from the anchor when nothing else uses it",
                f.rule.from,
                f.entry.line + 1,
                f.rule.to,
            ),
        });
    }
    advise(&merged(&actual), Some(&out_doc), &mut warnings);
    warnings.sort_by_key(|w| w.line.unwrap_or(0));
    changes.sort_by_key(|c| c.line);
    Ok(Translation {
        yaml,
        changes,
        warnings,
    })
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
