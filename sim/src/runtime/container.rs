//! One container: its scratch directories, first-start setup (PostgreSQL's initdb as the
//! image's entrypoint would do it) and the spawning of its processes inside its sandbox.
//!
//! Scratch space lives in `<state>/pods/<ns>/<pod>/<container>.d/`: `root/` (the private `/`),
//! `run/` (private files with passwords), `anonymous/` (image-declared volumes), `socket/`,
//! `conf/` (Bitnami PostgreSQL's configuration directory, written at each start).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::error::{Context, Error, Result};
use super::programs::{self, BitnamiConf, PostgresInit, Program, Setup, BITNAMI_CONF_DIR, RUN_DIR};
use super::rootfs::Request;
use super::sandbox::{self, Enter, User};
use super::spawner::PodSpawner;
use super::tools::Tools;
use super::RESOLV_CONF;
use super::{identity, log_file, ContainerSpec, PodSpec};

pub struct Container {
    pub spec: ContainerSpec,
    pub program: Program,
    base: PathBuf,
    log: PathBuf,
    hostname: String,
    mounts: Vec<Request>,
    tools_pg: (PathBuf, PathBuf),
    /// The pod's extra groups (`fsGroup`, `supplementalGroups`)
    groups: Vec<u32>,
}

impl Container {
    pub fn new(
        state_dir: &Path,
        pod: &PodSpec,
        spec: &ContainerSpec,
        tools: &Tools,
        helpers: &Path,
    ) -> Self {
        let log = log_file(state_dir, &pod.namespace, &pod.name, &spec.name);
        let base = log.with_file_name(format!("{}.d", spec.name));
        let hosts = super::hosts_file(state_dir, &pod.namespace);
        let mut mounts: Vec<Request> = vec![
            Request {
                source: hosts,
                target: "/etc/hosts".into(),
                read_only: true,
                is_file: true,
            },
            Request {
                source: helpers.join(RESOLV_CONF),
                target: "/etc/resolv.conf".into(),
                read_only: true,
                is_file: true,
            },
        ];
        mounts.extend(spec.mounts.iter().map(|m| Request {
            source: m.host_path.clone(),
            target: m.container_path.clone(),
            read_only: m.read_only,
            is_file: m.host_path.is_file(),
        }));
        let read_file =
            |path: &str| resolve(&mounts, path).and_then(|host| fs::read_to_string(host).ok());
        let mut program = programs::program(pod, spec, tools, helpers, &read_file);
        let user = identity::process_user(
            &spec.image,
            &spec.command,
            &spec.args,
            &spec.run_as,
            program.user,
        );
        if user != program.user {
            program.user = user;
            program.exec_user = user;
            // An unknown user's home, unless the pod sets one.
            if !spec.env.iter().any(|(k, _)| k == "HOME") {
                for (k, v) in &mut program.env {
                    if k == "HOME" {
                        *v = "/".into();
                    }
                }
            }
        }
        for extra in &program.extra_mounts {
            let mut extra = extra.clone();
            if extra.source.is_relative() {
                extra.source = base.join(&extra.source);
            }
            mounts.push(extra);
        }
        let hostname = if pod.hostname.is_empty() {
            pod.name.clone()
        } else {
            pod.hostname.clone()
        };
        Container {
            spec: spec.clone(),
            program,
            base,
            log,
            hostname,
            mounts,
            tools_pg: (tools.pg11_bin.clone(), tools.pg15_bin.clone()),
            groups: pod.groups.clone(),
        }
    }

    /// Appends a line to the container log (the runtime's own messages, like kubelet events).
    pub fn log_line(&self, line: &str) {
        if let Ok(mut f) = self.open_log() {
            let _ = writeln!(f, "{line}");
        }
    }

