//! [`Runtime`]: the runtime's entry point, called by the kubelet loop and the exec endpoint.
//! Each pod has a supervisor thread that runs its init containers in order, then keeps its
//! containers running under the pod's restart policy and probes their readiness.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::container::Container;
use super::error::{Context, Error, Result};
use super::exec::{self, ExecChild};
use super::network::PodNetwork;
use super::podns::PodInit;
use super::readiness;
use super::spawner::Spawner;
use super::standin;
use super::subnet::{self, Subnet};
use super::tools::Tools;
use super::{ContainerState, PodSpec};

/// Time a container gets between its stop signal and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(100);
/// Restart back-off: doubles from 1 s up to 10 s (Kubernetes: 10 s up to 5 min, shortened
/// so tests see restarts quickly).
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Runs pods as real processes. Cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// Each pod has a PID and a network namespace of its own ([`PodInit`]), the latter on the
/// runtime's bridge with the pod's address ([`PodNetwork`]); every process of a container is
/// in its own process group with `PR_SET_PDEATHSIG(SIGKILL)`. Stopping a pod stops its
/// containers, then ends the namespaces, so no process of the pod outlives it, not even one
/// that left its process group; [`Runtime::shutdown`] stops everything, waits and removes the
/// bridge.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    state_dir: PathBuf,
    tools: Tools,
    helpers: PathBuf,
    spawner: Spawner,
    network: PodNetwork,
    pods: Mutex<HashMap<(String, String), Arc<Pod>>>,
}

