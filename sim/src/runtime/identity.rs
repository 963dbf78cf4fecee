//! Who a container's processes are, as the kubelet and the container runtime decide it from
//! the pod's security context: `runAsUser`/`runAsGroup` (the container's over the pod's),
//! `fsGroup` and `supplementalGroups` as extra groups, the `runAsNonRoot` check before start,
//! and `fsGroup` ownership of the pod's volumes (group-owned, group-writable, setgid
//! directories).
//!
//! The sim's stand-ins for image entrypoints (the PostgreSQL and Redis servers, the migration
//! stand-in) keep the OS users their programs need; a container running its own command (or
//! idling) runs as the security context says, else as the image's user: 1001 for Bitnami
//! images (their non-root `USER`), root for the others.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::Value;

use super::images::{behaviour, Behaviour};
use super::sandbox::User;

/// The user settings of one container, resolved from its own and its pod's security context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunAs {
    pub user: Option<u32>,
    pub group: Option<u32>,
    pub non_root: bool,
}

impl RunAs {
    /// Reads `runAsUser`, `runAsGroup` and `runAsNonRoot`; the container's settings win.
    pub fn of(pod_spec: &Value, container: &Value) -> RunAs {
        let field = |k: &str| {
            container
                .pointer(&format!("/securityContext/{k}"))
                .filter(|v| !v.is_null())
                .or_else(|| {
                    pod_spec
                        .pointer(&format!("/securityContext/{k}"))
                        .filter(|v| !v.is_null())
                })
        };
        let id = |k: &str| field(k).and_then(Value::as_u64).map(|n| n as u32);
        RunAs {
            user: id("runAsUser"),
            group: id("runAsGroup"),
            non_root: field("runAsNonRoot").and_then(Value::as_bool) == Some(true),
        }
    }
}

/// The pod's extra groups: `fsGroup`, then `supplementalGroups`, without repeats.
pub fn pod_groups(pod_spec: &Value) -> Vec<u32> {
    let mut out = Vec::new();
    let sc = &pod_spec["securityContext"];
    let ids = sc["fsGroup"].as_u64().into_iter().chain(
        sc["supplementalGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64),
    );
    for id in ids {
        let id = id as u32;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The pod's `fsGroup`, if set.
pub fn fs_group(pod_spec: &Value) -> Option<u32> {
    pod_spec
        .pointer("/securityContext/fsGroup")
        .and_then(Value::as_u64)
        .map(|n| n as u32)
}

/// Whether the container's program is its own command (or idling), whose user the security
/// context decides; the server stand-ins keep their own users.
fn user_settable(image: &str, command: &[String], args: &[String]) -> bool {
    matches!(
        behaviour(image, command, args),
        Behaviour::Command { .. } | Behaviour::Idle
    )
}

/// The image's own user when nothing overrides it.
fn image_user(image: &str, program_user: User) -> User {
    if image.contains("bitnami") {
        User { uid: 1001, gid: 0 }
    } else {
        program_user
    }
}

/// The user a container's processes run as, given the user the sim's program would use.
pub fn process_user(
    image: &str,
    command: &[String],
    args: &[String],
    run_as: &RunAs,
    program_user: User,
) -> User {
    if !user_settable(image, command, args) {
        return program_user;
    }
    let base = image_user(image, program_user);
    User {
        uid: run_as.user.unwrap_or(base.uid),
        gid: run_as
            .group
            .unwrap_or(if run_as.user.is_some() { 0 } else { base.gid }),
    }
}

/// The kubelet's `runAsNonRoot` check, worded as it reports it (`CreateContainerConfigError`):
/// the effective user is `runAsUser`, else the image's.
pub fn verify_non_root(
    run_as: &RunAs,
    image: &str,
    container: &str,
    pod: &str,
) -> Result<(), String> {
    if !run_as.non_root {
        return Ok(());
    }
    match run_as.user {
        Some(0) => Err(format!(
            "container's runAsUser breaks non-root policy (pod: \"{pod}\", container: {container})"
        )),
        Some(_) => Ok(()),
        None if image_user(image, User::ROOT).uid == 0 => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {container})"
        )),
        None => Ok(()),
    }
}

