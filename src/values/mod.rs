//! `4.44 values`: translation of a <= 4.43 live-agent values file to the 4.44 keys.
//!
//! The file stays the operator's file: the translation is a set of text splices on the
//! original (`splice`), planned from a span-annotated tree (`doc`) and the rule table
//! (`rules`); every byte outside the changed keys is kept. The result is parsed again and
//! checked against the expected values before it is returned. Pure: no I/O.

pub mod chart_keys;
pub mod doc;
mod flow;
pub mod rules;
mod splice;
mod translate;

use std::fmt;

use serde::Serialize;

pub use translate::translate;

/// What the translation needs besides the file.
#[derive(Debug, Clone)]
pub struct Options {
    /// The release name, for the chart's fullname rule (app Service name)
    pub release: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The key moved to another parent
    Moved,
    /// The key was renamed where it stands
    Renamed,
    /// The new key was set and the old key kept
    Copied,
    /// The old key was dropped: the new key already held the same value
    Removed,
    /// The new key was set from the old key as well (the old key's own change says where it
    /// went)
    Also,
    /// A value changed (the app Service name)
    Value,
    /// A flow-style mapping (`{...}`) holding keys to move was written in block style
    Restyled,
}

/// One change, for the report. `line` is the 1-based line in the input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub from: String,
    pub to: String,
    pub line: usize,
    /// For `value` changes: the old and new value (only names, never secrets)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ChangeKind::Value => write!(
                f,
                "line {}: {}: {} -> {}",
                self.line,
                self.from,
                self.old_value.as_deref().unwrap_or(""),
                self.new_value.as_deref().unwrap_or("")
            )?,
            ChangeKind::Removed => write!(
                f,
                "line {}: {} removed ({} already holds the same value)",
                self.line, self.from, self.to
            )?,
            ChangeKind::Copied => write!(
                f,
                "line {}: {} -> {} (old key kept)",
                self.line, self.from, self.to
            )?,
            ChangeKind::Also => write!(
                f,
                "line {}: {} -> {} as well",
                self.line, self.from, self.to
            )?,
            ChangeKind::Restyled => write!(
                f,
                "line {}: {} written in block style (it was a flow-style mapping {{...}})",
                self.line, self.from
            )?,
            ChangeKind::Moved | ChangeKind::Renamed => {
                write!(f, "line {}: {} -> {}", self.line, self.from, self.to)?
            }
        }
        if let Some(note) = &self.note {
            write!(f, " [{note}]")?;
        }
        Ok(())
    }
}

/// Something the operator must look at. `line` is the 1-based line in the translated file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The translated file and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Translation {
    pub yaml: String,
    pub changes: Vec<Change>,
    pub warnings: Vec<Warning>,
}

/// Two keys that hold different values for the same new key: an old key and its new key, or
/// two spellings of one old key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The old key (of two spellings, the one the old chart reads)
    pub first: String,
    pub first_line: usize,
    /// The new key, or the other spelling
    pub second: String,
    pub second_line: Option<usize>,
    /// For two spellings: the new key both become
    pub both_become: Option<String>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let second_at = self
            .second_line
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default();
        match &self.both_become {
            None => write!(
                f,
                "{} (line {}) and {}{} are both set, to different values",
                self.first, self.first_line, self.second, second_at
            ),
            Some(target) => write!(
                f,
                "{} (line {}) and {}{} both become {target}, but are set to different values \
                 (chart 4.43 reads {})",
                self.first, self.first_line, self.second, second_at, self.first
            ),
        }
    }
}

/// Why a file cannot be translated. Nothing is written in any of these cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranslateError {
    /// Not valid YAML
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid YAML, but the top level is not a mapping
    NotMapping { found: &'static str },
    /// Old and new keys both set, to different values
    Conflicts(Vec<Conflict>),
    /// A shape the text editor does not rewrite safely
    Unsupported {
        path: String,
        line: usize,
        reason: String,
    },
    /// The edited text did not parse back to the expected values
    Verification(String),
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranslateError::Parse {
                line,
                column,
                message,
            } => write!(f, "invalid YAML at line {line}, column {column}: {message}"),
            TranslateError::NotMapping { found } => write!(
                f,
                "the top level is {found}, not a mapping of values (key: value)"
            ),
            TranslateError::Conflicts(cs) => {
                let parts: Vec<String> = cs.iter().map(Conflict::to_string).collect();
                f.write_str(&parts.join("; "))
            }
            TranslateError::Unsupported { path, line, reason } => {
                write!(f, "cannot rewrite {path} (line {line}): {reason}")
            }
            TranslateError::Verification(m) => write!(f, "the translation failed its check: {m}"),
        }
    }
}

impl std::error::Error for TranslateError {}