struct Pod {
    spec: PodSpec,
    /// The pod's PID and network namespaces: every process of the pod is forked into them
    init: PodInit,
    containers: Vec<Arc<Container>>,
    /// Spec order: init containers, then containers
    states: Mutex<Vec<(String, ContainerState)>>,
    /// Main process id of each running container
    pids: Mutex<HashMap<String, u32>>,
    /// Successful starts of each container (spec order), for `restartCount`
    starts: Mutex<Vec<u32>>,
    /// Exec'd process ids, killed with the pod
    execs: Mutex<Vec<u32>>,
    stopping: AtomicBool,
    supervisor: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Runtime {
    /// A runtime keeping pod scratch space and logs under `state_dir`, its pods on a subnet
    /// of their own (claimed here, see [`Runtime::subnet`]). Needs root.
    pub fn new(state_dir: &Path, tools: Tools) -> Result<Self> {
        let helpers = state_dir.join("runtime").join("bin");
        std::fs::create_dir_all(&helpers)
            .context(|| format!("cannot create {}", helpers.display()))?;
        for (name, content) in [
            ("chatwoot-prepare", standin::script()),
            ("nslookup", standin::NSLOOKUP.to_string()),
            (super::RESOLV_CONF, "nameserver 127.0.0.1\n".to_string()),
        ] {
            let path = helpers.join(name);
            std::fs::write(&path, content)
                .context(|| format!("cannot write {}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .context(|| format!("cannot chmod {}", path.display()))?;
        }
        let spawner = Spawner::new().context(|| "cannot start the spawner thread".into())?;
        let network = PodNetwork::create(&subnet::default_lock_dir())?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                state_dir: state_dir.to_path_buf(),
                tools,
                helpers,
                spawner,
                network,
                pods: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The subnet pod addresses ([`PodSpec::ip`]) come from: [`Subnet::address`].
    pub fn subnet(&self) -> Subnet {
        self.inner.network.subnet()
    }

    /// Starts a pod: its network namespace with the pod's address, then its init containers
    /// one after another (each must exit 0), then its containers. Returns once the network is
    /// up; progress shows in [`Runtime::pod_state`]. Starting a pod that already runs (same
    /// namespace and name) is an error: stop it first.
    pub fn start_pod(&self, spec: &PodSpec) -> Result<()> {
        let key = (spec.namespace.clone(), spec.name.clone());
        let mut pods = self.inner.pods.lock().expect("pods lock");
        if pods.contains_key(&key) {
            return Err(Error::new(format!(
                "pod {}/{} is already running; stop it first",
                spec.namespace, spec.name
            )));
        }
        let containers: Vec<Arc<Container>> = spec
            .init_containers
            .iter()
            .chain(&spec.containers)
            .map(|c| {
                Arc::new(Container::new(
                    &self.inner.state_dir,
                    spec,
                    c,
                    &self.inner.tools,
                    &self.inner.helpers,
                ))
            })
            .collect();
        let waiting = |reason: &str| ContainerState::Waiting {
            reason: reason.into(),
            message: String::new(),
        };
        let states = containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let reason = if i < spec.init_containers.len() {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                };
                (c.spec.name.clone(), waiting(reason))
            })
            .collect();
        let init = self.inner.spawner.pod_init().context(|| {
            format!(
                "cannot create the namespaces of pod {}/{}",
                spec.namespace, spec.name
            )
        })?;
        let spawner = self.inner.spawner.in_pod(&init);
        if let Err(e) = self.inner.network.attach(init.pid(), spec.ip, |mut cmd| {
            spawner.run(move || cmd.spawn())
        }) {
            init.kill();
            self.inner.network.detach(spec.ip);
            return Err(Error::new(format!(
                "pod {}/{}: {e}",
                spec.namespace, spec.name
            )));
        }
        let pod = Arc::new(Pod {
            spec: spec.clone(),
            init,
            containers,
            states: Mutex::new(states),
            pids: Mutex::new(HashMap::new()),
            starts: Mutex::new(vec![0; spec.init_containers.len() + spec.containers.len()]),
            execs: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            supervisor: Mutex::new(None),
        });
        let inner = self.inner.clone();
        let supervised = pod.clone();
        let handle = thread::Builder::new()
            .name(format!("pod-{}", spec.name))
            .spawn(move || supervise(&inner, &supervised))
            .context(|| {
                format!(
                    "cannot start the supervisor of pod {}/{}",
                    spec.namespace, spec.name
                )
            })?;
        *pod.supervisor.lock().expect("supervisor lock") = Some(handle);
        pods.insert(key, pod);
        Ok(())
    }

    /// State of every init container and container of a pod, in spec order (init containers
    /// first); empty for an unknown pod.
    pub fn pod_state(&self, namespace: &str, name: &str) -> Vec<(String, ContainerState)> {
        self.pod(namespace, name)
            .map(|pod| pod.states.lock().expect("states lock").clone())
            .unwrap_or_default()
    }

    /// How often each container of a pod was restarted (`restartCount`): its starts after the
    /// first, in spec order (init containers first); empty for an unknown pod.
    pub fn restart_counts(&self, namespace: &str, name: &str) -> Vec<(String, u32)> {
        let Some(pod) = self.pod(namespace, name) else {
            return Vec::new();
        };
        let starts = pod.starts.lock().expect("starts lock");
        pod.containers
            .iter()
            .zip(starts.iter())
            .map(|(c, n)| (c.spec.name.clone(), n.saturating_sub(1)))
            .collect()
    }

    /// Stops a pod: the stop signal (SIGTERM; SIGINT for PostgreSQL, its fast shutdown) to
    /// every process group, SIGKILL after a 10 s grace period, then SIGKILL to whatever else
    /// runs in the pod's PID namespace; waits until all its processes are gone, then removes
    /// its network interface and scratch space (not its logs or volumes). Unknown pods are
    /// ignored.
    pub fn stop_pod(&self, namespace: &str, name: &str) {
        let pod = self
            .inner
            .pods
            .lock()
            .expect("pods lock")
            .remove(&(namespace.to_string(), name.to_string()));
        if let Some(pod) = pod {
            stop(&self.inner, &pod);
        }
    }

    /// Runs `argv` inside a running container's view (its `/etc/hosts`, volumes, `/tmp`, env,
    /// `PATH`, user), as `kubectl exec` does, with piped stdio or a pty. Must be called within
    /// a Tokio runtime (the child is a Tokio child).
    pub fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        tty: bool,
    ) -> Result<ExecChild> {
        let p = self
            .pod(namespace, pod)
            .ok_or_else(|| Error::new(format!("pod {namespace}/{pod} is not running")))?;
        let c = p
            .containers
            .iter()
            .find(|c| c.spec.name == container)
            .ok_or_else(|| {
                Error::new(format!(
                    "pod {namespace}/{pod} has no container {container:?}"
                ))
            })?;
        let pid = p
            .pids
            .lock()
            .expect("pids lock")
            .get(container)
            .copied()
            .ok_or_else(|| {
                Error::new(format!(
                    "container {container} of pod {namespace}/{pod} is not running"
                ))
            })?;
        let child = exec::spawn(c, pid, argv, tty, self.inner.spawner.in_pod(&p.init))?;
        if let Some(id) = child.child.id() {
            let mut execs = p.execs.lock().expect("execs lock");
            execs.retain(|pid| process_exists(*pid));
            execs.push(id);
        }
        Ok(child)
    }

    /// Fault injection: kills a container's processes with SIGKILL, as the kernel kills a
    /// container's cgroup (an OOM kill, a node's runtime dying): the main process, its group
    /// and every descendant, also those that left the group (PostgreSQL's backends call
    /// `setsid`). The pod's restart policy then applies as for a crash.
    pub fn kill_container(&self, namespace: &str, pod: &str, container: &str) {
        if let Some(p) = self.pod(namespace, pod) {
            if let Some(pid) = p.pids.lock().expect("pids lock").get(container) {
                kill_tree(*pid);
            }
        }
    }

    /// Stops every pod and waits for all processes to end.
    pub fn shutdown(&self) {
        let pods: Vec<Arc<Pod>> = self
            .inner
            .pods
            .lock()
            .expect("pods lock")
            .drain()
            .map(|(_, p)| p)
            .collect();
        let stoppers: Vec<_> = pods
            .into_iter()
            .map(|p| {
                let inner = self.inner.clone();
                thread::spawn(move || stop(&inner, &p))
            })
            .collect();
        for s in stoppers {
            let _ = s.join();
        }
        self.inner.spawner.stop();
        self.inner.network.remove();
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.inner
            .pods
            .lock()
            .expect("pods lock")
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for (_, pod) in self.pods.get_mut().map(std::mem::take).unwrap_or_default() {
            stop(self, &pod);
        }
        self.spawner.stop();
    }
}

fn stop(inner: &Inner, pod: &Pod) {
    pod.stopping.store(true, Ordering::SeqCst);
    let supervisor = pod.supervisor.lock().expect("supervisor lock").take();
    if let Some(handle) = supervisor {
        let _ = handle.join();
    }
    for pid in pod.execs.lock().expect("execs lock").drain(..) {
        signal_group(pid, libc::SIGKILL);
    }
    // Processes that left their group (setsid, daemons) end with the namespace.
    pod.init.kill();
    inner.network.detach(pod.spec.ip);
    for c in &pod.containers {
        c.remove_scratch();
    }
}

fn set_state(pod: &Pod, index: usize, state: ContainerState) {
    let mut states = pod.states.lock().expect("states lock");
    if states[index].1 != state {
        states[index].1 = state;
    }
}

/// One running (or restarting) container.
struct Slot {
    child: Option<Child>,
    restarts: u32,
    next_start: Instant,
    ready: bool,
    last_probe: Instant,
    done: bool,
}

fn supervise(inner: &Inner, pod: &Pod) {
    let n_init = pod.spec.init_containers.len();
    for i in 0..n_init {
        let mut restarts = 0;
        loop {
            match run_to_completion(inner, pod, i) {
                Some(0) => break,
                None => return finish(pod),
                Some(_) if pod.spec.restart_policy == "Never" => {
                    for j in n_init..pod.containers.len() {
                        set_state(
                            pod,
                            j,
                            ContainerState::Waiting {
                                reason: "PodInitializing".into(),
                                message: "an init container failed".into(),
                            },
                        );
                    }
                    return wait_for_stop(pod);
                }
                Some(code) => {
                    let delay = backoff(restarts);
                    restarts += 1;
                    set_state(pod, i, crash_loop(&pod.containers[i], code, delay));
                    if !sleep_unless_stopping(pod, delay) {
                        return finish(pod);
                    }
                }
            }
        }
    }
    let now = Instant::now();
    let mut slots: Vec<Slot> = (n_init..pod.containers.len())
        .map(|_| Slot {
            child: None,
            restarts: 0,
            next_start: now,
            ready: false,
            last_probe: now,
            done: false,
        })
        .collect();
    while !pod.stopping.load(Ordering::SeqCst) {
        for (k, slot) in slots.iter_mut().enumerate() {
            tend(inner, pod, n_init + k, slot);
        }
        thread::sleep(TICK);
    }
    for (k, slot) in slots.iter_mut().enumerate() {
        if let Some(child) = slot.child.take() {
            terminate(pod, n_init + k, child);
        }
    }
    finish(pod);
}

/// One step of a long-running container's life: start when due, reap, probe.
fn tend(inner: &Inner, pod: &Pod, index: usize, slot: &mut Slot) {
    let container = &pod.containers[index];
    match &mut slot.child {
        None if !slot.done && Instant::now() >= slot.next_start => match start(inner, pod, index) {
            Ok(child) => {
                slot.child = Some(child);
                slot.ready = false;
                set_state(pod, index, ContainerState::Running { ready: false });
            }
            Err(e) => {
                container.log_line(&format!("la-sim: {e}"));
                let delay = backoff(slot.restarts);
                slot.restarts += 1;
                slot.next_start = Instant::now() + delay;
                set_state(
                    pod,
                    index,
                    ContainerState::Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message: format!(
                            "back-off {}s restarting failed container: {e}",
                            delay.as_secs()
                        ),
                    },
                );
            }
        },
        None => {}
        Some(child) => match child.try_wait() {
            Ok(Some(status)) => {
                pod.pids
                    .lock()
                    .expect("pids lock")
                    .remove(&container.spec.name);
                let code = exit_code(status);
                signal_group(child.id(), libc::SIGKILL);
                slot.child = None;
                let restart = match pod.spec.restart_policy.as_str() {
                    "Never" => false,
                    "OnFailure" => code != 0,
                    _ => true,
                };
                if restart {
                    let delay = backoff(slot.restarts);
                    slot.restarts += 1;
                    slot.next_start = Instant::now() + delay;
                    set_state(pod, index, crash_loop(container, code, delay));
                } else {
                    slot.done = true;
                    set_state(pod, index, terminated(code));
                }
            }
            Ok(None) => {
                let interval = if slot.ready {
                    Duration::from_secs(2)
                } else {
                    Duration::from_millis(200)
                };
                if slot.last_probe.elapsed() >= interval {
                    slot.last_probe = Instant::now();
                    let ready = readiness::is_ready(&container.program.readiness, pod.spec.ip);
                    if ready != slot.ready {
                        slot.ready = ready;
                        set_state(pod, index, ContainerState::Running { ready });
                    }
                    if ready && slot.restarts > 0 && slot.next_start.elapsed() > BACKOFF_MAX * 2 {
                        slot.restarts = 0;
                    }
                }
            }
            Err(_) => {}
        },
    }
}

