//! A deterministic, realistic Live Agent (Chatwoot) database and its attachment files, for
//! tests, the demo and benchmarks.
//!
//! Everything derives from a [`SeedOptions`] (target size and a `u64` seed): the same options
//! always produce the same bytes, on any machine. The generator never holds the dataset: rows
//! are derived from their ids and streamed, so several GB need no more memory than a few MB.
//!
//! ```no_run
//! use la_sim::seed::{self, PgTarget, SeedOptions};
//!
//! let opts = SeedOptions::new(seed::parse_size("50MB").unwrap(), 1);
//! let db = PgTarget::new("127.0.0.1", 5432, "postgres", "live_agent_production")
//!     .with_password("postgres");
//! let report = seed::load_into(&db, &opts)?;          // schema + rows, one transaction
//! eprintln!("{report}");
//! let files = seed::write_attachments("/srv/storage".as_ref(), &opts)?; // matching blobs
//! let before = seed::snapshot(&db)?;                  // counts + checksums per table
//! # Ok::<(), seed::SeedError>(())
//! ```
//!
//! - [`write_sql`]: the psql script (schema, `COPY` blocks, sequences, indexes) into any `Write`.
//! - [`load_into`]: pipes that script into `psql` (password via `PGPASSWORD` only).
//! - [`write_attachments`] / [`read_manifest`]: the blob files and their SHA-256 manifest.
//! - [`snapshot`]: per-table exact counts and content checksums, sequence values and
//!   `max(version)` of `schema_migrations`, comparable across PostgreSQL 11 and 15.
//!
//! Sizes: `size_bytes` is the approximate size of the SQL stream (the row data as `COPY`
//! text). On disk, PostgreSQL needs about 1.2 to 1.7 times that with indexes (a 500 MB seed:
//! about 630 MB on PostgreSQL 15); the attachment files add about half of it again, in one
//! file per 35 KB of SQL.

mod attachments;
mod clock;
mod copy;
mod error;
mod generate;
mod load;
mod model;
mod plan;
mod psql;
mod rng;
mod schema;
mod size;
mod text;
mod verify;

use std::io::{self, Write};

pub use attachments::{blob_path, read_manifest, write_attachments, Manifest};
pub use error::SeedError;
pub use generate::{active_storage_checksum, Stats};
pub use load::{load_into, LoadReport};
pub use plan::Plan;
pub use psql::{PgTarget, DEFAULT_PSQL};
pub use schema::{SCHEMA_MIGRATIONS, SCHEMA_VERSION, TABLES};
pub use size::parse_size;
pub use verify::{checksum_sql, snapshot, DbSnapshot, TableSum};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOptions {
    /// Approximate size of the row data in bytes (see the module docs); `0` gives the schema
    /// with `schema_migrations` and no other rows.
    pub size_bytes: u64,
    /// Same seed, same data.
    pub seed: u64,
}

impl SeedOptions {
    pub fn new(size_bytes: u64, seed: u64) -> Self {
        Self { size_bytes, seed }
    }

    /// The row counts and id ranges these options produce.
    pub fn plan(&self) -> Plan {
        Plan::for_size(self.size_bytes, self.seed)
    }
}

/// Writes the dataset as a psql script (like a plain `pg_dump`) into `out`. The script
/// expects an empty database, or one holding only the Rails schema markers
/// (`schema_migrations`, `ar_internal_metadata`) the migration Job creates, which it replaces;
/// and a role allowed to create the `pg_trgm` and `pgcrypto` extensions (the chart's
/// `postgres` user).
pub fn write_sql(opts: &SeedOptions, out: impl Write) -> io::Result<Stats> {
    generate::write_plan(&opts.plan(), out)
}

/// The schema, `schema_migrations` and `ar_internal_metadata` without data: what Rails'
/// `db:chatwoot_prepare` leaves in a fresh database.
pub fn write_schema_only(out: impl Write) -> io::Result<Stats> {
    write_sql(&SeedOptions::new(0, 0), out)
}
