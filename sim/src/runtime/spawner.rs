//! One long-lived thread that forks every process. `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked a process ends, so forking from short-lived threads (Tokio's
//! blocking pool, a pod's supervisor) would kill processes early; this thread lives as long
//! as the runtime. It also forks each process into its pod's PID namespace ([`PodSpawner`]).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

use super::pidns::{self, PodInit};

type Job = Box<dyn FnOnce() + Send>;

pub struct Spawner {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    /// The sim's own PID namespace, where the thread returns after forking into a pod's
    home_ns: OwnedFd,
}

impl Spawner {
    pub fn new() -> std::io::Result<Self> {
        let home_ns = std::fs::File::open("/proc/self/ns/pid")?.into();
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("la-sim-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })?;
        Ok(Spawner {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            home_ns,
        })
    }

    /// Runs `f` (which forks) on the spawner thread and returns its result.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let sent = match &*self.jobs.lock().expect("spawner lock") {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(std::io::Error::other("the runtime is shut down"));
        }
        rx.recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread ended")))
    }

    /// A new PID namespace for a pod, with its init.
    pub fn pod_init(&self) -> std::io::Result<PodInit> {
        let home = self.home_ns.as_raw_fd();
        self.run(move || PodInit::create(home))
    }

    /// Forks into the PID namespace of `init`'s pod.
    pub fn in_pod<'a>(&'a self, init: &PodInit) -> PodSpawner<'a> {
        PodSpawner {
            spawner: self,
            ns: init.ns(),
        }
    }

    /// Ends the thread (after every process is gone, or they would get SIGKILL).
    pub fn stop(&self) {
        self.jobs.lock().expect("spawner lock").take();
        if let Some(thread) = self.thread.lock().expect("spawner lock").take() {
            let _ = thread.join();
        }
    }
}

/// The spawner, forking into one pod's PID namespace. Borrows the namespace from the pod's
/// [`PodInit`], which outlives every use (each call waits for its fork).
#[derive(Clone, Copy)]
pub struct PodSpawner<'a> {
    spawner: &'a Spawner,
    ns: RawFd,
}

impl PodSpawner<'_> {
    /// Runs `f` (which forks) on the spawner thread, its children in the pod's namespace.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let (ns, home) = (self.ns, self.spawner.home_ns.as_raw_fd());
        self.spawner.run(move || {
            pidns::enter(ns)?;
            let result = f();
            pidns::enter(home).map_err(|e| {
                std::io::Error::other(format!(
                    "cannot return the spawner to the sim's PID namespace: {e}"
                ))
            })?;
            result
        })
    }
}
