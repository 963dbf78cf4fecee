use std::io;
use std::path::PathBuf;

/// Why seeding, loading or verifying failed; each variant names the object and the next step.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot run {program}: {source}\n  hint: install the PostgreSQL 15 client tools (scripts/install-test-deps.sh)")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("psql {what} on {target} failed ({status}): {stderr}\n  hint: check that the server is up and the connection details and password are right")]
    Psql {
        what: String,
        target: String,
        status: String,
        stderr: String,
    },
    #[error("writing the seed into psql ({target}) failed: {source}")]
    Stream { target: String, source: io::Error },
    #[error("unexpected answer from {target} to {what}: {line:?}")]
    Answer {
        what: String,
        target: String,
        line: String,
    },
}
