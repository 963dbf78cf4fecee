//! `la-migrate 4.44 values`: read the inputs (files, or the release's values through helm),
//! translate each with `crate::values`, then write every output or none.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::ValuesArgs;
use crate::error::{Context, Error, Result};
use crate::exit::ExitCode;
use crate::helm::Helm;
use crate::output::Printer;
use crate::settings::Settings;
use crate::values::{self, Options, TranslateError, Translation};

/// One thing to translate.
struct Input {
    /// How reports name it: the path as given, or `release <name>`
    name: String,
    path: Option<PathBuf>,
    text: String,
}

/// Where one translation goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Stdout,
    File(PathBuf),
    /// Rewrite the input; the original is kept as the `.bak` path
    InPlace {
        path: PathBuf,
        backup: PathBuf,
    },
}

impl Output {
    fn describe(&self) -> String {
        match self {
            Output::Stdout => "-".into(),
            Output::File(p) | Output::InPlace { path: p, .. } => p.display().to_string(),
        }
    }
}

/// `dry_run` (`--dry-run`): translate and report, but write no file (a translation for
/// stdout is still printed).
pub fn run(settings: &Settings, printer: &Printer, args: &ValuesArgs, dry_run: bool) -> Result<()> {
    let inputs = read_inputs(settings, args)?;
    let outputs = plan_outputs(args, &inputs, printer.gathers_results(), &settings.release)?;
    check_outputs(&outputs, args.force)?;
    let opts = Options {
        release: settings.release.clone(),
    };
    let mut results = Vec::new();
    for input in &inputs {
        tracing::debug!(input = %input.name, release = %opts.release, "translating");
        let t =
            values::translate(&input.text, &opts).map_err(|e| translate_error(&input.name, e))?;
        tracing::info!(
            input = %input.name,
            changes = t.changes.len(),
            warnings = t.warnings.len(),
            "translated"
        );
        results.push(t);
    }
    for (output, (input, t)) in outputs.iter().zip(inputs.iter().zip(&results)) {
        if dry_run && !matches!(output, Output::Stdout) {
            printer.note(&format!("dry run: {} not written", output.describe()));
            continue;
        }
        tracing::debug!(input = %input.name, output = %output.describe(), "writing");
        write_output(output, input, t, args.force)?;
    }
    report(printer, &inputs, &outputs, &results)
}

fn read_inputs(settings: &Settings, args: &ValuesArgs) -> Result<Vec<Input>> {
    if args.files.is_empty() {
        let helm = Helm::from_settings(settings);
        tracing::info!(release = %settings.release, namespace = %settings.namespace, "reading the release's values through helm");
        let text = helm.get_values(&settings.release)?;
        return Ok(vec![Input {
            name: format!("release {}", settings.release),
            path: None,
            text,
        }]);
    }
    args.files
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            if path.is_dir() {
                return Err(Error::new(
                    ExitCode::InvalidInput,
                    format!("values file {name} is a directory"),
                )
                .hint("give -f/--values the path of a YAML file"));
            }
            let bytes = std::fs::read(path).map_err(|e| {
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    ExitCode::NotFound
                } else {
                    ExitCode::InvalidInput
                };
                Error::new(code, format!("cannot read values file {name}"))
                    .source(e)
                    .hint("check the path given to -f/--values")
            })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                Error::new(
                    ExitCode::InvalidInput,
                    format!("values file {name} is not UTF-8 text"),
                )
                .hint("save the file as UTF-8 and run again")
            })?;
            tracing::info!(file = %name, bytes = text.len(), "read values file");
            Ok(Input {
                name,
                path: Some(path.clone()),
                text,
            })
        })
        .collect()
}

fn usage(message: impl Into<String>, hint: &str) -> Error {
    Error::new(ExitCode::Usage, message).hint(hint)
}

fn plan_outputs(
    args: &ValuesArgs,
    inputs: &[Input],
    one_document: bool,
    release: &str,
) -> Result<Vec<Output>> {
    if args.in_place {
        return Ok(inputs
            .iter()
            .filter_map(|i| i.path.clone())
            .map(|path| {
                let mut backup = path.clone().into_os_string();
                backup.push(".bak");
                Output::InPlace {
                    path,
                    backup: backup.into(),
                }
            })
            .collect());
    }
    if let Some(out) = &args.out {
        if inputs.len() > 1 {
            return Err(usage(
                "--out names one file, but several -f files were given",
                "use --out-dir DIR to write each translation as DIR/<file name>",
            ));
        }
        return Ok(vec![Output::File(out.clone())]);
    }
    if let Some(dir) = &args.out_dir {
        if !dir.is_dir() {
            return Err(Error::new(
                ExitCode::NotFound,
                format!("output directory {} does not exist", dir.display()),
            )
            .hint(format!("create it first: mkdir -p {}", dir.display())));
        }
        let mut outs: Vec<Output> = Vec::new();
        for input in inputs {
            let name = match &input.path {
                Some(p) => p
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| p.clone()),
                None => PathBuf::from(format!("{release}-values.yaml")),
            };
            let out = Output::File(dir.join(name));
            if outs.contains(&out) {
                return Err(usage(
                    format!("two inputs would both be written to {}", out.describe()),
                    "translate files with the same name into different directories",
                ));
            }
            outs.push(out);
        }
        return Ok(outs);
    }
    if inputs.len() > 1 && !one_document {
        return Err(usage(
            "several -f files cannot all go to stdout",
            "use --out-dir DIR, --in-place, or -o json (one document holding every file)",
        ));
    }
    Ok(inputs.iter().map(|_| Output::Stdout).collect())
}

