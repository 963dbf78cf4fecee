//! The file `--local-copy` writes on the operator's machine: private (mode 0600, like the
//! archive it holds: every customer conversation), written as `<path>.partial` and moved to
//! `<path>` only when complete, never over an existing file, and the partial file removed
//! when the copy fails or is interrupted.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::exit::ExitCode;

/// Where a copy to `path` is written until it is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// The refusal for a file that is already there (`path`, or its partial file).
fn exists_error(file: &Path, path: &Path) -> Error {
    let left_over = if file == path {
        ""
    } else {
        " (a .partial file is what an interrupted copy left behind)"
    };
    Error::new(
        ExitCode::OutputExists,
        format!(
            "{} exists: --local-copy never overwrites a file",
            file.display()
        ),
    )
    .hint(format!(
        "move {} away{left_over}, or pass another path to --local-copy, then run again",
        file.display()
    ))
}

/// Refuses (exit 5, naming the file) when `path` or its partial file exists: checked before
/// a run changes anything, and again when the copy starts.
pub fn check_free(path: &Path) -> Result<()> {
    for file in [path.to_path_buf(), partial_path(path)] {
        if std::fs::symlink_metadata(&file).is_ok() {
            return Err(exists_error(&file, path));
        }
    }
    Ok(())
}

/// A copy being written: the partial file, removed on drop unless [`Partial::commit`]ted
/// (an error, or an interrupted run dropping the copy's future, leaves no partial file).
pub struct Partial {
    path: PathBuf,
    partial: PathBuf,
    committed: bool,
}

impl Partial {
    /// Creates `<path>.partial`, mode 0600, refusing to open any existing file.
    pub fn create(path: &Path) -> Result<(Partial, std::fs::File)> {
        check_free(path)?;
        let partial = partial_path(path);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&partial).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                return exists_error(&partial, path);
            }
            Error::new(
                ExitCode::Failure,
                format!("cannot create {}", partial.display()),
            )
            .source(e)
            .hint("pass a writable path to --local-copy, then run again")
        })?;
        Ok((
            Partial {
                path: path.to_path_buf(),
                partial,
                committed: false,
            },
            file,
        ))
    }

    pub fn partial(&self) -> &Path {
        &self.partial
    }

    /// Moves the complete copy to its path: a hard link (which fails on an existing file,
    /// unlike a rename) then the partial name removed.
    pub fn commit(mut self) -> Result<()> {
        std::fs::hard_link(&self.partial, &self.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                return exists_error(&self.path, &self.path);
            }
            Error::new(
                ExitCode::Failure,
                format!(
                    "cannot move {} to {}",
                    self.partial.display(),
                    self.path.display()
                ),
            )
            .source(e)
            .hint("check the directory of --local-copy, then run again: the copy is made anew")
        })?;
        self.committed = true;
        let _ = std::fs::remove_file(&self.partial);
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_private_and_moved_into_place_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.tar");
        let (partial, mut file) = Partial::create(&path).unwrap();
        std::io::Write::write_all(&mut file, b"archive").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(partial.partial()).unwrap().permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
        partial.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"archive");
        assert!(!partial_path(&path).exists());
    }

    #[test]
    fn a_copy_dropped_before_its_commit_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.tar");
        let (partial, _file) = Partial::create(&path).unwrap();
        assert!(partial_path(&path).exists());
        drop(partial);
        assert!(!partial_path(&path).exists());
        assert!(!path.exists());
    }

    #[test]
    fn an_existing_file_or_partial_file_is_refused_by_name_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.tar");
        std::fs::write(&path, "keep me").unwrap();
        let err = check_free(&path).unwrap_err();
        assert_eq!(err.code, ExitCode::OutputExists);
        assert!(err.message.contains(&path.display().to_string()));
        assert!(Partial::create(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");

        std::fs::remove_file(&path).unwrap();
        std::fs::write(partial_path(&path), "left over").unwrap();
        let err = Partial::create(&path).err().unwrap();
        assert!(err.message.contains("dump.tar.partial"), "{}", err.message);
        assert!(err.hint.unwrap().contains("interrupted copy"));
        assert_eq!(std::fs::read(partial_path(&path)).unwrap(), b"left over");
    }

    #[test]
    fn a_file_that_appears_while_copying_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.tar");
        let (partial, _file) = Partial::create(&path).unwrap();
        std::fs::write(&path, "someone else's").unwrap();
        assert_eq!(partial.commit().unwrap_err().code, ExitCode::OutputExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
        assert!(!partial_path(&path).exists());
    }
}