/// Gives a volume to the pod's `fsGroup` as the kubelet does: every file and directory
/// group-owned by it and group-readable and -writable (read-only: readable), directories
/// also group-searchable and setgid so new files inherit the group. Symlinks are left alone.
/// With `fsGroupChangePolicy: OnRootMismatch`, a volume whose root already matches is skipped.
pub fn set_volume_ownership(
    dir: &Path,
    gid: u32,
    read_only: bool,
    on_root_mismatch: bool,
) -> io::Result<()> {
    let mask = if read_only { 0o440 } else { 0o660 };
    let dir_mask = mask | 0o110 | 0o2000;
    if on_root_mismatch {
        let meta = fs::metadata(dir)?;
        if meta.gid() == gid && meta.mode() & dir_mask == dir_mask {
            return Ok(());
        }
    }
    walk(dir, &mut |path, meta| {
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, None, Some(gid))?;
        let extra = if meta.is_dir() { dir_mask } else { mask };
        fs::set_permissions(
            path,
            fs::Permissions::from_mode((meta.mode() & 0o7777) | extra),
        )
    })
}

fn walk(path: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<()>) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    f(path, &meta)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            walk(&entry?.path(), f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_containers_settings_win_over_the_pods() {
        let pod = json!({"securityContext": {"runAsUser": 1001, "runAsGroup": 1001, "runAsNonRoot": true, "fsGroup": 2000, "supplementalGroups": [3000, 2000]}});
        let c = json!({"securityContext": {"runAsUser": 1002}});
        assert_eq!(
            RunAs::of(&pod, &c),
            RunAs {
                user: Some(1002),
                group: Some(1001),
                non_root: true
            }
        );
        assert_eq!(pod_groups(&pod), vec![2000, 3000]);
        assert_eq!(RunAs::of(&json!({}), &json!({})), RunAs::default());
    }

    #[test]
    fn a_command_runs_as_the_security_context_says_and_servers_keep_their_users() {
        let postgres = User { uid: 101, gid: 104 };
        let cmd = strings(&["sh", "-c", "sleep 1"]);
        let run_as = RunAs {
            user: Some(1001),
            group: None,
            non_root: true,
        };
        let pg = "docker.io/bitnami/postgresql:15.1.0-debian-11-r12";
        assert_eq!(
            process_user(pg, &cmd, &[], &run_as, User::ROOT),
            User { uid: 1001, gid: 0 }
        );
        assert_eq!(process_user(pg, &[], &[], &run_as, postgres), postgres);
        // Without a runAsUser, the image's user: Bitnami's 1001, root elsewhere.
        let none = RunAs::default();
        assert_eq!(
            process_user(pg, &cmd, &[], &none, User::ROOT),
            User { uid: 1001, gid: 0 }
        );
        assert_eq!(
            process_user("postgres:15", &cmd, &[], &none, User::ROOT),
            User::ROOT
        );
    }

    #[test]
    fn run_as_non_root_refuses_root_as_the_kubelet_words_it() {
        let root_image = "busybox";
        let mut run_as = RunAs {
            user: None,
            group: None,
            non_root: true,
        };
        assert_eq!(
            verify_non_root(&run_as, root_image, "c", "p_ns(uid)").unwrap_err(),
            "container has runAsNonRoot and image will run as root (pod: \"p_ns(uid)\", container: c)"
        );
        assert!(verify_non_root(&run_as, "bitnami/redis:7", "c", "p").is_ok());
        run_as.user = Some(0);
        assert_eq!(
            verify_non_root(&run_as, "bitnami/redis:7", "c", "p").unwrap_err(),
            "container's runAsUser breaks non-root policy (pod: \"p\", container: c)"
        );
        run_as.user = Some(1001);
        assert!(verify_non_root(&run_as, root_image, "c", "p").is_ok());
    }

    #[test]
    fn a_volume_becomes_the_fs_groups_with_setgid_directories() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        let file = sub.join("f");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        set_volume_ownership(dir.path(), 4242, false, false).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(fs::metadata(&sub).unwrap().gid(), 4242);
        assert_eq!(mode(&sub), 0o2770);
        assert_eq!(mode(&file), 0o660);
        assert_eq!(fs::metadata(&file).unwrap().gid(), 4242);
        // The link's target is not touched.
        assert_ne!(fs::metadata("/etc/passwd").unwrap().gid(), 4242);
        // A matching root is left alone with OnRootMismatch.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        set_volume_ownership(dir.path(), 4242, false, true).unwrap();
        assert_eq!(mode(&file), 0o600);
    }
}
