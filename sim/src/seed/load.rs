//! Streams the generated SQL straight into `psql`: nothing is staged on disk or in memory.

use std::fmt;
use std::io::BufWriter;
use std::time::{Duration, Instant};

use super::error::SeedError;
use super::generate::{self, Stats};
use super::psql::PgTarget;
use super::SeedOptions;

/// What [`load_into`] did, with figures for benchmarks.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub stats: Stats,
    pub elapsed: Duration,
    /// `pg_database_size` after the load.
    pub database_bytes: u64,
}

impl LoadReport {
    /// SQL megabytes (10^6) per second through psql into the server, indexes included.
    pub fn mb_per_s(&self) -> f64 {
        self.stats.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {:.1} MB of SQL ({} rows in {} tables) in {:.1} s ({:.1} MB/s); database size {:.1} MB; attachments described: {:.1} MB",
            self.stats.bytes as f64 / 1e6,
            self.stats.total_rows(),
            self.stats.rows.len(),
            self.elapsed.as_secs_f64(),
            self.mb_per_s(),
            self.database_bytes as f64 / 1e6,
            self.stats.attachment_bytes as f64 / 1e6,
        )
    }
}

/// Creates the schema in `target` and loads the dataset (see [`super::write_sql`] for what the
/// database may already hold), in one transaction: on failure nothing is left behind.
pub fn load_into(target: &PgTarget, opts: &SeedOptions) -> Result<LoadReport, SeedError> {
    let started = Instant::now();
    let mut psql = target.spawn_script(true)?;
    let stdin = psql.child.stdin.take().expect("stdin is piped");
    let written = generate::write_plan(&opts.plan(), BufWriter::with_capacity(1 << 20, stdin));
    let stats = match written {
        Ok(stats) => stats,
        Err(source) => {
            // A broken pipe means psql stopped reading: its own error says why.
            psql.finish(target, "load")?;
            return Err(SeedError::Stream {
                target: target.to_string(),
                source,
            });
        }
    };
    psql.finish(target, "load")?;
    let elapsed = started.elapsed();
    let rows = target.query("size query", "SELECT pg_database_size(current_database());")?;
    let database_bytes = rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| SeedError::Answer {
            what: "pg_database_size".into(),
            target: target.to_string(),
            line: format!("{rows:?}"),
        })?;
    Ok(LoadReport {
        stats,
        elapsed,
        database_bytes,
    })
}
