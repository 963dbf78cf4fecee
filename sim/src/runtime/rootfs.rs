//! The container's filesystem view, planned as data: a private root directory holding the
//! host's top-level directories (bind-mounted), a private `/tmp`, a `/proc` of the pod's own
//! PID namespace, and every requested mount at its container path. Pure: the host is read through [`HostFs`], the result is a list of
//! [`Op`]s that `sandbox.rs` carries out inside the new mount namespace.
//!
//! Mount points never litter the host: a missing mount point is created in the container's
//! own root directory when its parent is the root's own storage; when its parent is a host
//! directory (e.g. `/mnt` for `/mnt/postgres-backup`), that directory is first *mirrored*: a
//! fresh directory (or a tmpfs, when the directory is reached through a parent's bind) that
//! holds a bind of each of its host entries, so the new mount point is made in private storage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a host path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    Dir,
    File,
    Symlink(PathBuf),
}

/// Read access to the host filesystem (a fake in tests).
pub trait HostFs {
    /// Entries of a host directory; empty when it cannot be read.
    fn list(&self, dir: &Path) -> Vec<(String, HostEntry)>;
}

/// A mount the container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Host directory or file to bind-mount
    pub source: PathBuf,
    /// Absolute path inside the container
    pub target: String,
    pub read_only: bool,
    pub is_file: bool,
}

/// One step of building the root, on host paths (all under the root directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Mkdir {
        path: PathBuf,
        mode: u32,
    },
    Touch {
        path: PathBuf,
    },
    Bind {
        source: PathBuf,
        target: PathBuf,
        recursive: bool,
        read_only: bool,
    },
    Tmpfs {
        target: PathBuf,
    },
    Symlink {
        link_target: PathBuf,
        path: PathBuf,
    },
    /// A procfs of the PID namespace the process is in (the pod's)
    Proc {
        target: PathBuf,
    },
}

#[derive(Debug)]
enum Kind {
    /// A directory in private storage: `mkdir` in the parent, or a tmpfs over a directory
    /// that exists under a parent's bind
    Private { tmpfs_over: bool, mode: u32 },
    /// A host directory or file; `implied` when a parent's recursive bind already shows it
    Host {
        path: PathBuf,
        entry: HostEntry,
        implied: bool,
    },
    /// A requested mount; `exists` when the mount point is already there
    Mount { request: Request, exists: bool },
    /// The pod's own `/proc`
    Proc,
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    children: BTreeMap<String, Node>,
}

/// Builds the operations that make `root` the container's `/`.
pub fn plan(root: &Path, requests: &[Request], host: &dyn HostFs) -> Result<Vec<Op>, String> {
    let mut top = Node {
        kind: Kind::Private {
            tmpfs_over: false,
            mode: 0o755,
        },
        children: host_children(Path::new("/"), host, false),
    };
    top.children.remove("tmp");
    top.children.insert(
        "tmp".into(),
        Node {
            kind: Kind::Private {
                tmpfs_over: false,
                mode: 0o1777,
            },
            children: BTreeMap::new(),
        },
    );
    if top.children.remove("proc").is_some() {
        top.children.insert(
            "proc".into(),
            Node {
                kind: Kind::Proc,
                children: BTreeMap::new(),
            },
        );
    }
    let mut requests = requests.to_vec();
    requests.sort_by_key(|r| r.target.matches('/').count());
    for request in requests {
        insert(&mut top, &request, host)?;
    }
    let mut ops = Vec::new();
    for (name, child) in &top.children {
        emit(&root.join(name), child, &mut ops);
    }
    Ok(ops)
}

fn host_children(dir: &Path, host: &dyn HostFs, implied: bool) -> BTreeMap<String, Node> {
    host.list(dir)
        .into_iter()
        .map(|(name, entry)| {
            let node = Node {
                kind: Kind::Host {
                    path: dir.join(&name),
                    entry,
                    implied,
                },
                children: BTreeMap::new(),
            };
            (name, node)
        })
        .collect()
}