    fn open_log(&self) -> std::io::Result<File> {
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir)?;
        }
        OpenOptions::new().create(true).append(true).open(&self.log)
    }

    /// Fresh scratch space and the image's first-start work; then [`Container::spawn`].
    pub fn prepare(&self, spawner: PodSpawner) -> Result<()> {
        let root = self.base.join("root");
        if root.exists() {
            ensure_unmounted(&root)?;
            fs::remove_dir_all(&root).context(|| format!("cannot clear {}", root.display()))?;
        }
        for dir in ["root", "run", "anonymous", "socket"] {
            fs::create_dir_all(self.base.join(dir))
                .context(|| format!("cannot create {}", self.base.display()))?;
        }
        fs::set_permissions(self.base.join("run"), fs::Permissions::from_mode(0o700))
            .context(|| "cannot protect the run directory".into())?;
        for m in &self.mounts {
            if m.source.starts_with(&self.base) {
                fs::create_dir_all(&m.source)
                    .context(|| format!("cannot create {}", m.source.display()))?;
            }
        }
        let hosts = &self.mounts[0].source;
        if !hosts.exists() {
            if let Some(dir) = hosts.parent() {
                fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
            }
            fs::write(hosts, "127.0.0.1 localhost\n")
                .context(|| format!("cannot create {}", hosts.display()))?;
        }
        match &self.program.setup {
            Setup::None => Ok(()),
            Setup::Redis { config } => {
                write_private(&self.base.join("run/redis.conf"), config, User::ROOT)
            }
            Setup::Postgres(init) => self.prepare_postgres(init, spawner),
        }
    }

    fn prepare_postgres(&self, init: &PostgresInit, spawner: PodSpawner) -> Result<()> {
        let user = self.program.user;
        let pgdata = resolve(&self.mounts, &init.pgdata)
            .ok_or_else(|| Error::new(format!("PGDATA {} is on no volume", init.pgdata)))?;
        let volume = self
            .mounts
            .iter()
            .filter(|m| covers(&m.target, &init.pgdata))
            .max_by_key(|m| m.target.len())
            .map(|m| m.source.clone())
            .expect("resolved above");
        fs::create_dir_all(&volume).context(|| format!("cannot create {}", volume.display()))?;
        chown(&volume, user)?;
        chown(&self.base.join("socket"), user)?;
        chown(&self.base.join("run"), user)?;
        let (pg11, pg15) = &self.tools_pg;
        let bin = match init.major {
            super::PgMajor::V11 => pg11,
            super::PgMajor::V15 => pg15,
        };
        if pgdata.join("PG_VERSION").exists() {
            self.log_line("postgresql: data directory exists, skipping initialisation");
            chown_tree(&pgdata, user)?;
            // A pod's fsGroup made it group-writable; PostgreSQL refuses to start on that,
            // and the images' entrypoints set it back.
            fs::set_permissions(&pgdata, fs::Permissions::from_mode(0o700))
                .context(|| format!("cannot restrict {}", pgdata.display()))?;
        } else {
            self.log_line("postgresql: initialising the data directory");
            let mut argv = vec![
                bin.join("initdb").display().to_string(),
                "-D".into(),
                init.pgdata.clone(),
                "-U".into(),
                "postgres".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C".into(),
            ];
            let pwfile = self.base.join("run/initdb-password");
            if let Some(pw) = &init.superuser_password {
                write_private(&pwfile, pw, user)?;
                argv.push(format!("--pwfile={RUN_DIR}/initdb-password"));
            }
            let result = self.run_step(spawner, &argv, user, None);
            let _ = fs::remove_file(&pwfile);
            result?;
            let sql = programs::init_sql(init);
            if !sql.is_empty() {
                let argv = vec![
                    bin.join("postgres").display().to_string(),
                    "--single".into(),
                    "-D".into(),
                    init.pgdata.clone(),
                    "-j".into(),
                    "postgres".into(),
                ];
                // -j: statements end at ";\n\n"
                let sql = sql.replace(";\n", ";\n\n");
                if let Err(e) = self.run_step(spawner, &argv, user, Some(sql)) {
                    // Half-initialised: the next start must initialise again.
                    let _ = fs::remove_dir_all(&pgdata);
                    return Err(e);
                }
            }
        }
        match &init.bitnami {
            Some(conf) => self.write_bitnami_conf(init, conf, user),
            None => write_private(&pgdata.join("pg_hba.conf"), &programs::pg_hba(init), user),
        }
    }

    /// The Bitnami image's configuration directory, as its setup leaves it: the files mounted
    /// under `conf.mounted_dir` copied over, then its own `postgresql.conf` and `pg_hba.conf`
    /// where none was mounted.
    fn write_bitnami_conf(
        &self,
        init: &PostgresInit,
        conf: &BitnamiConf,
        user: User,
    ) -> Result<()> {
        let dir = resolve(&self.mounts, BITNAMI_CONF_DIR).expect("mounted by the program");
        fs::remove_dir_all(&dir).context(|| format!("cannot clear {}", dir.display()))?;
        fs::create_dir_all(dir.join("conf.d"))
            .context(|| format!("cannot create {}", dir.display()))?;
        self.copy_view(&conf.mounted_dir, &dir)?;
        for (name, content) in [
            (
                "postgresql.conf",
                programs::bitnami_postgresql_conf(init.major, conf),
            ),
            ("pg_hba.conf", programs::pg_hba(init)),
        ] {
            if dir.join(name).exists() {
                self.log_line(&format!("postgresql: custom configuration {name} detected"));
            } else {
                write_private(&dir.join(name), &content, user)?;
            }
        }
        chown_tree(&dir, user)
    }

    /// Copies what the container sees at `container_dir` (through every mount below it, e.g. a
    /// ConfigMap mounted inside the data volume) into `dest`, as `cp -r` inside it would.
    fn copy_view(&self, container_dir: &str, dest: &Path) -> Result<()> {
        let container_dir = container_dir.trim_end_matches('/');
        let mut names: BTreeSet<String> = BTreeSet::new();
        if let Some(Ok(entries)) = resolve(&self.mounts, container_dir).map(fs::read_dir) {
            names.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        names.extend(self.mounts.iter().filter_map(|m| {
            let (parent, name) = m.target.trim_end_matches('/').rsplit_once('/')?;
            (parent == container_dir).then(|| name.to_string())
        }));
        for name in names {
            let inside = format!("{container_dir}/{name}");
            let Some(source) = resolve(&self.mounts, &inside) else {
                continue;
            };
            let target = dest.join(&name);
            if source.is_dir() {
                fs::create_dir_all(&target)
                    .context(|| format!("cannot create {}", target.display()))?;
                self.copy_view(&inside, &target)?;
            } else if source.is_file() {
                fs::copy(&source, &target).context(|| {
                    format!("cannot copy {} to {}", source.display(), target.display())
                })?;
            }
        }
        Ok(())
    }

    /// A sandbox built from scratch: the private root, the volume mounts, the hostname.
    fn fresh_view(&self) -> Enter {
        Enter::Create {
            root: self.base.join("root"),
            mounts: self.mounts.clone(),
            hostname: self.hostname.clone(),
        }
    }

    /// Runs one setup step inside a fresh sandbox and waits for it.
    fn run_step(
        &self,
        spawner: PodSpawner,
        argv: &[String],
        user: User,
        stdin: Option<String>,
    ) -> Result<()> {
        let mut cmd = self.command(argv, user, self.fresh_view(), false)?;
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = spawner
            .run(move || cmd.spawn())
            .context(|| format!("cannot start {} in container {}", argv[0], self.spec.name))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(input.as_bytes());
        }
        let status = child
            .wait()
            .context(|| format!("waiting for {}", argv[0]))?;
        if !status.success() {
            return Err(Error::new(format!(
                "{} failed ({status}); see the container log {}",
                argv[0],
                self.log.display()
            )));
        }
        Ok(())
    }

    /// Starts the container's main process.
    pub fn spawn(&self, spawner: PodSpawner) -> Result<Child> {
        let mut cmd = self.command(
            &self.program.argv,
            self.program.user,
            self.fresh_view(),
            false,
        )?;
        cmd.stdin(Stdio::null());
        spawner.run(move || cmd.spawn()).context(|| {
            format!(
                "cannot start {:?} for container {}",
                self.program.argv, self.spec.name
            )
        })
    }

    /// A command entering this container (created or joined), env set, output to the log.
    pub fn command(
        &self,
        argv: &[String],
        user: User,
        enter: Enter,
        session: bool,
    ) -> Result<Command> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::new(format!("container {} has no command", self.spec.name)))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(self.program.env.iter().map(|(k, v)| (k, v)));
        let log = self
            .open_log()
            .context(|| format!("cannot open {}", self.log.display()))?;
        let log2 = log
            .try_clone()
            .context(|| "cannot share the log file".into())?;
        cmd.stdout(log).stderr(log2);
        sandbox::configure(&mut cmd, enter, user, self.groups.clone(), session)?;
        Ok(cmd)
    }

    /// Removes the scratch space (not the log, not the volumes).
    pub fn remove_scratch(&self) {
        let root = self.base.join("root");
        if ensure_unmounted(&root).is_ok() {
            let _ = fs::remove_dir_all(&self.base);
        }
    }
}

