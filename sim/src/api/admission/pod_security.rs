//! Pod Security admission: the checks of the Pod Security Standards (`baseline`,
//! `restricted`), as the API server's `PodSecurity` plugin runs them, with its wording
//! (`k8s.io/pod-security-admission/policy`). Pure: a pod (or pod template) in, the forbidden
//! reasons out.

use std::collections::BTreeSet;

use serde_json::Value;

/// Namespace label that enforces a level.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Namespace label pinning the policy version (`latest` when absent).
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One failed check: its reason and the detail in parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

/// The admission error's cause for a pod violating `level` in a namespace (`None` when
/// allowed): `violates PodSecurity "restricted:latest": reason (detail), ...`.
pub fn check_namespace(ns: &Value, pod_metadata: &Value, pod_spec: &Value) -> Option<String> {
    let (level, version) = label_level(ns, ENFORCE_LABEL, ENFORCE_VERSION_LABEL);
    verdict(level, &version, pod_metadata, pod_spec).map(|v| format!("violates {v}"))
}

/// `PodSecurity "level:version": reason (detail), ...` for a pod that fails the level.
fn verdict(level: Level, version: &str, metadata: &Value, spec: &Value) -> Option<String> {
    let violations = evaluate(level, metadata, spec);
    (!violations.is_empty()).then(|| {
        format!(
            "PodSecurity \"{}:{version}\": {}",
            level.name(),
            render(&violations)
        )
    })
}

/// Namespace label that only warns at a level.
pub const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// The level and version a namespace's labels set; an unknown level counts as `restricted`,
/// as the real plugin treats an invalid one.
fn label_level(ns: &Value, label: &str, version_label: &str) -> (Level, String) {
    let labels = ns.pointer("/metadata/labels");
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let level = match get(label) {
        None | Some("privileged") => Level::Privileged,
        Some("baseline") => Level::Baseline,
        Some(_) => Level::Restricted,
    };
    (level, get(version_label).unwrap_or("latest").to_string())
}

/// The warnings the plugin returns on a create (`would violate PodSecurity ...`): a pod
/// checked against the namespace's `warn` level; a workload's pod template against the
/// `enforce` and `warn` levels (the workload itself is admitted; its pods will not be).
pub fn warnings(
    ns: &Value,
    pod_metadata: &Value,
    pod_spec: &Value,
    is_template: bool,
) -> Vec<String> {
    let mut levels = vec![label_level(ns, WARN_LABEL, WARN_VERSION_LABEL)];
    if is_template {
        levels.insert(0, label_level(ns, ENFORCE_LABEL, ENFORCE_VERSION_LABEL));
    }
    let mut out: Vec<String> = Vec::new();
    for (level, version) in levels {
        if let Some(v) = verdict(level, &version, pod_metadata, pod_spec) {
            let w = format!("would violate {v}");
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// `reason (detail), reason (detail)`, as the real aggregate result reads.
pub fn render(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.clone()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

type Check = fn(&Value, &Value) -> Option<Violation>;

/// Baseline checks every level above `privileged` runs, in the real registry's order.
const BASELINE: &[Check] = &[
    app_armor,
    host_namespaces,
    host_ports,
    probe_hosts,
    privileged,
    proc_mount,
    se_linux,
    sysctls,
    windows_host_process,
];
/// Baseline checks that a restricted check replaces (run at `baseline` only).
const BASELINE_ONLY: &[Check] = &[capabilities_baseline, host_path_volumes, seccomp_baseline];
const RESTRICTED: &[Check] = &[
    allow_privilege_escalation,
    capabilities_restricted,
    restricted_volumes,
    run_as_non_root,
    run_as_user,
    seccomp_restricted,
];

/// The checks of `level` that the pod fails, in the order the real plugin reports them.
pub fn evaluate(level: Level, metadata: &Value, spec: &Value) -> Vec<Violation> {
    let checks: Vec<Check> = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => BASELINE.iter().chain(BASELINE_ONLY).copied().collect(),
        Level::Restricted => BASELINE.iter().chain(RESTRICTED).copied().collect(),
    };
    checks.iter().filter_map(|c| c(metadata, spec)).collect()
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec[k].as_array().into_iter().flatten())
}

fn cname(c: &Value) -> String {
    c["name"].as_str().unwrap_or_default().to_string()
}

fn pluralize<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("{:?}", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `container "a"` / `containers "a", "b"`
fn containers_named(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn violation(reason: &str, detail: String) -> Option<Violation> {
    Some(Violation {
        reason: reason.to_string(),
        detail,
    })
}

fn sc<'a>(c: &'a Value, field: &str) -> Option<&'a Value> {
    c.get("securityContext")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
}

/// Pods that run in a user namespace (`hostUsers: false`) are exempt from the user checks.
fn user_namespaced(spec: &Value) -> bool {
    spec["hostUsers"].as_bool() == Some(false)
}

/// "pod", "containers ..." and the values: the shared shape of checks on a field that the pod
/// or each container may set.
fn bad_setters(pod_bad: bool, containers: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    if pod_bad {
        out.push("pod".to_string());
    }
    if !containers.is_empty() {
        out.push(containers_named(&containers));
    }
    out
}

fn app_armor(metadata: &Value, spec: &Value) -> Option<Violation> {
    let allowed = |p: &str| p.is_empty() || p == "runtime/default" || p.starts_with("localhost/");
    let mut values = BTreeSet::new();
    let mut unconfined = |s: Option<&Value>| {
        let bad = s.and_then(|p| p["type"].as_str()) == Some("Unconfined");
        if bad {
            values.insert("\"Unconfined\"".to_string());
        }
        bad
    };
    let pod_bad = unconfined(sc(spec, "appArmorProfile"));
    let bad: Vec<String> = containers(spec)
        .filter(|c| unconfined(sc(c, "appArmorProfile")))
        .map(cname)
        .collect();
    let mut setters = bad_setters(pod_bad, bad);
    let mut annotated = false;
    for (k, v) in metadata["annotations"].as_object().into_iter().flatten() {
        let v = v.as_str().unwrap_or_default();
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") && !allowed(v) {
            annotated = true;
            values.insert(format!("\"{k}=\"{v}\"\""));
        }
    }
    if annotated {
        setters.push("annotations".to_string());
    }
    if setters.is_empty() {
        return None;
    }
    let values: Vec<String> = values.into_iter().collect();
    violation(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            values.join(", ")
        ),
    )
}

