//! The API permissions a migration needs, derived from what it does: the plugin's own calls,
//! and helm's: uninstalling every kind of object in the old release's manifest, installing
//! and upgrading every kind the target chart renders, and helm's release records (Secrets).
//! Pure: preflight asks the cluster about each one (SelfSubjectAccessReview).

/// One permission: verb, API group (empty for core), resource, namespaced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub verb: &'static str,
    pub group: String,
    pub resource: String,
    pub namespaced: bool,
}

/// What the plugin itself calls (kube ops of every phase, cleanup included).
const OWN: &[(&str, &str, &str, bool)] = &[
    ("get", "apps", "deployments", true),
    ("patch", "apps", "deployments", true),
    ("list", "", "pods", true),
    ("get", "", "pods", true),
    ("create", "", "pods", true),
    ("delete", "", "pods", true),
    ("create", "", "pods/exec", true),
    ("get", "", "persistentvolumeclaims", true),
    ("create", "", "persistentvolumeclaims", true),
    ("delete", "", "persistentvolumeclaims", true),
    ("get", "", "persistentvolumes", false),
    ("list", "", "persistentvolumes", false),
    ("list", "", "persistentvolumeclaims", true),
    // PostgreSQL 15's Service beside the old one: created by prepare, deleted at the cut-over
    // and by cleanup.
    ("get", "", "services", true),
    ("create", "", "services", true),
    ("delete", "", "services", true),
    ("patch", "", "persistentvolumes", false),
    ("delete", "", "persistentvolumes", false),
    ("get", "", "secrets", true),
    ("create", "", "secrets", true),
    ("update", "", "secrets", true),
    ("delete", "", "secrets", true),
    ("get", "", "configmaps", true),
    ("create", "", "configmaps", true),
    ("update", "", "configmaps", true),
    ("list", "storage.k8s.io", "storageclasses", false),
    ("list", "", "resourcequotas", true),
];

/// Helm keeps each release revision in a Secret of the release's namespace.
const HELM_STORAGE: &[&str] = &["get", "list", "create", "update", "delete"];

/// A kind of a manifest: `apiVersion` and `kind`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kind {
    pub api_version: String,
    pub kind: String,
}

