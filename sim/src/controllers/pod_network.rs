//! Pod addresses: each running sim claims its own `127.N.0.0/16` block, so several clusters
//! (parallel tests, a demo beside a test run) never hand out the same pod address.
//!
//! The claim is an exclusive `flock` on `<dir>/block-N.lock`, held for the kubelet's lifetime;
//! the kernel releases it when the process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where the claims live: shared by every sim on the machine.
pub fn default_lock_dir() -> PathBuf {
    std::env::temp_dir().join("la-sim-address-blocks")
}

/// A claimed `127.N.0.0/16` block.
#[derive(Debug)]
pub struct AddressBlock {
    second_octet: u8,
    _lock: File,
}

impl AddressBlock {
    /// Claims the first free block, trying 127.1/16 to 127.254/16.
    pub fn claim(lock_dir: &Path) -> std::io::Result<AddressBlock> {
        std::fs::create_dir_all(lock_dir)?;
        for octet in 1..=254u8 {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(lock_dir.join(format!("block-{octet}.lock")))?;
            // SAFETY: flock on a file descriptor this function owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(AddressBlock {
                    second_octet: octet,
                    _lock: file,
                });
            }
        }
        Err(std::io::Error::other(format!(
            "every pod address block 127.1-254.0.0/16 is claimed by another running sim (locks in {})",
            lock_dir.display()
        )))
    }

    /// The `index`th address of the block (1-based host part, skipping .0 and .255).
    pub fn address(&self, index: u32) -> Ipv4Addr {
        Ipv4Addr::new(
            127,
            self.second_octet,
            (index / 250) as u8,
            (index % 250 + 1) as u8,
        )
    }

    pub fn second_octet(&self) -> u8 {
        self.second_octet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_claims_in_one_directory_get_different_blocks_and_a_released_block_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = AddressBlock::claim(dir.path()).unwrap();
        let b = AddressBlock::claim(dir.path()).unwrap();
        assert_ne!(a.second_octet(), b.second_octet());
        assert_ne!(a.address(1), b.address(1));
        let freed = a.second_octet();
        drop(a);
        let c = AddressBlock::claim(dir.path()).unwrap();
        assert_eq!(c.second_octet(), freed);
    }

    #[test]
    fn addresses_skip_network_and_broadcast_host_parts() {
        let dir = tempfile::tempdir().unwrap();
        let a = AddressBlock::claim(dir.path()).unwrap();
        for i in [1, 249, 250, 251, 62_499] {
            let last = a.address(i).octets()[3];
            assert!((1..=250).contains(&last), "{i} -> {last}");
        }
    }
}