fn host_namespaces(_: &Value, spec: &Value) -> Option<Violation> {
    let set: Vec<String> = ["hostIPC", "hostNetwork", "hostPID"]
        .into_iter()
        .filter(|k| spec[*k].as_bool() == Some(true))
        .map(|k| format!("{k}=true"))
        .collect();
    (!set.is_empty()).then(|| Violation {
        reason: "host namespaces".into(),
        detail: set.join(", "),
    })
}

fn host_ports(_: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let used: Vec<String> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64().filter(|p| *p != 0))
            .map(|p| p.to_string())
            .collect();
        if !used.is_empty() {
            bad.push(cname(c));
            ports.extend(used);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_named(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn probe_hosts(_: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in containers(spec) {
        let handlers = [
            c.get("livenessProbe"),
            c.get("readinessProbe"),
            c.get("startupProbe"),
            c.pointer("/lifecycle/postStart"),
            c.pointer("/lifecycle/preStop"),
        ];
        for h in handlers.into_iter().flatten() {
            for kind in ["httpGet", "tcpSocket"] {
                if let Some(host) = h
                    .pointer(&format!("/{kind}/host"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    bad.insert(cname(c));
                    hosts.insert(host.to_string());
                }
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let bad: Vec<String> = bad.into_iter().collect();
    let hosts: Vec<String> = hosts.into_iter().collect();
    violation(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_named(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
    )
}

fn privileged(_: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "privileged".into(),
        detail: format!(
            "{} must not set securityContext.privileged=true",
            containers_named(&bad)
        ),
    })
}

fn proc_mount(_: &Value, spec: &Value) -> Option<Violation> {
    if user_namespaced(spec) {
        return None;
    }
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        if let Some(t) = sc(c, "procMount").and_then(Value::as_str) {
            if t != "Default" {
                bad.push(cname(c));
                types.insert(t.to_string());
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_named(&bad),
            join_quote(&types)
        ),
    )
}

fn se_linux(_: &Value, spec: &Value) -> Option<Violation> {
    let mut types = BTreeSet::new();
    let (mut user, mut role) = (false, false);
    let mut valid = |o: &Value| {
        let mut ok = true;
        let t = o["type"].as_str().unwrap_or_default();
        if !["", "container_t", "container_init_t", "container_kvm_t"].contains(&t) {
            ok = false;
            types.insert(t.to_string());
        }
        if o["user"].as_str().is_some_and(|s| !s.is_empty()) {
            ok = false;
            user = true;
        }
        if o["role"].as_str().is_some_and(|s| !s.is_empty()) {
            ok = false;
            role = true;
        }
        ok
    };
    let pod_bad = sc(spec, "seLinuxOptions").is_some_and(|o| !valid(o));
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc(c, "seLinuxOptions").is_some_and(|o| !valid(o)))
        .map(cname)
        .collect();
    let setters = bad_setters(pod_bad, bad);
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !types.is_empty() {
        let types: Vec<String> = types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_string());
    }
    if role {
        data.push("role may not be set".to_string());
    }
    violation(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

fn sysctls(_: &Value, spec: &Value) -> Option<Violation> {
    const ALLOWED: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];
    let bad: Vec<String> = sc(spec, "sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !ALLOWED.contains(n))
        .map(str::to_string)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "forbidden sysctls".into(),
        detail: bad.join(", "),
    })
}

fn windows_host_process(_: &Value, spec: &Value) -> Option<Violation> {
    let host_process = |s: Option<&Value>| s.and_then(|w| w["hostProcess"].as_bool()) == Some(true);
    let bad: Vec<String> = containers(spec)
        .filter(|c| host_process(sc(c, "windowsOptions")))
        .map(cname)
        .collect();
    let setters = bad_setters(host_process(sc(spec, "windowsOptions")), bad);
    (!setters.is_empty()).then(|| Violation {
        reason: "hostProcess".into(),
        detail: format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    })
}

fn added_capabilities(c: &Value) -> Vec<String> {
    sc(c, "capabilities")
        .and_then(|caps| caps["add"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn capabilities_baseline(_: &Value, spec: &Value) -> Option<Violation> {
    const DEFAULT: &[&str] = &[
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let extra: Vec<String> = added_capabilities(c)
            .into_iter()
            .filter(|a| !DEFAULT.contains(&a.as_str()))
            .collect();
        if !extra.is_empty() {
            bad.push(cname(c));
            caps.extend(extra);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let caps: Vec<String> = caps.into_iter().collect();
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&bad),
            join_quote(&caps)
        ),
    )
}

fn host_path_volumes(_: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPath volumes".into(),
        detail: format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    })
}

fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// Shared by both seccomp checks: who set a bad type, and the bad types.
fn seccomp_bad(spec: &Value) -> (Vec<String>, BTreeSet<String>) {
    let mut values = BTreeSet::new();
    let mut bad_type = |s: Option<&Value>| match s.and_then(|p| p["type"].as_str()) {
        Some(t) if !valid_seccomp(t) => {
            values.insert(t.to_string());
            true
        }
        _ => false,
    };
    let pod_bad = bad_type(sc(spec, "seccompProfile"));
    let bad: Vec<String> = containers(spec)
        .filter(|c| bad_type(sc(c, "seccompProfile")))
        .map(cname)
        .collect();
    (bad_setters(pod_bad, bad), values)
}

fn seccomp_explicitly_bad(spec: &Value) -> Option<Violation> {
    let (setters, values) = seccomp_bad(spec);
    if setters.is_empty() {
        return None;
    }
    let values: Vec<String> = values.into_iter().collect();
    violation(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

fn seccomp_baseline(_: &Value, spec: &Value) -> Option<Violation> {
    seccomp_explicitly_bad(spec)
}

fn seccomp_restricted(_: &Value, spec: &Value) -> Option<Violation> {
    if let Some(v) = seccomp_explicitly_bad(spec) {
        return Some(v);
    }
    let pod_set = sc(spec, "seccompProfile").is_some();
    let missing: Vec<String> = containers(spec)
        .filter(|c| !pod_set && sc(c, "seccompProfile").is_none())
        .map(cname)
        .collect();
    (!missing.is_empty()).then(|| Violation {
        reason: "seccompProfile".into(),
        detail: format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_named(&missing)
        ),
    })
}

fn allow_privilege_escalation(_: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "allowPrivilegeEscalation != false".into(),
        detail: format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_named(&bad)
        ),
    })
}

fn capabilities_restricted(_: &Value, spec: &Value) -> Option<Violation> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let dropped_all = sc(c, "capabilities")
            .and_then(|caps| caps["drop"].as_array())
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !dropped_all {
            missing_drop.push(cname(c));
        }
        let extra: Vec<String> = added_capabilities(c)
            .into_iter()
            .filter(|a| a != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding.push(cname(c));
            caps.extend(extra);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<String> = caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding),
            join_quote(&caps)
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "unrestricted capabilities".into(),
        detail: details.join("; "),
    })
}

