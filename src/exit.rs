//! Exit codes: stable, documented in the README, used by scripts that drive the plugin.

/// The process exit code of every `la-migrate` run.
///
/// The numbers are part of the interface: scripts branch on them. Never renumber a variant;
/// add new ones at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything asked for was done (or, with `--dry-run`, planned).
    Success = 0,
    /// An unexpected failure: an I/O error, a step that failed in the cluster.
    Failure = 1,
    /// The command line was wrong (unknown flag, missing argument).
    Usage = 2,
    /// An input file is unusable: unreadable, invalid YAML, not a mapping, conflicting keys.
    InvalidInput = 3,
    /// Something named does not exist: release, namespace, chart, file.
    NotFound = 4,
    /// An output file exists and overwriting it was not asked for.
    OutputExists = 5,
    /// A destructive step needs confirmation and none was given (`--yes`, or a typed answer).
    Refused = 6,
    /// The Kubernetes identity lacks a permission the plan needs.
    PermissionDenied = 7,
    /// The cluster or release is not in a state the step can start from.
    Precondition = 8,
    /// Verification found a difference (backup or restore row counts, hashes, versions).
    VerificationFailed = 9,
    /// Another run holds the migration lock.
    Locked = 10,
    /// `helm`, or a command inside the cluster, failed.
    External = 11,
    /// Interrupted (Ctrl-C); rerun the same command to resume.
    Interrupted = 130,
}

impl ExitCode {
    /// The code as the process returns it.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Every code, in order: the README's table is checked against this list.
    pub const ALL: [ExitCode; 13] = [
        ExitCode::Success,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::InvalidInput,
        ExitCode::NotFound,
        ExitCode::OutputExists,
        ExitCode::Refused,
        ExitCode::PermissionDenied,
        ExitCode::Precondition,
        ExitCode::VerificationFailed,
        ExitCode::Locked,
        ExitCode::External,
        ExitCode::Interrupted,
    ];

    /// The stable name used in `--output json` error documents.
    pub fn name(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Failure => "failure",
            ExitCode::Usage => "usage",
            ExitCode::InvalidInput => "invalid-input",
            ExitCode::NotFound => "not-found",
            ExitCode::OutputExists => "output-exists",
            ExitCode::Refused => "refused",
            ExitCode::PermissionDenied => "permission-denied",
            ExitCode::Precondition => "precondition",
            ExitCode::VerificationFailed => "verification-failed",
            ExitCode::Locked => "locked",
            ExitCode::External => "external",
            ExitCode::Interrupted => "interrupted",
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_names_are_unique() {
        let mut codes: Vec<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), ExitCode::ALL.len());
        let mut names: Vec<&str> = ExitCode::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ExitCode::ALL.len());
    }

    #[test]
    fn readme_documents_every_exit_code() {
        let readme = include_str!("../README.md");
        for code in ExitCode::ALL {
            let row = format!("| {} | `{}` |", code.code(), code.name());
            assert!(
                readme.contains(&row),
                "README lacks the exit code row {row}"
            );
        }
    }
}
