//! `la-sim`: parse, run, map the result to an exit code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use la_sim::cli::{Cli, Command, Fault};
use la_sim::{api, cluster, control, daemon};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LA_SIM_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("la-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Start {
            state_dir,
            port,
            background,
            no_runtime,
            watch_cache_size,
        } => {
            if background {
                println!(
                    "{}",
                    daemon::start_background(&state_dir, port, no_runtime, watch_cache_size)?
                        .display()
                );
                return Ok(());
            }
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(daemon::run_foreground(cluster::Options {
                state_dir,
                port,
                real_runtime: !no_runtime,
                watch_cache_size,
            }))
        }
        Command::Stop { state_dir } => {
            if !daemon::stop(&state_dir)? {
                eprintln!("la-sim: no sim runs on {}", state_dir.display());
            }
            Ok(())
        }
        Command::Status { state_dir } => match daemon::running_pid(&state_dir) {
            Some(pid) => {
                println!(
                    "running pid={pid} kubeconfig={}",
                    api::kubeconfig::path(&state_dir, "admin").display()
                );
                Ok(())
            }
            None => Err(format!(
                "no sim runs on {}; start one: la-sim start --background --state-dir {}",
                state_dir.display(),
                state_dir.display()
            )),
        },
        Command::Kubeconfig {
            state_dir,
            identity,
        } => {
            let p = api::kubeconfig::path(
                &std::fs::canonicalize(&state_dir).unwrap_or(state_dir.clone()),
                &identity,
            );
            if !p.exists() {
                return Err(format!("{} does not exist; start the sim (la-sim start --state-dir {}) or add the identity", p.display(), state_dir.display()));
            }
            println!("{}", p.display());
            Ok(())
        }
        Command::Identity {
            state_dir,
            name,
            rules,
        } => {
            let text = std::fs::read(&rules).map_err(|e| format!("{}: {e}", rules.display()))?;
            let rules: Vec<api::auth::Rule> =
                serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", rules.display()))?;
            let address = std::fs::read_to_string(state_dir.join("ready"))
                .map_err(|_| format!("no sim runs on {}", state_dir.display()))?;
            let ca =
                std::fs::read_to_string(state_dir.join("ca.crt")).map_err(|e| e.to_string())?;
            println!(
                "{}",
                cluster::add_identity(&state_dir, address.trim(), &ca, &name, rules)?.display()
            );
            Ok(())
        }
        Command::Install {
            state_dir,
            chart,
            values,
            release,
            namespace,
            helm,
            timeout_seconds,
        } => {
            let kubeconfig = api::kubeconfig::path(&state_dir, "admin");
            let mut cmd = std::process::Command::new(&helm);
            cmd.args(["install", &release]).arg(&chart).args([
                "-n",
                &namespace,
                "--create-namespace",
                "--wait",
            ]);
            cmd.arg("--timeout").arg(format!("{timeout_seconds}s"));
            if let Some(v) = &values {
                cmd.arg("-f").arg(v);
            }
            cmd.env("KUBECONFIG", &kubeconfig);
            let started = std::time::Instant::now();
            let status = cmd
                .status()
                .map_err(|e| format!("running {}: {e}", helm.display()))?;
            if !status.success() {
                return Err(format!("helm install failed ({status}); see `kubectl --kubeconfig {} get pods -n {namespace}`", kubeconfig.display()));
            }
            eprintln!(
                "la-sim: installed {release} in {namespace} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Seed {
            state_dir,
            size,
            seed,
            release,
            namespace,
            database,
            user,
        } => {
            let size_bytes =
                la_sim::seed::parse_size(&size).map_err(|e| format!("--size {size:?}: {e}"))?;
            let req = control::Request::Seed {
                namespace,
                release,
                size_bytes,
                seed,
                database,
                user,
            };
            send_and_print(&state_dir, &req, Duration::from_secs(3600))
        }
        Command::Fault { state_dir, fault } => {
            let req = match fault {
                Fault::Api {
                    code,
                    seconds,
                    path_contains,
                    method,
                } => control::Request::FaultApi(api::faults::ApiFault {
                    code,
                    seconds,
                    path_contains,
                    method: method.to_ascii_uppercase(),
                }),
                Fault::Kill {
                    namespace,
                    pod,
                    container,
                } => control::Request::Kill {
                    namespace,
                    pod,
                    container,
                },
            };
            send_and_print(&state_dir, &req, Duration::from_secs(30))
        }
    }
}

/// Sends a request to the running simulator and prints its answer; a refusal is the error.
fn send_and_print(
    state_dir: &std::path::Path,
    req: &control::Request,
    timeout: Duration,
) -> Result<(), String> {
    let reply = control::send(state_dir, req, timeout)?;
    if !reply.ok {
        return Err(reply.message);
    }
    println!("{}", reply.message);
    Ok(())
}
