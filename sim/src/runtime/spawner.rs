//! One long-lived thread that forks every process. `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked a process ends, so forking from short-lived threads (Tokio's
//! blocking pool, a pod's supervisor) would kill processes early; this thread lives as long
//! as the runtime.

use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

type Job = Box<dyn FnOnce() + Send>;

pub struct Spawner {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Spawner {
    pub fn new() -> std::io::Result<Self> {
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
        })
    }

    /// Runs `f` (which forks) on the spawner thread and returns its result.
    pub fn run<T: Send + 'static>(
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

    /// Ends the thread (after every process is gone, or they would get SIGKILL).
    pub fn stop(&self) {
        self.jobs.lock().expect("spawner lock").take();
        if let Some(thread) = self.thread.lock().expect("spawner lock").take() {
            let _ = thread.join();
        }
    }
}
