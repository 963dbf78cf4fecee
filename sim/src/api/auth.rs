//! Bearer tokens and what each identity may do: RBAC-like rules with an optional namespace
//! restriction. Identities live in `<state>/identities.json`, re-read when it changes, so an
//! identity can be added while the server runs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    pub verbs: Vec<String>,
    #[serde(rename = "apiGroups")]
    pub api_groups: Vec<String>,
    /// Plural resource names, `pods/exec` for subresources, `*` for all
    pub resources: Vec<String>,
    #[serde(
        default,
        rename = "resourceNames",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
    /// Namespaces the rule applies in; empty or `*` means every namespace and cluster scope
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// User name as the API reports it (`system:serviceaccount:ns:name` style works too)
    pub name: String,
    pub token: String,
    pub rules: Vec<Rule>,
}

/// One authorization question, as a request or a SelfSubjectAccessReview asks it.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

fn matches(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

impl Rule {
    pub fn admin() -> Rule {
        Rule {
            verbs: vec!["*".into()],
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            resource_names: vec![],
            namespaces: vec![],
        }
    }

    pub fn allows(&self, a: &Attributes) -> bool {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        matches(&self.verbs, &a.verb)
            && matches(&self.api_groups, &a.group)
            && (matches(&self.resources, &resource)
                || (!a.subresource.is_empty()
                    && self
                        .resources
                        .iter()
                        .any(|r| *r == format!("*/{}", a.subresource))))
            && (self.resource_names.is_empty() || matches(&self.resource_names, &a.name))
            && (self.namespaces.is_empty()
                || matches(&self.namespaces, &a.namespace) && !a.namespace.is_empty())
    }
}

impl Identity {
    pub fn allows(&self, a: &Attributes) -> bool {
        self.rules.iter().any(|r| r.allows(a))
    }

    /// The 403 message the real authorizer gives.
    pub fn forbidden_message(&self, a: &Attributes, qualified_resource: &str) -> String {
        let subject = if a.name.is_empty() {
            qualified_resource.to_string()
        } else {
            format!("{qualified_resource} \"{}\"", a.name)
        };
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let scope = if a.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", a.namespace)
        };
        format!(
            "{subject} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            self.name, a.verb, a.group
        )
    }
}

pub struct Auth {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<Identity>)>,
}

pub fn identities_file(state_dir: &Path) -> PathBuf {
    state_dir.join("identities.json")
}

pub fn new_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the identities file (empty when missing).
pub fn load(state_dir: &Path) -> Result<Vec<Identity>, String> {
    let path = identities_file(state_dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the identities file, readable by the owner only (it holds tokens).
pub fn save(state_dir: &Path, ids: &[Identity]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = identities_file(state_dir);
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(ids).expect("identities serialise"))
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
}

impl Auth {
    pub fn new(state_dir: &Path) -> Auth {
        Auth {
            path: identities_file(state_dir),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// The identity a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != mtime || mtime.is_none() {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            if let Ok(ids) = load(dir) {
                *cache = (mtime, ids);
            }
        }
        cache.1.iter().find(|i| i.token == token).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Identity {
        Identity {
            name: "reader".into(),
            token: "t".into(),
            rules: vec![Rule {
                verbs: vec!["get".into(), "list".into()],
                api_groups: vec!["".into()],
                resources: vec!["pods".into(), "pods/log".into()],
                resource_names: vec![],
                namespaces: vec!["live-agent".into()],
            }],
        }
    }

    #[test]
    fn rules_match_verb_group_resource_and_namespace() {
        let id = reader();
        let a = |verb: &str, res: &str, sub: &str, ns: &str| Attributes {
            verb: verb.into(),
            resource: res.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            ..Default::default()
        };
        assert!(id.allows(&a("list", "pods", "", "live-agent")));
        assert!(id.allows(&a("get", "pods", "log", "live-agent")));
        assert!(!id.allows(&a("create", "pods", "exec", "live-agent")));
        assert!(!id.allows(&a("list", "pods", "", "default")));
        assert!(!id.allows(&a("list", "pods", "", "")));
        assert!(Rule::admin().allows(&a("delete", "persistentvolumes", "", "")));
    }

    #[test]
    fn forbidden_messages_read_like_the_real_authorizer() {
        let id = reader();
        let a = Attributes {
            verb: "delete".into(),
            resource: "secrets".into(),
            namespace: "live-agent".into(),
            name: "s".into(),
            ..Default::default()
        };
        assert_eq!(
            id.forbidden_message(&a, "secrets"),
            "secrets \"s\" is forbidden: User \"reader\" cannot delete resource \"secrets\" in API group \"\" in the namespace \"live-agent\""
        );
    }
}