fn insert(top: &mut Node, request: &Request, host: &dyn HostFs) -> Result<(), String> {
    let parts: Vec<&str> = request
        .target
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return Err(format!(
            "mount path {:?} is not a plain absolute path",
            request.target
        ));
    }
    let (last, parents) = parts.split_last().expect("non-empty");
    let mut node = top;
    for part in parents {
        node = child_dir(node, part, host, &request.target)?;
    }
    reveal_host_child(node, last, host);
    // The node this mount replaces stops being emitted, so the mount point exists only if
    // something else makes it: a parent's bind (implied host entries, a tmpfs over one) or
    // an earlier mount at the same path whose mount point was itself there.
    let exists = match node.children.get(*last).map(|n| &n.kind) {
        Some(Kind::Host { implied, .. }) => *implied,
        Some(Kind::Private { tmpfs_over, .. }) => *tmpfs_over,
        Some(Kind::Mount { exists, .. }) => *exists,
        Some(Kind::Proc) | None => false,
    };
    if !exists {
        make_writable(node, host);
    }
    node.children.insert(
        last.to_string(),
        Node {
            kind: Kind::Mount {
                request: request.clone(),
                exists,
            },
            children: BTreeMap::new(),
        },
    );
    Ok(())
}

/// The directory `name` under `node`, created (privately) if missing.
fn child_dir<'a>(
    node: &'a mut Node,
    name: &str,
    host: &dyn HostFs,
    target: &str,
) -> Result<&'a mut Node, String> {
    reveal_host_child(node, name, host);
    if !node.children.contains_key(name) {
        make_writable(node, host);
        node.children.insert(
            name.to_string(),
            Node {
                kind: Kind::Private {
                    tmpfs_over: false,
                    mode: 0o755,
                },
                children: BTreeMap::new(),
            },
        );
    }
    let child = node.children.get_mut(name).expect("just ensured");
    match &child.kind {
        Kind::Host {
            entry: HostEntry::Dir,
            ..
        }
        | Kind::Private { .. }
        | Kind::Mount { .. } => Ok(child),
        Kind::Host { path, entry, .. } => Err(format!(
            "mount path {target:?} passes through {} on the host, which is a {entry:?}, not a directory",
            path.display()
        )),
        Kind::Proc => Err(format!(
            "mount path {target:?} is inside /proc, which is the pod's procfs"
        )),
    }
}

/// Models `name` under a host directory (shown by the directory's bind) if the host has it.
fn reveal_host_child(node: &mut Node, name: &str, host: &dyn HostFs) {
    let Kind::Host { path, .. } = &node.kind else {
        return;
    };
    if node.children.contains_key(name) {
        return;
    }
    if let Some((_, entry)) = host.list(path).into_iter().find(|(n, _)| n == name) {
        let child = Node {
            kind: Kind::Host {
                path: path.join(name),
                entry,
                implied: true,
            },
            children: BTreeMap::new(),
        };
        node.children.insert(name.to_string(), child);
    }
}

/// Makes a new entry in `node` land in private storage: a host directory is mirrored.
fn make_writable(node: &mut Node, host: &dyn HostFs) {
    if let Kind::Host {
        path,
        entry: HostEntry::Dir,
        implied,
    } = &node.kind
    {
        let (path, implied) = (path.clone(), *implied);
        let mut children = host_children(&path, host, false);
        // Entries already modelled (on the way to earlier mounts) keep their plan, but are
        // no longer shown by a bind of the parent.
        for (name, mut existing) in std::mem::take(&mut node.children) {
            if let Kind::Host { implied, .. } = &mut existing.kind {
                *implied = false;
            }
            if let Kind::Mount { exists, .. } = &mut existing.kind {
                *exists = false;
            }
            children.insert(name, existing);
        }
        node.kind = Kind::Private {
            tmpfs_over: implied,
            mode: 0o755,
        };
        node.children = children;
    }
}

