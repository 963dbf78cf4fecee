//! The shell scripts run inside the tools pods (by exec). Pure text, shown verbatim in the
//! runbook. Connection settings and the password come from the pod's libpq environment
//! (`PGHOST`, `PGPASSWORD`, ...), never from these scripts.
//!
//! Long work (dump, restore) runs detached from the exec session: a script starts it under
//! `setsid nohup`, records its pid in the container's `/tmp` (so a replaced pod counts as "not
//! running") and the exit code on the volume when it ends. A rerun reattaches by reading those
//! markers instead of starting again; a job that failed is started anew by the next run (its
//! log kept as `<name>.failed.log`).

use crate::verify::sql;

use super::{BACKUP_MOUNT, COPY_DIR, DUMP_DIR};

/// What a `start_*` script printed: the state of the detached job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Started,
    Running,
    /// Finished earlier with this exit code.
    Finished(i32),
}

/// Parses the `state=...` line printed by the start and poll scripts.
pub fn parse_job_state(output: &str) -> Option<JobState> {
    let line = output.lines().rev().find(|l| l.starts_with("state="))?;
    match line.trim_start_matches("state=").trim() {
        "started" => Some(JobState::Started),
        "running" => Some(JobState::Running),
        other => other
            .strip_prefix("finished:")
            .and_then(|c| c.trim().parse().ok())
            .map(JobState::Finished),
    }
}

fn detached(name: &str, reset: &str, work: &str) -> String {
    detached_script(BACKUP_MOUNT, name, reset, work)
}

/// Starts `work` (no single quotes in it) detached in `dir`, or reports it running or done.
pub fn detached_script(dir: &str, name: &str, reset: &str, work: &str) -> String {
    format!(
        r#"set -eu
cd {dir}
if [ -f {name}.exit ]; then
  code=$(cat {name}.exit)
  if [ "$code" = 0 ]; then echo state=finished:0; exit 0; fi
  mv -f {name}.log {name}.failed.log 2>/dev/null || true
  rm -f {name}.exit
  echo "previous=failed:$code"
fi
if [ -f /tmp/{name}.pid ] && kill -0 "$(cat /tmp/{name}.pid)" 2>/dev/null; then echo state=running; exit 0; fi
{reset}
S=; command -v setsid >/dev/null 2>&1 && S=setsid
$S nohup sh -c '{work} >{dir}/{name}.log 2>&1; echo $? >{dir}/{name}.exit.tmp; mv {dir}/{name}.exit.tmp {dir}/{name}.exit' </dev/null >/dev/null 2>&1 &
echo $! >/tmp/{name}.pid
echo state=started"#
    )
}

/// The exit code of an earlier attempt that failed, when a start script began anew after it
/// (its log is kept as `<name>.failed.log`).
pub fn previous_failure(output: &str) -> Option<i32> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("previous=failed:"))
        .and_then(|c| c.trim().parse().ok())
}

/// Makes the next start script begin anew: the finished job's result is discarded.
pub fn discard(name: &str) -> String {
    format!("rm -f {}/{name}.exit", job_dir(name))
}

/// Where a detached job keeps its markers and log: the dump on the backup volume, the copy
/// pod's jobs (copy, subscribe) in its scratch directory.
pub fn job_dir(name: &str) -> &'static str {
    if name == "dump" {
        BACKUP_MOUNT
    } else {
        COPY_DIR
    }
}

/// Starts `pg_dump` (directory format, `jobs` workers) unless it runs or ran already.
/// Uncompressed: the backup volume is sized for it, and compression made the dump CPU-bound
/// (level 6 took 3.6 times as long as level 0 on two cores for a quarter of the size).
pub fn start_dump(jobs: u32) -> String {
    detached(
        "dump",
        &format!("rm -rf {DUMP_DIR} dump.log dump.sha256 dump.toc"),
        &format!(
            "pg_dump --format=directory --jobs={jobs} --compress=0 --no-password --verbose --file={DUMP_DIR}"
        ),
    )
}

/// Reports a detached job's state and the bytes it has produced so far (`du -sk`).
pub fn poll(name: &str, measure: &str) -> String {
    let dir = job_dir(name);
    format!(
        r#"cd {dir}
if [ -f {name}.exit ]; then echo "state=finished:$(cat {name}.exit)"
elif [ -f /tmp/{name}.pid ] && kill -0 "$(cat /tmp/{name}.pid)" 2>/dev/null; then echo state=running
else echo state=finished:255; fi
echo "bytes=$({measure})""#
    )
}

pub fn poll_dump() -> String {
    poll(
        "dump",
        &format!("du -sk {DUMP_DIR} 2>/dev/null | cut -f1 | awk '{{print $1*1024}}'"),
    )
}

/// Parses the `bytes=` line of a poll.
pub fn parse_bytes(output: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("bytes="))
        .and_then(|v| v.trim().parse().ok())
}

/// The last lines of a job's log, for an error report.
pub fn log_tail(name: &str) -> String {
    format!(
        "tail -n 20 {}/{name}.log 2>/dev/null || true",
        job_dir(name)
    )
}

