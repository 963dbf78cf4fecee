//! The migration's phases, one file each, in the order they run: `prepare` (values,
//! passwords, PostgreSQL 15 beside PostgreSQL 11), `copy` (app off, the data copied and
//! proven; `dump` for `--keep-dump`), `cutover` (the point of no return: uninstall, volumes,
//! secrets, then `install` once), `finalize`, `verify`, `cleanup`. `executor` runs a plan's
//! steps; `context` is what each step gets; `jobs` follows work detached inside pods;
//! `values_secret` keeps the release's values in the cluster.

mod cleanup;
mod context;
mod copy;
mod cutover;
mod dump;
mod executor;
mod finalize;
mod install;
mod jobs;
pub mod overrides;
pub mod preflight;
mod prepare;
pub mod replicate;
mod rollback;
mod trust;
mod uids;
mod values_secret;
mod verify;

pub use context::{Confirmation, Runner};
pub use trust::check as check_state;
pub use values_secret::saved_password_key;