fn restricted_volumes(_: &Value, spec: &Value) -> Option<Violation> {
    const ALLOWED: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let kind = v
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, val)| *k != "name" && !val.is_null())
            .map(|(k, _)| k.as_str());
        match kind {
            Some(k) if ALLOWED.contains(&k) => {}
            // A volume without a source is an emptyDir (the API server's default).
            None => {}
            Some(k) => {
                bad.push(cname(v));
                types.insert(k.to_string());
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(_: &Value, spec: &Value) -> Option<Violation> {
    if user_namespaced(spec) {
        return None;
    }
    let pod = sc(spec, "runAsNonRoot").and_then(Value::as_bool);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match sc(c, "runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicit.push(cname(c)),
            Some(true) => {}
            None if pod != Some(true) => implicit.push(cname(c)),
            None => {}
        }
    }
    let setters = bad_setters(pod == Some(false), explicit);
    if !setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    (!implicit.is_empty()).then(|| Violation {
        reason: "runAsNonRoot != true".into(),
        detail: format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_named(&implicit)
        ),
    })
}

fn run_as_user(_: &Value, spec: &Value) -> Option<Violation> {
    if user_namespaced(spec) {
        return None;
    }
    let root = |s: Option<&Value>| s.and_then(Value::as_i64) == Some(0);
    let bad: Vec<String> = containers(spec)
        .filter(|c| root(sc(c, "runAsUser")))
        .map(cname)
        .collect();
    let setters = bad_setters(root(sc(spec, "runAsUser")), bad);
    (!setters.is_empty()).then(|| Violation {
        reason: "runAsUser=0".into(),
        detail: format!("{} must not set runAsUser=0", setters.join(" and ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap()
    }

    fn check(level: Level, yaml: &str) -> String {
        let p = pod(yaml);
        render(&evaluate(level, &p["metadata"], &p["spec"]))
    }

    const BARE: &str = "
metadata: {name: x}
spec:
  containers:
  - name: c
    image: busybox
";

    const RESTRICTED_OK: &str = "
metadata: {name: x}
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 1001
    fsGroup: 1001
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: c
    image: busybox
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
  - name: scratch
    emptyDir: {}
";

    #[test]
    fn a_bare_pod_passes_baseline_and_fails_restricted_with_the_real_message() {
        assert_eq!(check(Level::Baseline, BARE), "");
        assert_eq!(check(Level::Privileged, BARE), "");
        assert_eq!(
            check(Level::Restricted, BARE),
            "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
    }

    #[test]
    fn a_pod_hardened_for_restricted_passes_every_level() {
        for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
            assert_eq!(check(level, RESTRICTED_OK), "", "{level:?}");
        }
    }

    #[test]
    fn baseline_refuses_host_access_and_privilege() {
        let p = "
metadata:
  name: x
  annotations: {container.apparmor.security.beta.kubernetes.io/c: unconfined}
spec:
  hostNetwork: true
  hostPID: true
  securityContext:
    sysctls: [{name: kernel.msgmax, value: '1'}]
  containers:
  - name: c
    image: x
    ports: [{containerPort: 80, hostPort: 8080}]
    securityContext:
      privileged: true
      procMount: Unmasked
      capabilities: {add: [NET_ADMIN, CHOWN]}
      seccompProfile: {type: Unconfined}
      seLinuxOptions: {type: spc_t, user: u}
  - name: d
    image: x
    ports: [{containerPort: 81, hostPort: 8081}]
  volumes:
  - name: host
    hostPath: {path: /etc}
";
        assert_eq!(
            check(Level::Baseline, p),
            "forbidden AppArmor profile (annotations must not set AppArmor profile type to \"container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"\"), \
             host namespaces (hostNetwork=true, hostPID=true), \
             hostPort (containers \"c\", \"d\" use hostPorts 8080, 8081), \
             privileged (container \"c\" must not set securityContext.privileged=true), \
             procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\"), \
             seLinuxOptions (container \"c\" set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user may not be set), \
             forbidden sysctls (kernel.msgmax), \
             non-default capabilities (container \"c\" must not include \"NET_ADMIN\" in securityContext.capabilities.add), \
             hostPath volumes (volume \"host\"), \
             seccompProfile (container \"c\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
        );
    }

    #[test]
    fn restricted_names_root_users_volume_types_and_added_capabilities() {
        let p = "
metadata: {name: x}
spec:
  securityContext:
    runAsNonRoot: false
    runAsUser: 0
    seccompProfile: {type: RuntimeDefault}
  initContainers:
  - name: init
    image: x
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [SYS_ADMIN, NET_BIND_SERVICE]}
      runAsUser: 0
  containers:
  - name: c
    image: x
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
  volumes:
  - name: host
    hostPath: {path: /etc}
  - name: share
    nfs: {server: s, path: /}
";
        assert_eq!(
            check(Level::Restricted, p),
            "unrestricted capabilities (container \"init\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add), \
             restricted volume types (volumes \"host\", \"share\" use restricted volume types \"hostPath\", \"nfs\"), \
             runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false), \
             runAsUser=0 (pod and container \"init\" must not set runAsUser=0)"
        );
    }

    #[test]
    fn container_settings_cover_for_a_pod_without_them() {
        let p = "
metadata: {name: x}
spec:
  containers:
  - name: a
    image: x
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
      runAsNonRoot: true
      seccompProfile: {type: Localhost, localhostProfile: p.json}
  - name: b
    image: x
    securityContext:
      allowPrivilegeEscalation: true
      capabilities: {drop: [ALL]}
      runAsNonRoot: true
      seccompProfile: {type: RuntimeDefault}
";
        assert_eq!(
            check(Level::Restricted, p),
            "allowPrivilegeEscalation != false (container \"b\" must set securityContext.allowPrivilegeEscalation=false)"
        );
    }

    #[test]
    fn a_pod_in_a_user_namespace_may_run_as_root() {
        let p = RESTRICTED_OK
            .replace("runAsUser: 1001", "runAsUser: 0")
            .replace("runAsNonRoot: true", "runAsNonRoot: false")
            .replace("automountServiceAccountToken: false", "hostUsers: false");
        assert_eq!(check(Level::Restricted, &p), "");
        let root = RESTRICTED_OK.replace("runAsUser: 1001", "runAsUser: 0");
        assert_eq!(
            check(Level::Restricted, &root),
            "runAsUser=0 (pod must not set runAsUser=0)"
        );
    }

    #[test]
    fn a_workload_template_warns_at_the_enforced_level_and_a_pod_at_the_warn_level() {
        let ns = pod("metadata: {name: n, labels: {pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/warn: baseline}}");
        let p = pod(BARE);
        let template = warnings(&ns, &p["metadata"], &p["spec"], true);
        assert_eq!(template.len(), 1, "{template:?}");
        assert!(template[0].starts_with(
            "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation"
        ));
        assert_eq!(
            warnings(&ns, &p["metadata"], &p["spec"], false),
            Vec::<String>::new()
        );
        let privileged = pod("metadata: {name: x}\nspec: {hostPID: true, containers: [{name: c}]}");
        assert_eq!(
            warnings(&ns, &privileged["metadata"], &privileged["spec"], false),
            vec![
                "would violate PodSecurity \"baseline:latest\": host namespaces (hostPID=true)"
                    .to_string()
            ]
        );
    }

    #[test]
    fn the_namespace_label_picks_the_level_and_version() {
        let ns = |labels: &str| pod(&format!("metadata: {{name: n, labels: {labels}}}"));
        let p = pod(BARE);
        assert_eq!(check_namespace(&ns("{}"), &p["metadata"], &p["spec"]), None);
        assert_eq!(
            check_namespace(
                &ns("{pod-security.kubernetes.io/enforce: baseline}"),
                &p["metadata"],
                &p["spec"]
            ),
            None
        );
        let refused = check_namespace(
            &ns("{pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: v1.33}"),
            &p["metadata"],
            &p["spec"],
        )
        .unwrap();
        assert!(
            refused.starts_with(
                "violates PodSecurity \"restricted:v1.33\": allowPrivilegeEscalation != false"
            ),
            "{refused}"
        );
    }
}
