//! "Everything the sim starts ends when it stops": a sim started in the background as the
//! README shows, the real 4.43.1 chart installed with real helm (PostgreSQL 11, Redis and the
//! idle app pods as processes), a process that leaves its pod's process group through
//! `kubectl exec`, then `la-sim stop`: no process of the sim is left. A pod's emptyDir lives
//! as long as that pod: one created again under the same name starts empty.

mod cluster_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cluster_support::SimProcess;

/// A process on this machine, as `/proc/<pid>/stat` and `cmdline` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    ppid: u32,
    /// Start time in clock ticks since boot: tells a process from a later one with its pid
    start: u64,
    cmdline: String,
}

fn processes() -> HashMap<u32, Proc> {
    let mut all = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            std::fs::read_to_string(entry.path().join("stat")),
            std::fs::read(entry.path().join("cmdline")),
        ) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may hold spaces.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let (Some(ppid), Some(start)) = (
            fields.get(1).and_then(|f| f.parse().ok()),
            fields.get(19).and_then(|f| f.parse().ok()),
        ) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        all.insert(
            pid,
            Proc {
                ppid,
                start,
                cmdline,
            },
        );
    }
    all
}

/// `root` and every process below it.
fn descendants(all: &HashMap<u32, Proc>, root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            all.iter()
                .filter(|(_, p)| p.ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found
}

#[test]
fn la_sim_stop_ends_every_process_of_the_sim_even_one_that_left_its_pods_process_group() {
    let sim = SimProcess::start_in_background();
    sim.install_4_43_1("3.19.0", "cognigy-live-agent", "live-agent");
    // A duration no other process on the machine uses, to find the sleeps by.
    let marker = format!("sleep 1000.{}", std::process::id());
    for pod in [
        "cognigy-live-agent-redis-master-0",
        "cognigy-live-agent-postgresql-0",
    ] {
        sim.kubectl(&[
            "exec",
            "-n",
            "live-agent",
            pod,
            "--",
            "sh",
            "-c",
            &format!("setsid nohup {marker} >/dev/null 2>&1 &"),
        ]);
    }
    let with_marker = |all: &HashMap<u32, Proc>| -> Vec<u32> {
        all.iter()
            .filter(|(_, p)| p.cmdline.trim_end() == marker)
            .map(|(pid, _)| *pid)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while with_marker(&processes()).len() < 2 {
        assert!(Instant::now() < deadline, "the sleeps did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The sim's processes: everything below it, the escaped sleeps wherever they went.
    let sim_pid: u32 = std::fs::read_to_string(sim.state_dir().join("sim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let before = processes();
    let mut ours = descendants(&before, sim_pid);
    ours.extend(with_marker(&before));
    let servers = ours
        .iter()
        .filter(|pid| {
            let c = &before[pid].cmdline;
            c.contains("redis-server") || c.contains("/postgres -D")
        })
        .count();
    assert_eq!(servers, 5, "PostgreSQL and 4 Redis servers: {ours:?}");

    let out = sim.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state_dir = sim.state_dir().display().to_string();
    let after = processes();
    let left: Vec<&Proc> = after
        .iter()
        .filter(|(pid, p)| {
            before
                .get(pid)
                .is_some_and(|b| b.start == p.start && ours.contains(pid))
                || p.cmdline.trim_end() == marker
                || p.cmdline.contains(&state_dir)
        })
        .map(|(_, p)| p)
        .collect();
    let report = format!("{left:?}");
    // Whatever this test started must not outlive it, even when it fails.
    for (pid, p) in &after {
        if p.cmdline.trim_end() == marker {
            // SAFETY: signal to a sleep this test started.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
    }
    assert!(left.is_empty(), "left running after la-sim stop: {report}");
}

/// A pod with an emptyDir at /work, idle.
const SCRATCH_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: scratch}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, "3600"]
    volumeMounts: [{name: work, mountPath: /work}]
  volumes: [{name: work, emptyDir: {}}]
"#;

#[test]
fn a_pod_created_again_under_its_name_starts_with_an_empty_empty_dir() {
    let sim = SimProcess::start_with_runtime();
    let file = sim.state_dir().join("scratch.yaml");
    std::fs::write(&file, SCRATCH_POD).unwrap();
    let running = |sim: &SimProcess| {
        sim.wait_for(
            &["get", "pod", "scratch", "-o", "jsonpath={.status.phase}"],
            "the pod to run",
            Duration::from_secs(60),
            |phase| phase == "Running",
        );
    };
    sim.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    running(&sim);
    sim.kubectl(&[
        "exec",
        "scratch",
        "--",
        "sh",
        "-c",
        "echo done > /work/marker",
    ]);
    assert_eq!(
        sim.kubectl(&["exec", "scratch", "--", "ls", "/work"]),
        "marker\n"
    );
    sim.kubectl(&["delete", "pod", "scratch", "--wait"]);
    sim.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    running(&sim);
    assert_eq!(
        sim.kubectl(&["exec", "scratch", "--", "ls", "-A", "/work"]),
        "",
        "the new pod sees the emptyDir of the pod deleted before it"
    );
}
