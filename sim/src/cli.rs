//! `la-sim` command line: clap definitions only.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "la-sim",
    version,
    about = "A simulated Kubernetes cluster: real API server, PostgreSQL and Redis pods as real processes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the sim (foreground until SIGINT/SIGTERM, or --background); prints the kubeconfig path
    Start {
        #[arg(long)]
        state_dir: PathBuf,
        /// API server port on 127.0.0.1 (0: any free port)
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Detach, write a pid file and return once the API answers
        #[arg(long)]
        background: bool,
        /// Run no processes: every pod is Ready at once (API-level tests)
        #[arg(long)]
        no_runtime: bool,
        /// How many past changes a watch can resume from (kube-apiserver's
        /// --default-watch-cache-size); an older resourceVersion gets 410 Expired
        #[arg(long, default_value_t = crate::store::DEFAULT_WATCH_CACHE_SIZE)]
        watch_cache_size: usize,
    },
    /// Stop the sim running on a state directory; waits until every process it started is gone
    Stop {
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Whether a sim runs on a state directory, its address and kubeconfig
    Status {
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Print the kubeconfig path (of the admin, or of a named identity)
    Kubeconfig {
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long, default_value = "admin")]
        identity: String,
    },
    /// Add an identity with RBAC-like rules (a JSON list of {verbs, apiGroups, resources,
    /// resourceNames?, namespaces?}); prints its kubeconfig path
    Identity {
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long)]
        name: String,
        /// File with the rules as JSON
        #[arg(long)]
        rules: PathBuf,
    },
    /// Install a chart archive through real helm and wait until every pod is Ready
    Install {
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long)]
        chart: PathBuf,
        #[arg(long)]
        values: Option<PathBuf>,
        #[arg(long, default_value = "cognigy-live-agent")]
        release: String,
        #[arg(short = 'n', long, default_value = "live-agent")]
        namespace: String,
        /// helm binary (default: `helm` on PATH)
        #[arg(long, default_value = "helm")]
        helm: PathBuf,
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
    },
    /// Load a generated Live Agent database of about SIZE into a release's PostgreSQL and its
    /// attachment files into the `live-agent` volume
    Seed {
        #[arg(long)]
        state_dir: PathBuf,
        /// e.g. 5MB, 200MB, 2GB
        #[arg(long)]
        size: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "cognigy-live-agent")]
        release: String,
        #[arg(short = 'n', long, default_value = "live-agent")]
        namespace: String,
        #[arg(long, default_value = "live_agent_production")]
        database: String,
        #[arg(long, default_value = "postgres")]
        user: String,
    },
    /// Inject a fault into the running sim
    Fault {
        #[arg(long)]
        state_dir: PathBuf,
        #[command(subcommand)]
        fault: Fault,
    },
}

#[derive(Debug, Subcommand)]
pub enum Fault {
    /// Make the API answer an error status for a while
    Api {
        #[arg(long, default_value_t = 503)]
        code: u16,
        #[arg(long)]
        seconds: u64,
        /// Only paths containing this string fail
        #[arg(long, default_value = "")]
        path_contains: String,
        /// Only requests with this HTTP method fail (e.g. POST: creations fail, reads pass)
        #[arg(long, default_value = "")]
        method: String,
    },
    /// Kill a pod's processes (one container, or all); its restart policy applies
    Kill {
        #[arg(short = 'n', long)]
        namespace: String,
        pod: String,
        #[arg(short = 'c', long, default_value = "")]
        container: String,
    },
}
