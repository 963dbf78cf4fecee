//! Command-line definitions only (clap). Resolution into typed settings is in `settings.rs`;
//! the work is in the library modules the commands call.
//!
//! Helm strips its own global flags (`-n`, `--kube-context`, `--kubeconfig`, `--debug`,
//! `--kube-*`) from a plugin's arguments and passes them as `HELM_*` variables. The same flags
//! are accepted here with the same meaning, for runs without helm. Helm 4's `--color` and
//! `--colour` are not stripped: helm 3.17 to 4.3 pass them to the plugin as typed, before or
//! after the plugin's name, so both spellings are accepted here. No flag of the plugin's own
//! reuses one of helm's global names for something else ([`HELM_GLOBAL_FLAGS`]).

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_RELEASE: &str = "cognigy-live-agent";
pub const DEFAULT_CHART: &str = "oci://cognigy.azurecr.io/helm/live-agent";
pub const DEFAULT_TARGET_VERSION: &str = "4.44.0";

/// Helm's global flags: the union of the `Flags:` sections of `helm --help` of helm 3.19.0
/// and 4.3.1 (`tests/plugin_helm.rs` checks this list against both binaries).
pub const HELM_GLOBAL_FLAGS: &[&str] = &[
    "--burst-limit",
    "--color",
    "--colour",
    "--content-cache",
    "--debug",
    "-h",
    "--help",
    "--kube-apiserver",
    "--kube-as-group",
    "--kube-as-user",
    "--kube-ca-file",
    "--kube-context",
    "--kube-insecure-skip-tls-verify",
    "--kube-tls-server-name",
    "--kube-token",
    "--kubeconfig",
    "-n",
    "--namespace",
    "--qps",
    "--registry-config",
    "--repository-cache",
    "--repository-config",
];

/// The helm global flags the plugin also takes, with helm's meaning: the kube flags for runs
/// without helm (under helm they arrive as `HELM_*` variables), help, and the colour choice
/// (under helm it arrives as typed).
pub const SHARED_WITH_HELM: &[&str] = &[
    "-h",
    "--help",
    "-n",
    "--namespace",
    "--kube-context",
    "--kubeconfig",
    "--color",
    "--colour",
];

#[derive(Debug, Parser)]
#[command(
    name = "la-migrate",
    version,
    about = "Migrate a Cognigy Live Agent release to the 4.44 Helm dependencies (PostgreSQL 15, Redis 7)",
    long_about = None,
    after_help = "Run as a helm plugin: `helm la-migrate 4.44 -n live-agent`. Helm's global flags \
                  (-n, --kube-context, --kubeconfig, --debug, --kube-*) reach the plugin through \
                  helm's environment."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// The command line, parsed; a usage error (clap's, or a repeatable flag split around the
/// phase name) otherwise.
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::Parser;
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(problem) = split_repeatable_flag(&args) {
        return Err(clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            format!("{problem}; give all of them before the phase name, or all after it\n"),
        ));
    }
    Cli::try_parse()
}

/// Repeatable flags of the migration, by the spellings of each. clap keeps the values of a
/// global flag from one side of a phase name only (those after it replace those before), so
/// giving them on both sides would silently drop some.
const REPEATABLE: &[(&str, &[&str])] = &[
    ("--set", &["--set"]),
    ("-f/--values", &["-f", "--values", "--values-override"]),
];

/// A repeatable flag given both before and after the phase name of `4.44` (argv without the
/// program name), which would lose the values before it: the usage error to give.
pub fn split_repeatable_flag(args: &[String]) -> Option<String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let migration = cli.find_subcommand("4.44")?;
    let phases: Vec<&str> = migration.get_subcommands().map(|c| c.get_name()).collect();
    // Options whose next word is their value (`--chart X`), so a value is never taken for
    // a phase name or a flag.
    let mut takes_value = Vec::new();
    for arg in cli.get_arguments().chain(migration.get_arguments()) {
        if arg.get_action().takes_values() {
            takes_value.extend(arg.get_long().map(|l| format!("--{l}")));
            takes_value.extend(arg.get_short().map(|c| format!("-{c}")));
            for alias in arg.get_all_aliases().unwrap_or_default() {
                takes_value.push(format!("--{alias}"));
            }
        }
    }
    let start = args.iter().position(|a| a == "4.44")? + 1;
    let mut after_phase = false;
    let mut seen: Vec<(&str, bool)> = Vec::new();
    let mut words = args[start..].iter();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        let flag = word.split('=').next().unwrap_or(word);
        if let Some((name, _)) = REPEATABLE
            .iter()
            .find(|(_, spellings)| spellings.contains(&flag))
        {
            if seen
                .iter()
                .any(|(n, side)| n == name && *side != after_phase)
            {
                return Some(format!(
                    "{name} was given both before and after the phase name: the values before it would be ignored"
                ));
            }
            seen.push((name, after_phase));
        }
        if word.starts_with('-') {
            if !word.contains('=') && takes_value.iter().any(|t| t == word) {
                words.next();
            }
        } else if !after_phase && phases.contains(&word.as_str()) {
            after_phase = true;
        }
    }
    None
}