fn start(inner: &Inner, pod: &Pod, index: usize) -> Result<Child> {
    let container = &pod.containers[index];
    let spawner = inner.spawner.in_pod(&pod.init);
    container.prepare(spawner)?;
    let child = container.spawn(spawner)?;
    pod.starts.lock().expect("starts lock")[index] += 1;
    pod.pids
        .lock()
        .expect("pids lock")
        .insert(container.spec.name.clone(), child.id());
    Ok(child)
}

/// Runs an init container until it exits; `None` when the pod is stopped meanwhile.
fn run_to_completion(inner: &Inner, pod: &Pod, index: usize) -> Option<i32> {
    let container = &pod.containers[index];
    let mut child = match start(inner, pod, index) {
        Ok(child) => child,
        Err(e) => {
            container.log_line(&format!("la-sim: {e}"));
            set_state(pod, index, terminated(128));
            return if pod.stopping.load(Ordering::SeqCst) {
                None
            } else {
                Some(128)
            };
        }
    };
    set_state(pod, index, ContainerState::Running { ready: false });
    loop {
        if pod.stopping.load(Ordering::SeqCst) {
            terminate(pod, index, child);
            return None;
        }
        if let Ok(Some(status)) = child.try_wait() {
            pod.pids
                .lock()
                .expect("pids lock")
                .remove(&container.spec.name);
            signal_group(child.id(), libc::SIGKILL);
            let code = exit_code(status);
            set_state(pod, index, terminated(code));
            return Some(code);
        }
        thread::sleep(TICK);
    }
}

