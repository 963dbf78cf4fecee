//! Attachment files as Rails ActiveStorage's Disk service lays them out
//! (`<root>/<key[0..2]>/<key[2..4]>/<key>`), matching the `active_storage_blobs` rows of the
//! same seed byte for byte, and manifests (path -> SHA-256) to compare a directory before and
//! after a migration.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::SeedError;
use super::model;
use super::SeedOptions;

/// Relative path (with `/`) -> SHA-256 (lowercase hex) of every file under a root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: BTreeMap<String, String>,
    pub bytes: u64,
}

impl Manifest {
    /// Files of `self` that `other` lacks or holds with different content.
    pub fn missing_or_changed(&self, other: &Manifest) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|(path, sum)| match other.files.get(path) {
                None => Some(format!("{path}: missing")),
                Some(s) if s != sum => Some(format!("{path}: content differs")),
                Some(_) => None,
            })
            .collect()
    }
}

/// ActiveStorage Disk service path of a blob key, relative to the storage root.
pub fn blob_path(key: &str) -> String {
    format!("{}/{}/{key}", &key[0..2], &key[2..4])
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes every blob of the seed under `root` and returns the manifest of what it wrote.
pub fn write_attachments(root: &Path, opts: &SeedOptions) -> Result<Manifest, SeedError> {
    let plan = opts.plan();
    let mut manifest = Manifest::default();
    let mut failure = None;
    let io = model::for_each_blob(&plan, |_, _, blob| {
        let rel = blob_path(&blob.key);
        let path = root.join(&rel);
        let content = model::blob_content(plan.seed, &blob);
        let dir = path.parent().expect("blob paths have a directory");
        let written = fs::create_dir_all(dir)
            .map_err(|e| (dir.to_path_buf(), "cannot create directory", e))
            .and_then(|_| {
                fs::write(&path, &content).map_err(|e| (path.clone(), "cannot write", e))
            });
        if let Err((path, action, source)) = written {
            let kind = source.kind();
            failure = Some(SeedError::File {
                action,
                path,
                source,
            });
            return Err(kind.into());
        }
        manifest.bytes += content.len() as u64;
        manifest.files.insert(rel, sha256_hex(&content));
        Ok(())
    });
    match (io, failure) {
        (_, Some(e)) => Err(e),
        (Err(source), None) => Err(SeedError::File {
            action: "cannot write attachments under",
            path: root.to_path_buf(),
            source,
        }),
        (Ok(()), None) => Ok(manifest),
    }
}

/// The manifest of every regular file under `root` as it is on disk now.
pub fn read_manifest(root: &Path) -> Result<Manifest, SeedError> {
    let mut manifest = Manifest::default();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| SeedError::File {
            action: "cannot list",
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| SeedError::File {
                action: "cannot list",
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|source| SeedError::File {
                action: "cannot stat",
                path: path.clone(),
                source,
            })?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let content = fs::read(&path).map_err(|source| SeedError::File {
                    action: "cannot read",
                    path: path.clone(),
                    source,
                })?;
                let rel = path
                    .strip_prefix(root)
                    .expect("walked from root")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                manifest.bytes += content.len() as u64;
                manifest.files.insert(rel, sha256_hex(&content));
            }
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_follow_the_disk_service_layout() {
        assert_eq!(blob_path("xyzw1234abcd"), "xy/zw/xyzw1234abcd");
    }

    #[test]
    fn manifest_differences_name_the_file() {
        let a = Manifest {
            files: BTreeMap::from([("a/b/k".into(), "1".into()), ("c/d/l".into(), "2".into())]),
            bytes: 2,
        };
        let b = Manifest {
            files: BTreeMap::from([("a/b/k".into(), "9".into())]),
            bytes: 1,
        };
        assert_eq!(
            a.missing_or_changed(&b),
            vec!["a/b/k: content differs", "c/d/l: missing"]
        );
        assert!(a.missing_or_changed(&a).is_empty());
    }
}