/// Flags every command takes. Helm passes its own as environment variables; these win over it.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Namespace of the release [helm: -n, HELM_NAMESPACE]
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Kubeconfig context [helm: --kube-context, HELM_KUBECONTEXT]
    #[arg(long, global = true, value_name = "CONTEXT")]
    pub kube_context: Option<String>,

    /// Kubeconfig file [helm: --kubeconfig, KUBECONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Helm release name
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "LA_MIGRATE_RELEASE",
        hide_env_values = true,
        default_value = DEFAULT_RELEASE
    )]
    pub release: Option<String>,

    /// Output format: human-readable text, or JSON on stdout (`env`, `values`, `plan`,
    /// `status`, `--dry-run`: one document; the migration and its other phases: one JSON
    /// object per line, a stream of events ending in a summary)
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More logging on stderr (-v info, -vv debug, -vvv trace) [helm: --debug]
    #[arg(short = 'v', long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// When to colour stderr
    #[arg(long, visible_alias = "colour", global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

// Parsed once per run: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Live Agent 4.44 migration (PostgreSQL 11 -> 15, Redis 6 -> 7) and its phases
    #[command(name = "4.44")]
    V444(MigrationArgs),

    /// Print the resolved settings: namespace, release, kubeconfig, kube-context, apiserver,
    /// token, helm, under-helm, verbosity
    Env,
}

/// What the 4.44 migration works on.
#[derive(Debug, Args)]
#[command(next_help_heading = "Migration options")]
pub struct MigrationArgs {
    /// Chart to migrate to: an OCI or repo reference, a local .tgz archive, or a chart directory
    #[arg(long, value_name = "REF", default_value = DEFAULT_CHART)]
    pub chart: String,

    /// Chart version to migrate to (a 4.4x chart with PostgreSQL 15 and Redis 7) [default:
    /// 4.44.0; a local chart: the version in its Chart.yaml]
    #[arg(long = "version", value_name = "VERSION")]
    pub target_version: Option<String>,

    #[command(flatten)]
    pub run: RunArgs,

    /// Without a subcommand: the whole migration (resumes where a previous run stopped)
    #[command(subcommand)]
    pub command: Option<MigrationCommand>,
}

/// Seconds in `600`, `90s`, `10m` or `1h`.
fn parse_duration_seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 600, 90s, 10m, 1h)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    match n * factor {
        0 => Err("the duration must be at least 1s".to_string()),
        seconds => Ok(seconds),
    }
}

/// A cpu quantity for `--tools-cpu`: `500m`, `1`, `1.5`.
fn parse_cpu(text: &str) -> Result<String, String> {
    match crate::plan::quantity::parse_millicores(text) {
        Some(m) if m > 0 => Ok(text.trim().to_string()),
        _ => Err(format!(
            "{text:?} is not a cpu quantity (e.g. 500m, 1, 1.5)"
        )),
    }
}

/// A memory quantity for `--tools-memory`: `512Mi`, `1Gi`, `800M`.
fn parse_memory(text: &str) -> Result<String, String> {
    match crate::plan::quantity::parse_bytes(text) {
        Some(b) if b >= 16 << 20 => Ok(text.trim().to_string()),
        Some(_) => Err(format!(
            "{text:?} is too little memory for pg_dump (at least 16Mi)"
        )),
        None => Err(format!(
            "{text:?} is not a memory quantity (e.g. 512Mi, 1Gi)"
        )),
    }
}

