//! ResourceQuota: what pods and claims count against a quota (the quota controller's
//! `status.used`), and admission of a new pod or claim (`failed quota: ...: must specify ...`,
//! `exceeded quota: ...`), with the real evaluator's rules and wording. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::quantity::Milli;

pub type Usage = BTreeMap<String, Milli>;

/// Compute resources a quota makes every container declare (the pod evaluator's
/// validation set).
const REQUIRED_WHEN_TRACKED: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// A quota's hard limits (`spec.hard`; the controller copies them to `status.hard`).
pub fn hard(quota: &Value) -> Usage {
    quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Milli::parse(&quantity_text(v))?)))
        .collect()
}

fn quantity_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn resource_list(v: &Value) -> BTreeMap<String, Milli> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), Milli::parse(&quantity_text(q))?)))
        .collect()
}

/// `requests.cpu`, `cpu`, `limits.cpu`, ... for one set of requests and limits.
fn compute_usage(requests: &BTreeMap<String, Milli>, limits: &BTreeMap<String, Milli>) -> Usage {
    let mut out = Usage::new();
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.to_string(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    out
}

fn container_resources(c: &Value) -> (BTreeMap<String, Milli>, BTreeMap<String, Milli>) {
    (
        resource_list(&c["resources"]["requests"]),
        resource_list(&c["resources"]["limits"]),
    )
}

/// Whether a pod still counts: not Succeeded or Failed.
pub fn pod_counts(pod: &Value) -> bool {
    !matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// What one pod uses: the sum over its containers, or the largest init container where that
/// is more (init containers run one at a time, before the others).
pub fn pod_usage(pod: &Value) -> Usage {
    let spec = &pod["spec"];
    let sum = |list: &str| {
        let mut req = BTreeMap::<String, Milli>::new();
        let mut lim = BTreeMap::<String, Milli>::new();
        for c in spec[list].as_array().into_iter().flatten() {
            let (r, l) = container_resources(c);
            for (k, v) in r {
                let e = req.entry(k).or_default();
                *e = *e + v;
            }
            for (k, v) in l {
                let e = lim.entry(k).or_default();
                *e = *e + v;
            }
        }
        (req, lim)
    };
    let (mut req, mut lim) = sum("containers");
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let (r, l) = container_resources(c);
        for (k, v) in r {
            let e = req.entry(k).or_default();
            *e = (*e).max(v);
        }
        for (k, v) in l {
            let e = lim.entry(k).or_default();
            *e = (*e).max(v);
        }
    }
    let mut out = compute_usage(&req, &lim);
    out.insert("pods".into(), Milli(1000));
    out.insert("count/pods".into(), Milli(1000));
    out
}

/// What one claim uses: its storage request, in total and for its class.
pub fn claim_usage(claim: &Value) -> Usage {
    let mut out = Usage::new();
    out.insert("persistentvolumeclaims".into(), Milli(1000));
    out.insert("count/persistentvolumeclaims".into(), Milli(1000));
    let class = claim
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !class.is_empty() {
        out.insert(
            format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
            Milli(1000),
        );
    }
    if let Some(q) = claim
        .pointer("/spec/resources/requests/storage")
        .map(quantity_text)
        .and_then(|t| Milli::parse(&t))
    {
        out.insert("requests.storage".into(), q);
        if !class.is_empty() {
            out.insert(
                format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                q,
            );
        }
    }
    out
}

/// A namespace's usage of every resource a quota tracks (zero for those nothing uses), as
/// the quota controller writes it into `status.used`.
pub fn used(hard: &Usage, pods: &[&Value], claims: &[&Value]) -> Usage {
    let mut out: Usage = hard.keys().map(|k| (k.clone(), Milli(0))).collect();
    let usages = pods
        .iter()
        .filter(|p| pod_counts(p))
        .map(|p| pod_usage(p))
        .chain(claims.iter().map(|c| claim_usage(c)));
    for u in usages {
        for (k, v) in u {
            if let Some(total) = out.get_mut(&k) {
                *total = *total + v;
            }
        }
    }
    out
}

/// Renders `k=v,k=v` (sorted), as the admission error lists resources.
fn pretty(u: &Usage) -> String {
    u.iter()
        .map(|(k, v)| format!("{k}={}", v.render()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Containers that miss a resource a quota tracks: `must specify limits.cpu for: a,b; ...`.
fn constraints(hard: &Usage, pod: &Value) -> Option<String> {
    let required: BTreeSet<&str> = REQUIRED_WHEN_TRACKED
        .iter()
        .copied()
        .filter(|r| hard.contains_key(*r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for list in ["containers", "initContainers"] {
        for c in pod["spec"][list].as_array().into_iter().flatten() {
            let (r, l) = container_resources(c);
            let has = compute_usage(&r, &l);
            for req in &required {
                if !has.contains_key(*req) {
                    missing
                        .entry(req)
                        .or_default()
                        .insert(c["name"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// The object being created, for [`admit`].
pub enum New<'a> {
    Pod(&'a Value),
    Claim(&'a Value),
}

/// Admission of a new pod or claim under the namespace's quotas: `Err(cause)` with the real
/// message when a quota requires a resource the pod does not declare, or when the new usage
/// would pass a quota's hard limit.
pub fn admit(
    quotas: &[&Value],
    pods: &[&Value],
    claims: &[&Value],
    new: New,
) -> Result<(), String> {
    let mut quotas: Vec<&Value> = quotas.to_vec();
    quotas.sort_by_key(|q| {
        q.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    });
    let name_of = |q: &Value| {
        q.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if let New::Pod(pod) = new {
        for q in &quotas {
            if let Some(e) = constraints(&hard(q), pod) {
                return Err(format!("failed quota: {}: {e}", name_of(q)));
            }
        }
    }
    let usage = match new {
        New::Pod(pod) if !pod_counts(pod) => return Ok(()),
        New::Pod(pod) => pod_usage(pod),
        New::Claim(claim) => claim_usage(claim),
    };
    for q in &quotas {
        let hard = hard(q);
        let requested: Usage = usage
            .iter()
            .filter(|(k, v)| hard.contains_key(*k) && v.0 != 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if requested.is_empty() {
            continue;
        }
        let used = used(&hard, pods, claims);
        let exceeded: BTreeSet<&String> = requested
            .iter()
            .filter(|(k, v)| used[*k] + **v > hard[*k])
            .map(|(k, _)| k)
            .collect();
        if exceeded.is_empty() {
            continue;
        }
        let mask = |u: &Usage| -> Usage {
            u.iter()
                .filter(|(k, _)| exceeded.contains(k))
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        return Err(format!(
            "exceeded quota: {}, requested: {}, used: {}, limited: {}",
            name_of(q),
            pretty(&mask(&requested)),
            pretty(&mask(&used)),
            pretty(&mask(&hard))
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    const COMPUTE: &str = "
metadata: {name: compute}
spec:
  hard: {requests.cpu: '1', requests.memory: 1Gi, limits.cpu: '2', limits.memory: 2Gi}
";

    fn pod(cpu: &str, memory: &str) -> Value {
        yaml(&format!(
            "
metadata: {{name: p}}
spec:
  containers:
  - name: c
    image: x
    resources:
      requests: {{cpu: {cpu}, memory: {memory}}}
      limits: {{cpu: {cpu}, memory: {memory}}}
"
        ))
    }

    #[test]
    fn a_compute_quota_requires_requests_and_limits_of_every_container() {
        let q = yaml(COMPUTE);
        let bare = yaml(
            "
metadata: {name: p}
spec:
  initContainers: [{name: init, image: x, resources: {requests: {cpu: 100m}}}]
  containers: [{name: b, image: x}, {name: a, image: x, resources: {limits: {memory: 1Gi}}}]
",
        );
        assert_eq!(
            admit(&[&q], &[], &[], New::Pod(&bare)).unwrap_err(),
            "failed quota: compute: must specify limits.cpu for: a,b,init; limits.memory for: b,init; \
             requests.cpu for: a,b; requests.memory for: a,b,init"
        );
        assert_eq!(
            admit(&[&q], &[], &[], New::Pod(&pod("500m", "512Mi"))),
            Ok(())
        );
    }

    #[test]
    fn a_pod_past_the_hard_limit_is_refused_naming_what_it_asked_and_what_is_used() {
        let q = yaml(COMPUTE);
        let running = pod("500m", "768Mi");
        let done = {
            let mut p = pod("1", "1Gi");
            p["status"] = serde_json::json!({"phase": "Succeeded"});
            p
        };
        assert_eq!(
            admit(&[&q], &[&running, &done], &[], New::Pod(&pod("600m", "256Mi"))).unwrap_err(),
            "exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"
        );
        assert_eq!(
            admit(
                &[&q],
                &[&running, &done],
                &[],
                New::Pod(&pod("500m", "256Mi"))
            ),
            Ok(())
        );
        let used = used(&hard(&q), &[&running, &done], &[]);
        assert_eq!(
            pretty(&used),
            "limits.cpu=500m,limits.memory=768Mi,requests.cpu=500m,requests.memory=768Mi"
        );
    }

    #[test]
    fn init_containers_count_when_larger_than_the_containers_together() {
        let p = yaml(
            "
metadata: {name: p}
spec:
  initContainers: [{name: i, resources: {requests: {cpu: '2'}}}]
  containers:
  - {name: a, resources: {requests: {cpu: 500m, memory: 1Gi}}}
  - {name: b, resources: {requests: {cpu: 500m, memory: 1Gi}}}
",
        );
        let u = pod_usage(&p);
        assert_eq!(u["requests.cpu"].render(), "2");
        assert_eq!(u["cpu"].render(), "2");
        assert_eq!(u["requests.memory"].render(), "2Gi");
        assert!(!u.contains_key("limits.cpu"));
    }

    #[test]
    fn claims_count_against_storage_quotas_overall_and_per_class() {
        let q = yaml("metadata: {name: storage}\nspec: {hard: {requests.storage: 10Gi, fast.storageclass.storage.k8s.io/requests.storage: 1Gi}}");
        let claim = |size: &str, class: &str| {
            yaml(&format!("metadata: {{name: c}}\nspec: {{storageClassName: {class}, resources: {{requests: {{storage: {size}}}}}}}"))
        };
        let existing = claim("8Gi", "standard");
        assert_eq!(
            admit(&[&q], &[], &[&existing], New::Claim(&claim("4Gi", "standard"))).unwrap_err(),
            "exceeded quota: storage, requested: requests.storage=4Gi, used: requests.storage=8Gi, limited: requests.storage=10Gi"
        );
        assert_eq!(
            admit(&[&q], &[], &[&existing], New::Claim(&claim("2Gi", "fast"))).unwrap_err(),
            "exceeded quota: storage, requested: fast.storageclass.storage.k8s.io/requests.storage=2Gi, \
             used: fast.storageclass.storage.k8s.io/requests.storage=0, limited: fast.storageclass.storage.k8s.io/requests.storage=1Gi"
        );
        assert_eq!(
            admit(
                &[&q],
                &[],
                &[&existing],
                New::Claim(&claim("2Gi", "standard"))
            ),
            Ok(())
        );
        // A storage quota asks nothing of pods.
        let bare = yaml("metadata: {name: p}\nspec: {containers: [{name: c}]}");
        assert_eq!(admit(&[&q], &[], &[], New::Pod(&bare)), Ok(()));
    }
}
