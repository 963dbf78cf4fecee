//! Cluster DNS as hosts files: one per namespace, mapping every Service name form to a pod
//! address behind it (ClusterIP Services: the first ready endpoint; headless: every endpoint,
//! plus `<pod>.<svc>` names for StatefulSet pods). Rewritten in place so pods see updates.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use super::services::subsets;
use super::snapshot::Snapshot;
use crate::runtime::hosts_file;
use crate::store::meta;

fn names(svc: &str, ns: &str) -> Vec<String> {
    vec![
        svc.to_string(),
        format!("{svc}.{ns}"),
        format!("{svc}.{ns}.svc"),
        format!("{svc}.{ns}.svc.cluster.local"),
    ]
}

/// The hosts file content for every namespace (namespace -> content).
pub fn hosts(s: &Snapshot) -> BTreeMap<String, String> {
    let mut lines: Vec<(String, String)> = Vec::new();
    for svc in s.all("", "services") {
        let (ns, name) = (meta::namespace(svc), meta::name(svc));
        let headless = svc.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
        for subset in subsets(s, svc) {
            let addrs: Vec<&Value> = subset["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(subset["notReadyAddresses"].as_array().into_iter().flatten())
                .collect();
            for (i, a) in addrs.iter().enumerate() {
                let ip = a["ip"].as_str().unwrap_or_default();
                if i == 0 || headless {
                    for n in names(name, ns) {
                        lines.push((ns.to_string(), format!("{ip}\t{n}")));
                    }
                }
                if let Some(h) = a["hostname"].as_str() {
                    for n in names(&format!("{h}.{name}"), ns) {
                        lines.push((ns.to_string(), format!("{ip}\t{n}")));
                    }
                }
            }
        }
    }
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for n in s.all("", "namespaces") {
        out.insert(
            meta::name(n).to_string(),
            "127.0.0.1\tlocalhost\n::1\tlocalhost\n".into(),
        );
    }
    for (ns, line) in lines {
        let e = out
            .entry(ns)
            .or_insert_with(|| "127.0.0.1\tlocalhost\n::1\tlocalhost\n".into());
        e.push_str(&line);
        e.push('\n');
    }
    // Services of other namespaces resolve by their qualified names too.
    let all: Vec<(String, String)> = out.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (ns, content) in out.iter_mut() {
        for (other, c) in &all {
            if other == ns {
                continue;
            }
            for l in c.lines().skip(2) {
                let host = l.split('\t').nth(1).unwrap_or_default();
                if host.contains('.') {
                    content.push_str(l);
                    content.push('\n');
                }
            }
        }
    }
    out
}

pub fn write_hosts_files(s: &Snapshot, state_dir: &Path) {
    for (ns, content) in hosts(s) {
        let path = hosts_file(state_dir, &ns);
        if std::fs::read_to_string(&path).is_ok_and(|c| c == content) {
            continue;
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Truncate and rewrite the same inode: pods bind-mount this file.
        let r = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(content.as_bytes()));
        if let Err(e) = r {
            tracing::warn!("writing {}: {e}", path.display());
        }
    }
}