/// How the migration runs: flags shared by the migration and each phase.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Print the plan as a runbook (or JSON with -o json) and change nothing
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Confirm destructive steps without asking
    #[arg(long, global = true)]
    pub yes: bool,

    /// Never ask: a destructive step without --yes is refused (exit 6), not a hang
    #[arg(long, global = true)]
    pub no_input: bool,

    /// Storage class of PostgreSQL 15's volume [default: that of PostgreSQL 11's claim]
    #[arg(long, global = true, value_name = "CLASS")]
    pub storage_class: Option<String>,

    /// Also keep a pg_dump archive of PostgreSQL 11 on a volume of its own (taken while the
    /// app is off, before the copy); needed by --local-copy
    #[arg(long, global = true)]
    pub keep_dump: bool,

    /// Fill PostgreSQL 15 by logical replication while the app runs; the app is down only
    /// for the cut-over (preflight says whether this release can, and if not, why)
    #[arg(long, global = true)]
    pub online: bool,

    /// Storage class of the dump volume (--keep-dump) [default: the cluster's default class]
    #[arg(long, global = true, value_name = "CLASS")]
    pub backup_storage_class: Option<String>,

    /// Dump volume size (--keep-dump) as a multiple of the database size
    #[arg(long, global = true, value_name = "FACTOR", default_value_t = crate::plan::options::DEFAULT_BACKUP_SIZE_FACTOR)]
    pub backup_size_factor: f64,

    /// Image with the PostgreSQL 15 client tools for the copy and the dump (air-gapped
    /// registries)
    #[arg(long, global = true, value_name = "IMAGE", default_value = crate::plan::options::DEFAULT_BACKUP_IMAGE)]
    pub backup_image: String,

    /// Cpu of each pod the plugin runs (copy, dump; PostgreSQL 15 where its chart sets none),
    /// as both request and limit (a
    /// ResourceQuota on cpu needs them); kept with the plan
    #[arg(long, global = true, value_name = "CPU", default_value = crate::plan::options::DEFAULT_TOOLS_CPU, value_parser = parse_cpu)]
    pub tools_cpu: String,

    /// Memory of each pod the plugin runs (copy, dump; PostgreSQL 15 where its chart sets
    /// none), as both request and limit; kept
    /// with the plan
    #[arg(long, global = true, value_name = "MEMORY", default_value = crate::plan::options::DEFAULT_TOOLS_MEMORY, value_parser = parse_memory)]
    pub tools_memory: String,

    /// Tables copied at a time, and parallel index builds and pg_dump workers
    #[arg(long, global = true, value_name = "N", default_value_t = 2)]
    pub jobs: u32,

    /// Also copy the dump to this file on this machine (a tar archive; with --keep-dump)
    #[arg(long, global = true, value_name = "PATH")]
    pub local_copy: Option<PathBuf>,

    /// Give the new release the old database and Redis passwords (with the 4.44 keys) instead
    /// of new ones
    #[arg(long, global = true)]
    pub keep_passwords: bool,

    /// How long helm may wait for a release operation (install, upgrade and its migration
    /// Job, uninstall): seconds, or with a unit (90s, 10m, 1h); kept with the plan. A
    /// release a killed helm left pending is taken over once this (plus a margin) has passed
    #[arg(long, global = true, value_name = "DURATION", default_value = "10m", value_parser = parse_duration_seconds)]
    pub helm_timeout: u64,

    /// Extra values file for install and upgrade (repeatable), e.g. image overrides; kept
    /// with the saved values. (`4.44 values` takes -f as its input instead.)
    #[arg(
        id = "values_files",
        short = 'f',
        long = "values",
        visible_alias = "values-override",
        global = true,
        value_name = "FILE"
    )]
    pub values_overrides: Vec<PathBuf>,

    /// Extra value for install and upgrade (repeatable), e.g.
    /// postgresql.image.repository=bitnamilegacy/postgresql
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Cleanup: also delete the Released volumes of the old PostgreSQL and Redis
    #[arg(long, global = true)]
    pub delete_old_volumes: bool,

    /// Cleanup: set the attachments volume's reclaim policy back to its original value
    #[arg(long, global = true)]
    pub restore_reclaim_policy: bool,
}

#[derive(Debug, Subcommand)]
pub enum MigrationCommand {
    /// Show the plan (preflight checks; changes nothing)
    Plan,
    /// App up: save values, stage passwords, start PostgreSQL 15 beside PostgreSQL 11
    Prepare,
    /// With --online, app up: PostgreSQL 15 filled by logical replication and proven
    Replicate,
    /// App to 0; copy PostgreSQL 11 into PostgreSQL 15 in the cluster and prove them equal
    /// (with --online: catch up, sync sequences, prove, drop the replication)
    Copy,
    /// Point of no return: uninstall, keep PostgreSQL 11's volume, install the target chart
    /// once on the copied database
    Cutover,
    /// Remove the onboarding flag from Redis
    Finalize,
    /// Check deployments, the attachments volume and row counts
    Verify,
    /// Remove the plugin's pods, dump and saved values (and, when asked, the old volumes)
    Cleanup,
    /// Back to the original release from any step: before the point of no return undo what
    /// was done; after it install the original chart again on PostgreSQL 11's retained volume
    Rollback,
    /// Show the recorded progress of the migration
    Status,
    /// Translate a <= 4.43 custom values file to the 4.44 keys (comments and layout kept)
    #[command(after_help = VALUES_HELP)]
    Values(ValuesArgs),
}