/// Stop signal, grace period, SIGKILL; then makes sure the whole process group is gone.
fn terminate(pod: &Pod, index: usize, mut child: Child) {
    let container = &pod.containers[index];
    let pid = child.id();
    signal_group(pid, container.program.stop_signal);
    let deadline = Instant::now() + GRACE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                signal_group(pid, libc::SIGKILL);
                break child.wait().ok();
            }
        }
    };
    // Children of the main process (PostgreSQL backends) leave shortly after it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while group_exists(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    signal_group(pid, libc::SIGKILL);
    // Bounded: an orphan already dead but not yet reaped by init still counts as existing.
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_exists(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    pod.pids
        .lock()
        .expect("pids lock")
        .remove(&container.spec.name);
    set_state(pod, index, terminated(status.map(exit_code).unwrap_or(137)));
}

fn finish(pod: &Pod) {
    pod.pids.lock().expect("pids lock").clear();
}

fn wait_for_stop(pod: &Pod) {
    while !pod.stopping.load(Ordering::SeqCst) {
        thread::sleep(TICK);
    }
}

fn sleep_unless_stopping(pod: &Pod, delay: Duration) -> bool {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if pod.stopping.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(TICK);
    }
    !pod.stopping.load(Ordering::SeqCst)
}

fn backoff(restarts: u32) -> Duration {
    (BACKOFF_MIN * 2u32.saturating_pow(restarts.min(8))).min(BACKOFF_MAX)
}

