//! One long-lived thread that forks every process. `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked a process ends, so forking from short-lived threads (Tokio's
//! blocking pool, a pod's supervisor) would kill processes early; this thread lives as long
//! as the runtime. It also forks each process into its pod's PID and network namespaces
//! ([`PodSpawner`]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

use super::podns::{self, Namespaces, PodInit};

type Job = Box<dyn FnOnce() + Send>;

pub struct Spawner {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    /// The sim's own PID and network namespaces, where the thread returns after forking
    /// into a pod's
    home_pid: OwnedFd,
    home_net: OwnedFd,
}

impl Spawner {
    pub fn new() -> std::io::Result<Self> {
        let home_pid = std::fs::File::open("/proc/self/ns/pid")?.into();
        let home_net = std::fs::File::open("/proc/self/ns/net")?.into();
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
            home_pid,
            home_net,
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

    fn home(&self) -> Namespaces {
        Namespaces {
            pid: self.home_pid.as_raw_fd(),
            net: self.home_net.as_raw_fd(),
        }
    }

    /// New PID and network namespaces for a pod, with the PID namespace's init.
    pub fn pod_init(&self) -> std::io::Result<PodInit> {
        let home = self.home();
        self.run(move || PodInit::create(home))
    }

    /// Forks into the namespaces of `init`'s pod.
    pub fn in_pod<'a>(&'a self, init: &PodInit) -> PodSpawner<'a> {
        PodSpawner {
            spawner: self,
            ns: init.namespaces(),
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

/// The spawner, forking into one pod's namespaces. Borrows them from the pod's [`PodInit`],
/// which outlives every use (each call waits for its fork).
#[derive(Clone, Copy)]
pub struct PodSpawner<'a> {
    spawner: &'a Spawner,
    ns: Namespaces,
}

impl PodSpawner<'_> {
    /// Runs `f` (which forks) on the spawner thread, its children in the pod's namespaces.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let (ns, home) = (self.ns, self.spawner.home());
        self.spawner.run(move || {
            let result = podns::enter(ns).and_then(|()| f());
            podns::go_home(home).map_err(|e| {
                std::io::Error::other(format!(
                    "cannot return the spawner to the sim's namespaces: {e}"
                ))
            })?;
            result
        })
    }
}