/// The kinds in rendered manifests (top-level `apiVersion:`/`kind:` of each document).
pub fn kinds_in(manifests: &str) -> Vec<Kind> {
    let mut out = Vec::new();
    for doc in manifests.split("\n---") {
        let top = |key: &str| {
            doc.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
                .filter(|v| !v.is_empty())
        };
        if let (Some(api_version), Some(kind)) = (top("apiVersion:"), top("kind:")) {
            let k = Kind { api_version, kind };
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out.sort();
    out
}

/// The API group, resource and scope of a kind: the kinds Kubernetes ships by their real
/// names, any other by the usual lowercase plural.
fn resource_of(kind: &Kind) -> (String, String, bool) {
    let group = kind
        .api_version
        .rsplit_once('/')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    let cluster_scoped = matches!(
        kind.kind.as_str(),
        "StorageClass"
            | "PersistentVolume"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "Namespace"
            | "CustomResourceDefinition"
            | "PriorityClass"
            | "IngressClass"
    );
    let lower = kind.kind.to_ascii_lowercase();
    let resource = match lower.as_str() {
        "ingress" => "ingresses".to_string(),
        "networkpolicy" => "networkpolicies".to_string(),
        "priorityclass" | "ingressclass" | "storageclass" => format!("{lower}es"),
        "endpoints" => lower,
        l if l.ends_with('y') => format!("{}ies", &l[..l.len() - 1]),
        l if l.ends_with('s') => format!("{l}es"),
        _ => format!("{lower}s"),
    };
    (group, resource, !cluster_scoped)
}

/// Every permission the migration needs: the plugin's own, deleting what the old release
/// holds (`old`), creating and patching what the target chart renders (`new`, hooks
/// included), and helm's release records.
pub fn required(old: &[Kind], new: &[Kind]) -> Vec<Permission> {
    let mut out: Vec<Permission> = OWN
        .iter()
        .map(|(verb, group, resource, namespaced)| Permission {
            verb,
            group: group.to_string(),
            resource: resource.to_string(),
            namespaced: *namespaced,
        })
        .collect();
    out.extend(HELM_STORAGE.iter().map(|verb| Permission {
        verb,
        group: String::new(),
        resource: "secrets".to_string(),
        namespaced: true,
    }));
    let with = |verbs: &'static [&'static str], kinds: &[Kind], out: &mut Vec<Permission>| {
        for kind in kinds {
            let (group, resource, namespaced) = resource_of(kind);
            for verb in verbs {
                out.push(Permission {
                    verb,
                    group: group.clone(),
                    resource: resource.clone(),
                    namespaced,
                });
            }
        }
    };
    // `helm uninstall --wait` deletes and watches; install and upgrade create, read and
    // patch (helm 3's three-way merge, helm 4's server-side apply), and delete hooks.
    with(&["get", "delete"], old, &mut out);
    with(&["get", "create", "patch", "delete"], new, &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(api_version: &str, kind: &str) -> Kind {
        Kind {
            api_version: api_version.into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn kinds_are_read_from_each_documents_top_level() {
        let m = "---\n# Source: x\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: a\nspec:\n  template:\n    kind: nested\n---\napiVersion: v1\nkind: Service\n---\napiVersion: apps/v1\nkind: StatefulSet\n";
        assert_eq!(
            kinds_in(m),
            [kind("apps/v1", "StatefulSet"), kind("v1", "Service")]
        );
    }

    #[test]
    fn kinds_map_to_their_resources_and_scope() {
        for (api, k, group, resource, namespaced) in [
            (
                "networking.k8s.io/v1",
                "Ingress",
                "networking.k8s.io",
                "ingresses",
                true,
            ),
            ("v1", "ServiceAccount", "", "serviceaccounts", true),
            (
                "storage.k8s.io/v1",
                "StorageClass",
                "storage.k8s.io",
                "storageclasses",
                false,
            ),
            (
                "policy/v1",
                "PodDisruptionBudget",
                "policy",
                "poddisruptionbudgets",
                true,
            ),
            (
                "networking.k8s.io/v1",
                "NetworkPolicy",
                "networking.k8s.io",
                "networkpolicies",
                true,
            ),
            ("batch/v1", "Job", "batch", "jobs", true),
            (
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "rbac.authorization.k8s.io",
                "clusterroles",
                false,
            ),
            ("v1", "Endpoints", "", "endpoints", true),
        ] {
            assert_eq!(
                resource_of(&kind(api, k)),
                (group.to_string(), resource.to_string(), namespaced),
                "{k}"
            );
        }
    }

    #[test]
    fn helm_needs_to_delete_the_old_kinds_and_create_and_patch_the_new() {
        let needed = required(
            &[kind("apps/v1", "StatefulSet")],
            &[kind("batch/v1", "Job")],
        );
        let has = |verb: &str, resource: &str| {
            needed
                .iter()
                .any(|p| p.verb == verb && p.resource == resource)
        };
        assert!(has("delete", "statefulsets"));
        assert!(!has("create", "statefulsets"));
        assert!(has("create", "jobs") && has("patch", "jobs") && has("delete", "jobs"));
        assert!(has("update", "secrets") && has("list", "secrets"));
        assert!(has("create", "pods/exec") && has("patch", "persistentvolumes"));
        let mut sorted = needed.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), needed.len(), "no permission twice");
    }

    #[test]
    fn the_plugins_own_steps_need_their_permissions_whatever_the_charts_hold() {
        // No kind from either chart: only what the plugin itself does.
        let needed = required(&[], &[]);
        let has = |verb: &str, resource: &str| {
            needed
                .iter()
                .any(|p| p.verb == verb && p.resource == resource && p.group.is_empty())
        };
        for (verb, resource) in [
            // PostgreSQL 15 beside PostgreSQL 11: its claim, Service and pod; the copy pod.
            ("create", "persistentvolumeclaims"),
            ("delete", "persistentvolumeclaims"),
            ("get", "services"),
            ("create", "services"),
            ("delete", "services"),
            ("create", "pods"),
            ("delete", "pods"),
            ("create", "pods/exec"),
            // The staged passwords and the database Secret of the new release.
            ("create", "secrets"),
            ("update", "secrets"),
            ("delete", "secrets"),
            // The volumes retained and reserved for the new release's claims.
            ("patch", "persistentvolumes"),
        ] {
            assert!(has(verb, resource), "{verb} {resource} missing");
        }
    }
}