fn emit(path: &Path, node: &Node, ops: &mut Vec<Op>) {
    match &node.kind {
        Kind::Private { tmpfs_over, mode } => {
            if *tmpfs_over {
                ops.push(Op::Tmpfs {
                    target: path.to_path_buf(),
                });
            } else {
                ops.push(Op::Mkdir {
                    path: path.to_path_buf(),
                    mode: *mode,
                });
            }
        }
        Kind::Host {
            path: source,
            entry,
            implied,
        } => {
            if !implied {
                match entry {
                    HostEntry::Dir => {
                        ops.push(Op::Mkdir {
                            path: path.to_path_buf(),
                            mode: 0o755,
                        });
                        ops.push(Op::Bind {
                            source: source.clone(),
                            target: path.to_path_buf(),
                            recursive: true,
                            read_only: false,
                        });
                    }
                    HostEntry::File => {
                        ops.push(Op::Touch {
                            path: path.to_path_buf(),
                        });
                        ops.push(Op::Bind {
                            source: source.clone(),
                            target: path.to_path_buf(),
                            recursive: false,
                            read_only: false,
                        });
                    }
                    HostEntry::Symlink(link_target) => ops.push(Op::Symlink {
                        link_target: link_target.clone(),
                        path: path.to_path_buf(),
                    }),
                }
            }
        }
        Kind::Mount { request, exists } => {
            if !exists {
                ops.push(if request.is_file {
                    Op::Touch {
                        path: path.to_path_buf(),
                    }
                } else {
                    Op::Mkdir {
                        path: path.to_path_buf(),
                        mode: 0o755,
                    }
                });
            }
            ops.push(Op::Bind {
                source: request.source.clone(),
                target: path.to_path_buf(),
                recursive: true,
                read_only: request.read_only,
            });
        }
        Kind::Proc => {
            ops.push(Op::Mkdir {
                path: path.to_path_buf(),
                mode: 0o555,
            });
            ops.push(Op::Proc {
                target: path.to_path_buf(),
            });
        }
    }
    for (name, child) in &node.children {
        emit(&path.join(name), child, ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeHost(HashMap<&'static str, Vec<(&'static str, HostEntry)>>);

    impl HostFs for FakeHost {
        fn list(&self, dir: &Path) -> Vec<(String, HostEntry)> {
            self.0
                .get(dir.to_str().unwrap())
                .map(|v| v.iter().map(|(n, e)| (n.to_string(), e.clone())).collect())
                .unwrap_or_default()
        }
    }

    fn host() -> FakeHost {
        use HostEntry::*;
        FakeHost(HashMap::from([
            (
                "/",
                vec![
                    ("etc", Dir),
                    ("dev", Dir),
                    ("mnt", Dir),
                    ("tmp", Dir),
                    ("usr", Dir),
                    ("var", Dir),
                    ("bin", Symlink("usr/bin".into())),
                ],
            ),
            ("/etc", vec![("hosts", File), ("passwd", File)]),
            ("/dev", vec![("shm", Dir), ("null", File)]),
            ("/mnt", vec![("data", Dir)]),
            ("/var", vec![("lib", Dir), ("log", Dir)]),
            ("/var/lib", vec![("apt", Dir), ("postgresql", Dir)]),
        ]))
    }

    fn req(source: &str, target: &str) -> Request {
        Request {
            source: source.into(),
            target: target.into(),
            read_only: false,
            is_file: false,
        }
    }

    fn render(ops: &[Op]) -> String {
        ops.iter()
            .map(|op| match op {
                Op::Mkdir { path, mode } => format!("mkdir {} {mode:o}", path.display()),
                Op::Touch { path } => format!("touch {}", path.display()),
                Op::Bind {
                    source,
                    target,
                    recursive,
                    read_only,
                } => format!(
                    "bind{}{} {} {}",
                    if *recursive { " -r" } else { "" },
                    if *read_only { " -ro" } else { "" },
                    source.display(),
                    target.display()
                ),
                Op::Tmpfs { target } => format!("tmpfs {}", target.display()),
                Op::Proc { target } => format!("proc {}", target.display()),
                Op::Symlink { link_target, path } => {
                    format!("symlink {} -> {}", path.display(), link_target.display())
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_root_binds_host_directories_and_has_a_private_tmp() {
        let ops = plan(Path::new("/r"), &[], &host()).unwrap();
        insta::assert_snapshot!(render(&ops));
    }

    #[test]
    fn volumes_get_mount_points_without_touching_host_directories() {
        let mut hosts = req("/state/net/hosts-live-agent", "/etc/hosts");
        hosts.is_file = true;
        let mut backup = req("/state/pv/backup", "/mnt/postgres-backup");
        backup.read_only = true;
        let requests = [
            req("/state/pv/data", "/bitnami/postgresql"),
            backup,
            hosts,
            req("/state/empty/dshm", "/dev/shm"),
            req("/state/pod/anon", "/var/lib/postgresql/data"),
            req("/state/pod/conf", "/bitnami/postgresql/conf"),
        ];
        let ops = plan(Path::new("/r"), &requests, &host()).unwrap();
        insta::assert_snapshot!(render(&ops));
    }

    #[test]
    fn no_operation_writes_outside_the_root_except_through_mounts_made_there() {
        let requests = [
            req("/v", "/mnt/postgres-backup"),
            req("/w", "/var/lib/postgresql/data"),
            req("/x", "/usr/local/new"),
        ];
        let ops = plan(Path::new("/r"), &requests, &host()).unwrap();
        for op in &ops {
            let path = match op {
                Op::Mkdir { path, .. } | Op::Touch { path } | Op::Symlink { path, .. } => path,
                Op::Bind { target, .. } | Op::Tmpfs { target } | Op::Proc { target } => target,
            };
            assert!(path.starts_with("/r/"), "{op:?} is outside the root");
        }
        // Every mkdir/touch lands in a directory this plan created or mounted privately.
        let mut private: Vec<PathBuf> = vec!["/r".into()];
        for op in &ops {
            match op {
                Op::Mkdir { path, .. } | Op::Touch { path } | Op::Symlink { path, .. } => {
                    let parent = path.parent().unwrap();
                    assert!(
                        private.iter().any(|p| p == parent),
                        "{op:?} writes into a host directory"
                    );
                    private.push(path.clone());
                }
                Op::Tmpfs { target } | Op::Proc { target } => private.push(target.clone()),
                Op::Bind { target, .. } => private.retain(|p| p != target),
            }
        }
    }

    #[test]
    fn a_volume_at_tmp_replaces_the_private_tmp_and_gets_its_mount_point() {
        let ops = plan(Path::new("/r"), &[req("/state/empty/tmp", "/tmp")], &host()).unwrap();
        let text = render(&ops);
        let mkdir = text.find("mkdir /r/tmp 755").expect(&text);
        let bind = text.find("bind -r /state/empty/tmp /r/tmp").expect(&text);
        assert!(mkdir < bind, "{text}");
        assert!(!text.contains("mkdir /r/tmp 1777"), "{text}");
    }

    #[test]
    fn two_mounts_at_one_path_still_get_the_mount_point() {
        let ops = plan(
            Path::new("/r"),
            &[req("/a", "/opt/x"), req("/b", "/opt/x")],
            &host(),
        )
        .unwrap();
        let text = render(&ops);
        assert!(
            text.contains("mkdir /r/opt/x 755\nbind -r /b /r/opt/x\n"),
            "{text}"
        );
    }

    #[test]
    fn proc_is_the_pods_own_procfs_not_the_hosts() {
        let mut fake = host();
        fake.0.get_mut("/").unwrap().push(("proc", HostEntry::Dir));
        let text = render(&plan(Path::new("/r"), &[], &fake).unwrap());
        assert!(text.contains("mkdir /r/proc 555\nproc /r/proc\n"), "{text}");
        assert!(!text.contains("bind -r /proc"), "{text}");
        let err = plan(Path::new("/r"), &[req("/v", "/proc/x")], &fake).unwrap_err();
        assert!(err.contains("/proc"), "{err}");
    }

    #[test]
    fn a_mount_through_a_host_file_is_refused() {
        let err = plan(Path::new("/r"), &[req("/v", "/etc/hosts/x")], &host()).unwrap_err();
        assert!(err.contains("/etc/hosts"), "{err}");
    }
}