const VALUES_HELP: &str = "\
Outputs: without --out/--out-dir/--in-place the translation goes to stdout (one input, or
several with -o json). A report of each change (old.path -> new.path, line) and each warning
goes to stderr. With -o json, stdout holds one document:
  {\"files\":[{\"input\":..,\"output\":..,\"changes\":[{\"kind\",\"from\",\"to\",\"line\",..}],
   \"warnings\":[{\"path\",\"line\",\"message\"}],\"yaml\":..}]}
Nothing is written unless every input translates. Exit codes: 0 done, 1 a write failed,
2 wrong flags (e.g. several -f files to stdout), 3 invalid input (unreadable file, bad YAML,
not a mapping, conflicting keys), 4 input file, output directory or release not found,
5 output exists (use --force), 11 helm failed.

Examples:
  helm la-migrate 4.44 values -f custom-values.yaml > new-values.yaml
  helm la-migrate 4.44 values -f a.yaml -f b.yaml --out-dir translated/
  helm la-migrate 4.44 values -f custom-values.yaml --in-place
  helm la-migrate 4.44 values -n live-agent --out release-values-4.44.yaml";

/// `4.44 values`: input files, or the release's values; where the result goes.
#[derive(Debug, Args)]
pub struct ValuesArgs {
    /// Values file to translate (repeatable; each is translated on its own). Without it, the
    /// release's user-supplied values (`helm get values`) are translated.
    // The same id as the migration's -f/--values, which this one stands in for here.
    #[arg(id = "values_files", short = 'f', long = "values", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write the translation to FILE instead of stdout (one input only; an existing FILE
    /// only with --force)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["out_dir", "in_place"])]
    pub out: Option<PathBuf>,

    /// Write each translation to DIR/<input file name> (for several -f files)
    #[arg(long, value_name = "DIR", conflicts_with = "in_place")]
    pub out_dir: Option<PathBuf>,

    /// Rewrite each -f file in place, keeping the original as FILE.bak
    #[arg(long, requires = "values_files")]
    pub in_place: bool,

    /// Overwrite existing output files (and FILE.bak with --in-place)
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::collections::BTreeSet;

    #[test]
    fn tools_resources_take_kubernetes_quantities_and_refuse_anything_else() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("la-migrate").chain(args.iter().copied()))
        };
        let cli = parse(&["4.44", "--tools-cpu", "250m", "--tools-memory", "1Gi"]).unwrap();
        let Command::V444(m) = cli.command else {
            panic!("not 4.44")
        };
        assert_eq!(
            (m.run.tools_cpu.as_str(), m.run.tools_memory.as_str()),
            ("250m", "1Gi")
        );
        for (flag, value, says) in [
            (
                "--tools-cpu",
                "lots",
                "\"lots\" is not a cpu quantity (e.g. 500m, 1, 1.5)",
            ),
            ("--tools-cpu", "0", "\"0\" is not a cpu quantity"),
            (
                "--tools-memory",
                "512",
                "\"512\" is too little memory for pg_dump (at least 16Mi)",
            ),
            (
                "--tools-memory",
                "1GB",
                "\"1GB\" is not a memory quantity (e.g. 512Mi, 1Gi)",
            ),
        ] {
            let e = parse(&["4.44", flag, value]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn dash_f_is_an_override_for_the_migration_and_the_input_of_values() {
        let parse = |args: &[&str]| {
            let cli =
                Cli::try_parse_from(std::iter::once("la-migrate").chain(args.iter().copied()))
                    .unwrap();
            match cli.command {
                Command::V444(m) => m,
                Command::Env => panic!("not 4.44"),
            }
        };
        for args in [
            &[
                "4.44",
                "-f",
                "a.yaml",
                "--values-override",
                "b.yaml",
                "prepare",
            ][..],
            &["4.44", "prepare", "-f", "a.yaml", "--values", "b.yaml"],
        ] {
            let m = parse(args);
            assert_eq!(
                m.run.values_overrides,
                [PathBuf::from("a.yaml"), "b.yaml".into()]
            );
            assert!(matches!(m.command, Some(MigrationCommand::Prepare)));
        }
        let m = parse(&["4.44", "values", "-f", "old.yaml"]);
        let Some(MigrationCommand::Values(v)) = m.command else {
            panic!("not values")
        };
        assert_eq!(v.files, [PathBuf::from("old.yaml")]);
    }

    #[test]
    fn overrides_on_both_sides_of_the_phase_name_are_refused_not_dropped() {
        let split = |line: &str| {
            split_repeatable_flag(
                &line
                    .split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>(),
            )
        };
        assert!(split("4.44 -f a.yaml prepare --values b.yaml")
            .is_some_and(|e| e.starts_with("-f/--values was given both")));
        assert!(split("4.44 --set a=1 cutover --set=b=2")
            .is_some_and(|e| e.starts_with("--set was given both")));
        for fine in [
            "4.44 -f a.yaml -f b.yaml prepare --yes",
            "4.44 copy --set a=1 --set b=2",
            "4.44 --release copy --set a=1",
            "4.44 values -f a.yaml",
            "4.44 --set a=1 --dry-run",
            "env -o json",
        ] {
            assert_eq!(split(fine), None, "{fine}");
        }
    }

    /// Every flag spelling (`--long`, its aliases, `-s`) of a command and its subcommands.
    fn flags(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for a in cmd.get_arguments() {
            if let Some(long) = a.get_long() {
                out.insert(format!("--{long}"));
            }
            for alias in a.get_all_aliases().unwrap_or_default() {
                out.insert(format!("--{alias}"));
            }
            if let Some(short) = a.get_short() {
                out.insert(format!("-{short}"));
            }
            for alias in a.get_all_short_aliases().unwrap_or_default() {
                out.insert(format!("-{alias}"));
            }
        }
        for sub in cmd.get_subcommands() {
            flags(sub, out);
        }
    }

    fn all_flags() -> BTreeSet<String> {
        let mut cmd = Cli::command();
        cmd.build();
        let mut out = BTreeSet::new();
        flags(&cmd, &mut out);
        out
    }

    #[test]
    fn no_flag_of_the_plugin_reuses_a_helm_global_flag_for_something_else() {
        let ours = all_flags();
        let clashes: Vec<&String> = ours
            .iter()
            .filter(|f| HELM_GLOBAL_FLAGS.contains(&f.as_str()))
            .filter(|f| !SHARED_WITH_HELM.contains(&f.as_str()))
            .collect();
        assert!(
            clashes.is_empty(),
            "flags that helm reads as its own: {clashes:?}"
        );
        for shared in SHARED_WITH_HELM {
            assert!(
                HELM_GLOBAL_FLAGS.contains(shared),
                "{shared} is not a helm flag"
            );
            assert!(ours.contains(*shared), "the plugin lacks {shared}");
        }
    }

    /// What `la-migrate <args> --help` prints on a 100-column terminal.
    fn help(args: &[&str]) -> String {
        let mut cmd = Cli::command().term_width(100);
        let argv = std::iter::once("la-migrate")
            .chain(args.iter().copied())
            .chain(["--help"]);
        let err = cmd.try_get_matches_from_mut(argv).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        err.render().to_string()
    }

    #[test]
    fn help_texts_are_stable() {
        insta::assert_snapshot!("help", help(&[]));
        insta::assert_snapshot!("help_env", help(&["env"]));
        insta::assert_snapshot!("help_4_44", help(&["4.44"]));
        insta::assert_snapshot!("help_4_44_values", help(&["4.44", "values"]));
    }

    #[test]
    fn release_help_shows_its_default_and_variable() {
        let text = help(&["env"])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let expected = format!(
            "--release <NAME> Helm release name [env: LA_MIGRATE_RELEASE] [default: {DEFAULT_RELEASE}]"
        );
        assert!(text.contains(&expected), "{text}");
        let readme = include_str!("../README.md");
        assert!(
            readme.contains("LA_MIGRATE_RELEASE"),
            "README lacks LA_MIGRATE_RELEASE"
        );
    }

    #[test]
    fn both_spellings_of_helm_4s_colour_flag_take_helms_values() {
        for spelling in ["--color", "--colour"] {
            for (value, want) in [
                ("never", ColorChoice::Never),
                ("auto", ColorChoice::Auto),
                ("always", ColorChoice::Always),
            ] {
                let cli = Cli::try_parse_from(["la-migrate", "env", spelling, value])
                    .unwrap_or_else(|e| panic!("{spelling} {value}: {e}"));
                assert_eq!(cli.global.color, want, "{spelling} {value}");
            }
        }
    }
}