fn check_outputs(outputs: &[Output], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    for o in outputs {
        let (path, what) = match o {
            Output::Stdout => continue,
            Output::File(p) => (p, "output file"),
            Output::InPlace { backup, .. } => (backup, "backup file"),
        };
        if path.exists() {
            return Err(Error::new(
                ExitCode::OutputExists,
                format!("{what} {} exists", path.display()),
            )
            .hint("pass --force to overwrite it, or choose another path"));
        }
    }
    Ok(())
}

fn translate_error(name: &str, e: TranslateError) -> Error {
    let hint = match &e {
        TranslateError::Parse { .. } => {
            "fix the YAML at that line (indentation, quotes, a missing colon), then run again"
        }
        TranslateError::NotMapping { .. } => {
            "a values file is a mapping (`postgresql:`, `ingress:` ...); check that the right file was given"
        }
        TranslateError::Conflicts(cs) if cs.iter().any(|c| c.both_become.is_some()) => {
            "of an old and a new key keep the new one (chart 4.44 reads it); of two spellings \
             keep the one chart 4.43 reads (the message names it); delete the other, then run \
             again"
        }
        TranslateError::Conflicts(_) => {
            "keep the key chart 4.44 reads (the new one), delete the other, then run again"
        }
        TranslateError::Unsupported { .. } => {
            "change the file as the message says, or rename that key by hand (see `4.44 values` in the README)"
        }
        TranslateError::Verification(_) => {
            "rename the keys by hand (see `4.44 values` in the README); the file was not changed"
        }
    };
    Error::new(ExitCode::InvalidInput, format!("{name}: {e}")).hint(hint)
}

/// Writes through a temporary file in the target directory, so a reader never sees half a
/// file and an output that appeared meanwhile is not overwritten without --force.
fn write_output(output: &Output, input: &Input, t: &Translation, force: bool) -> Result<()> {
    let (path, backup) = match output {
        Output::Stdout => return Ok(()),
        Output::File(p) => (p, None),
        Output::InPlace { path, backup } => (path, Some(backup)),
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |what: &str| format!("cannot {what} {}", path.display());
    if let Some(backup) = backup {
        write_new(
            backup,
            dir,
            input.text.as_bytes(),
            force,
            input.path.as_deref(),
        )
        .map_err(|e| e.hint("check the directory's permissions; nothing was changed"))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir).context(ExitCode::Failure, || {
        fail("create a temporary file next to")
    })?;
    tmp.write_all(t.yaml.as_bytes())
        .context(ExitCode::Failure, || fail("write"))?;
    if let Some(src) = input.path.as_deref().filter(|_| backup.is_some()) {
        if let Ok(meta) = std::fs::metadata(src) {
            let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
        }
    }
    if force || backup.is_some() {
        tmp.persist(path)
            .map_err(|e| e.error)
            .context(ExitCode::Failure, || fail("write"))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| {
            Error::new(
                ExitCode::OutputExists,
                format!("output file {} exists", path.display()),
            )
            .source(e.error)
            .hint("pass --force to overwrite it, or choose another path")
        })?;
    }
    Ok(())
}

fn write_new(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    force: bool,
    perms_from: Option<&Path>,
) -> Result<()> {
    let fail = || format!("cannot write backup {}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).context(ExitCode::Failure, fail)?;
    tmp.write_all(bytes).context(ExitCode::Failure, fail)?;
    if let Some(Ok(meta)) = perms_from.map(std::fs::metadata) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    if force {
        tmp.persist(path)
            .map_err(|e| e.error)
            .context(ExitCode::Failure, fail)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| {
            Error::new(
                ExitCode::OutputExists,
                format!("backup file {} exists", path.display()),
            )
            .source(e.error)
            .hint("pass --force to overwrite it, or move it away")
        })?;
    }
    Ok(())
}

fn report(
    printer: &Printer,
    inputs: &[Input],
    outputs: &[Output],
    results: &[Translation],
) -> Result<()> {
    let files = || {
        let files: Vec<_> = inputs
            .iter()
            .zip(outputs)
            .zip(results)
            .map(|((i, o), t)| {
                json!({
                    "input": i.name,
                    "output": o.describe(),
                    "changes": t.changes,
                    "warnings": t.warnings,
                    "yaml": t.yaml,
                })
            })
            .collect();
        json!({ "files": files })
    };
    let text = |printer: &Printer| {
        for ((i, o), t) in inputs.iter().zip(outputs).zip(results) {
            let plural =
                |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
            printer.note(&format!(
                "{}: {}, {}",
                i.name,
                plural(t.changes.len(), "change"),
                plural(t.warnings.len(), "warning")
            ));
            for c in &t.changes {
                printer.note(&format!("  {c}"));
            }
            for w in &t.warnings {
                printer.warn(&format!("{}: {w}", i.name));
            }
            match o {
                Output::Stdout => printer.result(&t.yaml)?,
                Output::File(p) => printer.note(&format!("wrote {}", p.display())),
                Output::InPlace { path, backup } => printer.note(&format!(
                    "rewrote {} (original kept as {})",
                    path.display(),
                    backup.display()
                )),
            }
        }
        Ok(())
    };
    printer
        .output(files, text)
        .map_err(|e| Error::new(ExitCode::Failure, "cannot write to stdout").source(e))
}