fn covers(mount: &str, path: &str) -> bool {
    let mount = mount.trim_end_matches('/');
    mount.is_empty() || path == mount || path.starts_with(&format!("{mount}/"))
}

/// Host path of a container path, through the deepest mount holding it.
fn resolve(mounts: &[Request], path: &str) -> Option<PathBuf> {
    let m = mounts
        .iter()
        .filter(|m| covers(&m.target, path))
        .max_by_key(|m| m.target.len())?;
    let rest = path[m.target.trim_end_matches('/').len()..].trim_start_matches('/');
    Some(if rest.is_empty() {
        m.source.clone()
    } else {
        m.source.join(rest)
    })
}

/// Refuses to delete a root directory that still has mounts in the host's namespace (a
/// bind of host directories there would make a recursive delete reach the host's files).
fn ensure_unmounted(root: &Path) -> Result<()> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root_str = root.display().to_string();
    if let Some(line) = mountinfo.lines().find(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|p| p == root_str || p.starts_with(&format!("{root_str}/")))
    }) {
        return Err(Error::new(format!(
            "{} still has mounts in the host namespace ({line}); not deleting it",
            root.display()
        )));
    }
    Ok(())
}

fn write_private(path: &Path, content: &str, owner: User) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .context(|| format!("cannot create {}", path.display()))?;
    f.write_all(content.as_bytes())
        .context(|| format!("cannot write {}", path.display()))?;
    chown(path, owner)
}

fn chown(path: &Path, user: User) -> Result<()> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .context(|| format!("cannot chown {} to uid {}", path.display(), user.uid))
}

/// Gives a data directory to the server's user when another one owns it (e.g. restored by root).
fn chown_tree(path: &Path, user: User) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).context(|| format!("cannot read {}", path.display()))?;
    if meta.uid() != user.uid {
        chown(path, user)?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).context(|| format!("cannot list {}", path.display()))? {
            let entry = entry.context(|| format!("cannot list {}", path.display()))?;
            chown_tree(&entry.path(), user)?;
        }
    }
    Ok(())
}
