//! The value keys chart 4.44.0 reads, to warn about keys it would silently ignore (its
//! schema accepts unknown keys).
//!
//! The list is data extracted from the real chart (`live-agent-4.44.0.tgz`): every key of its
//! `values.yaml` and of its Bitnami subcharts' `values.yaml` (under `postgresql.` and
//! `redis.`), plus every `.Values.x.y` a template reads (some keys are only commented out in
//! `values.yaml`). A test extracts it again from the archive and compares.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_norway::Value;

/// The embedded list: one dotted path a line; `path.*` accepts anything below `path`.
pub const KEYS_4_44_0: &str = include_str!("chart_keys_4_44_0.txt");

/// The chart version the embedded list was extracted from.
pub const KEYS_CHART_VERSION: &str = "4.44.0";

#[derive(Debug, Default)]
pub struct KeySet {
    exact: BTreeSet<String>,
    open: BTreeSet<String>,
}

impl KeySet {
    pub fn parse(text: &str) -> KeySet {
        let mut set = KeySet::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.strip_suffix(".*") {
                Some(p) => set.open.insert(p.to_string()),
                None => set.exact.insert(line.to_string()),
            };
        }
        set
    }

    /// The list for chart 4.44.0.
    pub fn chart_4_44_0() -> &'static KeySet {
        static SET: OnceLock<KeySet> = OnceLock::new();
        SET.get_or_init(|| KeySet::parse(KEYS_4_44_0))
    }

    /// Whether anything below `path` is accepted.
    fn is_open(&self, path: &str) -> bool {
        let mut p = path;
        loop {
            if self.open.contains(p) {
                return true;
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return false,
            }
        }
    }

    pub fn knows(&self, path: &str) -> bool {
        self.exact.contains(path) || self.is_open(path)
    }

    /// The keys of `values` the chart does not read, outermost only (a whole unknown subtree
    /// is one entry).
    pub fn ignored(&self, values: &Value) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(values, "", &mut out);
        out
    }

    fn walk(&self, value: &Value, prefix: &str, out: &mut Vec<String>) {
        let Value::Mapping(map) = value else {
            return;
        };
        for (k, v) in map {
            let key = match k {
                Value::String(s) => s.clone(),
                other => serde_norway::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            let path = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            if self.is_open(&path) {
                continue;
            }
            if !self.exact.contains(&path) {
                out.push(path);
                continue;
            }
            self.walk(v, &path, out);
        }
    }
}

/// Values that hold Kubernetes objects the templates copy whole (`toYaml`).
const FREE_FORM: &[&str] = &[
    "resources",
    "annotations",
    "labels",
    "podLabels",
    "podAnnotations",
    "nodeSelector",
    "affinity",
    "securityContext",
    "podSecurityContext",
    "containerSecurityContext",
];

/// Builds the key list from a chart's files: `values.yaml` texts with the prefix they live
/// under (`""` for the parent, `postgresql`, `redis`) and template texts with the same prefix.
pub fn extract(values: &[(&str, &str)], templates: &[(&str, &str)]) -> Result<String, String> {
    let mut exact = BTreeSet::new();
    let mut open = BTreeSet::new();
    let join = |prefix: &str, key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    fn add_parents(path: &str, exact: &mut BTreeSet<String>) {
        let mut end = 0;
        while let Some(i) = path[end..].find('.') {
            exact.insert(path[..end + i].to_string());
            end += i + 1;
        }
    }
    fn walk(v: &Value, path: &str, exact: &mut BTreeSet<String>, open: &mut BTreeSet<String>) {
        let name = path.rsplit('.').next().unwrap_or(path);
        match v {
            // Kubernetes objects passed through `toYaml`: any key below is valid.
            Value::Mapping(_) if FREE_FORM.contains(&name) => {
                open.insert(path.to_string());
            }
            Value::Mapping(m) if !m.is_empty() => {
                if !path.is_empty() {
                    exact.insert(path.to_string());
                }
                for (k, child) in m {
                    if let Value::String(k) = k {
                        let p = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        walk(child, &p, exact, open);
                    }
                }
            }
            // A leaf, an empty map or a list: the chart takes whatever is put there.
            _ => {
                if !path.is_empty() {
                    open.insert(path.to_string());
                }
            }
        }
    }
    for (prefix, text) in values {
        let v: Value =
            serde_norway::from_str(text).map_err(|e| format!("values.yaml of {prefix:?}: {e}"))?;
        if !prefix.is_empty() {
            exact.insert(prefix.to_string());
        }
        walk(&v, prefix, &mut exact, &mut open);
    }
    for (prefix, text) in templates {
        let mut rest = *text;
        while let Some(i) = rest.find(".Values.") {
            rest = &rest[i + ".Values.".len()..];
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            let path = rest[..len].trim_end_matches('.');
            if path.is_empty() {
                continue;
            }
            let full = join(prefix, path);
            add_parents(&full, &mut exact);
            // Read by a template: its shape is the template's business.
            open.insert(full);
        }
    }
    // Globals are shared with every subchart.
    open.insert("global".to_string());
    // Anything below an open path is accepted anyway: leave it out.
    let covered = |p: &str| {
        open.iter().any(|o| {
            p.len() > o.len() && p.starts_with(o.as_str()) && p.as_bytes()[o.len()] == b'.'
        })
    };
    let mut out = String::new();
    for p in &exact {
        if !open.contains(p) && !covered(p) {
            out.push_str(p);
            out.push('\n');
        }
    }
    for p in &open {
        if !covered(p) {
            out.push_str(p);
            out.push_str(".*\n");
        }
    }
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    Ok(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_list_knows_the_new_keys_and_not_the_old_ones() {
        let k = KeySet::chart_4_44_0();
        for known in [
            "postgresql.auth.database",
            "postgresql.auth.postgresPassword",
            "postgresql.auth.secretKeys.adminPasswordKey",
            "postgresql.host",
            "postgresql.port",
            "postgresql.SSLMode",
            "postgresql.primary.persistence.size",
            "postgresql.primary.resources.limits.cpu",
            "redis.master.service.ports.redis",
            "migration.enabled",
            "configmap.ANY_ENV_VAR",
            "ingress.hosts",
        ] {
            assert!(k.knows(known), "{known} should be known");
        }
        for old in [
            "postgresql.postgresqlDatabase",
            "postgresql.postgresqlPassword",
            "postgresql.postgresSSLMode",
            "postgresql.persistence",
            "redis.master.service.port",
        ] {
            assert!(!k.knows(old), "{old} should be unknown to 4.44.0");
        }
    }

    #[test]
    fn ignored_reports_the_outermost_unknown_key() {
        let k = KeySet::parse("postgresql\npostgresql.auth\npostgresql.auth.database.*\n");
        let v: Value = serde_norway::from_str(
            "postgresql:\n  auth:\n    database: x\n  persistence:\n    size: 1Gi\n",
        )
        .unwrap();
        assert_eq!(k.ignored(&v), ["postgresql.persistence"]);
    }

    #[test]
    fn extraction_takes_values_leaves_and_template_reads() {
        let out = extract(
            &[("", "a:\n  b: 1\n  c: {}\n"), ("sub", "x: 1\n")],
            &[("", "{{ .Values.a.hidden.deep }} {{ .Values.top }}")],
        )
        .unwrap();
        assert_eq!(
            out,
            "a\na.b.*\na.c.*\na.hidden\na.hidden.deep.*\nglobal.*\nsub\nsub.x.*\ntop.*\n"
        );
    }
}