fn crash_loop(container: &Container, code: i32, delay: Duration) -> ContainerState {
    ContainerState::Waiting {
        reason: "CrashLoopBackOff".into(),
        message: format!(
            "back-off {}s restarting failed container={} (exit code {code})",
            delay.as_secs(),
            container.spec.name
        ),
    }
}

fn terminated(code: i32) -> ContainerState {
    ContainerState::Terminated {
        exit_code: code,
        reason: if code == 0 { "Completed" } else { "Error" }.into(),
        message: String::new(),
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(128)
}

/// SIGKILLs `pid`'s group and every descendant of `pid`: stopped first, so none forks a
/// child the walk misses, then killed.
fn kill_tree(pid: u32) {
    let mut seen = vec![pid];
    let mut at = 0;
    while at < seen.len() {
        let p = seen[at];
        at += 1;
        // SAFETY: kill(2) with SIGSTOP on a process of this pod.
        unsafe { libc::kill(p as i32, libc::SIGSTOP) };
        for child in children(p) {
            if !seen.contains(&child) {
                seen.push(child);
            }
        }
    }
    signal_group(pid, libc::SIGKILL);
    for p in seen {
        // SAFETY: kill(2) with SIGKILL on a process found under the container's main process.
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
}

/// The children of `pid`, from each of its threads' `/proc/<pid>/task/<tid>/children`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn signal_group(pgid: u32, signal: i32) {
    // SAFETY: kill(2) on a process group id we created (process_group(0) makes pgid = pid).
    unsafe { libc::kill(-(pgid as i32), signal) };
}

fn group_exists(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(-(pgid as i32), 0) == 0 }
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