/// Checks the archive: the TOC is readable, every table's data file is there; then records
/// a SHA-256 of every file and prints the hash of that list (the archive's checksum).
pub fn verify_archive() -> String {
    format!(
        r#"set -eu
cd {BACKUP_MOUNT}
pg_restore --list {DUMP_DIR} >dump.toc
entries=$(grep -c ' TABLE DATA ' dump.toc || true)
files=$(ls {DUMP_DIR} | grep -c '^[0-9][0-9]*\.dat' || true)
echo "entries=$entries"
echo "files=$files"
(cd {DUMP_DIR} && find . -type f | LC_ALL=C sort | xargs sha256sum) >dump.sha256
echo "sha256=$(sha256sum dump.sha256 | cut -d' ' -f1)"
echo "bytes=$(du -sk {DUMP_DIR} | cut -f1 | awk '{{print $1*1024}}')""#
    )
}

/// Re-checks every file against the recorded list and prints the list's hash.
pub fn check_archive() -> String {
    format!(
        r#"set -eu
cd {DUMP_DIR}
sha256sum -c --quiet {BACKUP_MOUNT}/dump.sha256
echo "sha256=$(sha256sum {BACKUP_MOUNT}/dump.sha256 | cut -d' ' -f1)""#
    )
}

/// `key=value` lines of a script's output.
pub fn field<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::trim)
    })
}

/// The fingerprint query through psql with the pod's libpq environment (an argv: no shell).
pub fn fingerprint(method: sql::HashMethod) -> Vec<String> {
    psql(&sql::fingerprint_query(method))
}

/// Exact row counts only (same output shape, hashes `0`), through psql likewise.
pub fn row_counts() -> Vec<String> {
    psql(&sql::row_count_query())
}

/// psql's argv for one SQL text: unaligned tuples only, stopping at the first error.
pub fn psql(sql: &str) -> Vec<String> {
    [
        "psql",
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ]
    .map(String::from)
    .to_vec()
}

/// Streams the archive as tar on stdout (for `--local-copy`).
pub fn archive_tar() -> String {
    format!("cd {BACKUP_MOUNT} && tar -cf - dump dump.sha256")
}

/// The SHA-256 of exactly the tar [`archive_tar`] streams (GNU tar output is stable for
/// unchanged files).
pub fn archive_tar_sha256() -> String {
    format!(
        "set -eu; {} | sha256sum | cut -d' ' -f1 | sed 's/^/sha256=/'",
        archive_tar()
    )
}

/// The size of the database the pod is connected to (an argv).
pub fn database_size() -> Vec<String> {
    psql(sql::database_size_query())
}

/// Runs `argv` inside a release's PostgreSQL pod as the app's user, over the Unix socket,
/// with the credentials from the container's own environment.
pub fn in_postgres_pod(argv: &[String]) -> Vec<String> {
    let mut out = vec![
        "sh".to_string(),
        "-c".to_string(),
        r#"export PGPASSWORD="${POSTGRES_PASSWORD:-$(cat "${POSTGRES_PASSWORD_FILE:-/dev/null}" 2>/dev/null)}" PGUSER="${POSTGRES_USER:-postgres}" PGDATABASE="${POSTGRES_DB:-${POSTGRES_DATABASE:-postgres}}"; exec "$@""#.to_string(),
        "sh".to_string(),
    ];
    out.extend(argv.iter().cloned());
    out
}

/// Marks of writes to the database the pod is connected to (an argv): see
/// [`sql::write_marks_query`].
pub fn write_marks() -> Vec<String> {
    psql(sql::write_marks_query())
}

/// An argv as one pasteable shell line.
pub fn argv_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote_if_needed(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as is when the shell reads it so, else single-quoted.
pub fn shell_quote_if_needed(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,".contains(&b))
    {
        word.to_string()
    } else {
        shell_quote(word)
    }
}

/// Single-quotes a string for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r#"'\''"#))
}

/// Quotes an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_is_the_dump_directory_on_the_backup_volume() {
        assert_eq!(
            DUMP_DIR.strip_prefix(BACKUP_MOUNT),
            Some("/dump"),
            "archive_tar streams `dump` from {BACKUP_MOUNT}"
        );
    }

    #[test]
    fn job_states_parse_from_the_last_state_line() {
        assert_eq!(
            parse_job_state("noise\nstate=started\n"),
            Some(JobState::Started)
        );
        assert_eq!(parse_job_state("state=running"), Some(JobState::Running));
        assert_eq!(
            parse_job_state("state=finished:0\nbytes=12"),
            Some(JobState::Finished(0))
        );
        assert_eq!(
            parse_job_state("state=finished:1"),
            Some(JobState::Finished(1))
        );
        assert_eq!(parse_job_state("nothing"), None);
        assert_eq!(
            previous_failure("previous=failed:1\nstate=started"),
            Some(1)
        );
        assert_eq!(previous_failure("state=started"), None);
        assert_eq!(parse_bytes("state=running\nbytes=4096\n"), Some(4096));
    }

    #[test]
    fn fields_are_read_by_exact_key() {
        let out = "entries=12\nfiles=12\nsha256=abc\nbytes=10";
        assert_eq!(field(out, "sha256"), Some("abc"));
        assert_eq!(field(out, "files"), Some("12"));
        assert_eq!(field(out, "sha"), None);
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }
}
