//! Online (`--online`): PostgreSQL 15 filled by logical replication while the app runs, then
//! the cut-over's part before the point of no return. What each step runs is text from
//! `plan::replication`; here it runs in the copy pod (both databases through their Services)
//! or, for the restart, through the PostgreSQL 11 StatefulSet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::jobs::follow_job;
use super::prepare::new_database_plan;
use super::Runner;
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::kube::ops::Kube;
use crate::plan::copy_script::{self, Side};
use crate::plan::online::replica_identity_sql;
use crate::plan::quantity::human;
use crate::plan::replication::{self as rep, OnlinePlan, SUBSCRIBE_JOB};
use crate::plan::{scripts, NewDatabasePlan};
use crate::state::State;
use crate::verify::{compare, sql, DatabaseStats, HashMethod};

/// How long PostgreSQL 15 may take to apply PostgreSQL 11's last changes at the cut-over.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);

fn online_plan(r: &Runner<'_>) -> Result<OnlinePlan> {
    r.state.plan.online.clone().ok_or_else(|| {
        Error::new(
            ExitCode::Failure,
            "an online step in a plan without --online",
        )
    })
}

/// One SQL text run by psql in the copy pod against one side, its output.
async fn psql(
    r: &Runner<'_>,
    db: &NewDatabasePlan,
    side: Side,
    what: &str,
    sql: &str,
) -> Result<String> {
    let argv = scripts::psql(sql);
    r.kube
        .exec_checked(&db.copy_pod, what, &copy_script::on(side, &argv))
        .await
}

/// A bash script run in the copy pod, its output.
async fn bash(r: &Runner<'_>, db: &NewDatabasePlan, what: &str, script: &str) -> Result<String> {
    let argv = vec!["bash".to_string(), "-c".to_string(), script.to_string()];
    r.kube.exec_checked(&db.copy_pod, what, &argv).await
}

async fn wal_level_now(r: &Runner<'_>, db: &NewDatabasePlan) -> Result<String> {
    Ok(psql(
        r,
        db,
        Side::Source,
        "reading PostgreSQL 11's wal_level",
        "show wal_level",
    )
    .await?
    .trim()
    .to_string())
}

/// Restarts PostgreSQL 11 with `wal_level = logical` (its StatefulSet recreates the pod on
/// the same volume), confirmed on its own: the app's connections drop for seconds.
pub async fn wal_level(r: &mut Runner<'_>) -> Result<String> {
    let online = online_plan(r)?;
    let db = new_database_plan(r)?;
    check_extensions(r, &online, &db).await?;
    // A run that died during the restart finds the new pod coming up.
    r.kube
        .wait_pod_ready(&online.source_pod, Duration::from_secs(600))
        .await?;
    if wal_level_now(r, &db).await? == "logical" {
        return Ok("PostgreSQL 11 runs with wal_level=logical already".into());
    }
    r.confirm(&format!(
        "Restarting PostgreSQL 11 (pod {}) with wal_level=logical (now {}; the app stays up, its database connections drop for seconds)",
        online.source_pod, online.wal_level_before
    ))
    .await?;
    psql(
        r,
        &db,
        Side::Source,
        "setting wal_level",
        &rep::set_wal_level_logical(),
    )
    .await?;
    let started = Instant::now();
    restart_source(r, &online.source_pod).await?;
    let now = wal_level_now(r, &db).await?;
    if now != "logical" {
        return Err(Error::new(
            ExitCode::External,
            format!("PostgreSQL 11 restarted with wal_level={now}, not logical"),
        )
        .hint(format!(
            "a setting in the chart's configuration may override postgresql.auto.conf; set postgresql.postgresqlExtendedConf.walLevel=logical with `helm upgrade --reuse-values`, then {}",
            r.rerun_hint()
        )));
    }
    Ok(format!(
        "PostgreSQL 11 restarted with wal_level=logical in {:.1} s (was {})",
        started.elapsed().as_secs_f64(),
        online.wal_level_before
    ))
}

/// Every extension of PostgreSQL 11's database is available on PostgreSQL 15 (its image), or
/// the replication does not start: checked before PostgreSQL 11 is changed in any way.
async fn check_extensions(r: &Runner<'_>, online: &OnlinePlan, db: &NewDatabasePlan) -> Result<()> {
    let out = psql(
        r,
        db,
        Side::Target,
        "listing PostgreSQL 15's extensions",
        rep::available_extensions_query(),
    )
    .await?;
    let available: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    let missing = crate::plan::online::missing_extensions(&online.extensions, &available);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ExitCode::Precondition,
        format!(
            "PostgreSQL 15 (image {}) does not offer the extension(s) {} that PostgreSQL 11's database uses",
            db.pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default(),
            missing.join(", ")
        ),
    )
    .hint(format!(
        "nothing was changed on PostgreSQL 11; use a PostgreSQL 15 image that has them (postgresql.image in the values or --set), or drop the extensions if unused, then {}",
        r.rerun_hint()
    )))
}

/// Deletes PostgreSQL 11's pod and waits until its StatefulSet's new pod is ready.
async fn restart_source(r: &Runner<'_>, pod: &str) -> Result<()> {
    r.kube.restart_pod(pod, Duration::from_secs(600)).await
}

/// A replica identity for each table without a primary key: UPDATE and DELETE on a published
/// table without one fail on PostgreSQL 11, where the app runs.
pub async fn replica_identity(r: &mut Runner<'_>) -> Result<String> {
    let online = online_plan(r)?;
    let db = new_database_plan(r)?;
    let sql: String = online
        .identity_fixes
        .iter()
        .map(replica_identity_sql)
        .collect::<Vec<_>>()
        .join(" ");
    psql(r, &db, Side::Source, "setting replica identities", &sql).await?;
    Ok(online
        .identity_fixes
        .iter()
        .map(|f| match &f.index {
            Some(i) => format!("{}: using index {i}", f.table),
            None => format!("{}: full", f.table),
        })
        .collect::<Vec<_>>()
        .join(", "))
}

/// Publication on 11, roles, database and schema on 15, then the subscription: a detached
/// job in the copy pod (reattached on rerun).
pub async fn subscribe(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    super::copy::pods_ready(r, &db).await?;
    check_extensions(r, &online_plan(r)?, &db).await?;
    let started = Instant::now();
    follow_job(
        r,
        &db.copy_pod,
        SUBSCRIBE_JOB,
        &rep::start_subscribe(),
        &rep::poll_subscribe(),
        None,
    )
    .await?;
    Ok(format!(
        "schema loaded on PostgreSQL 15 and subscribed to PostgreSQL 11's publication {} in {:.1} s",
        rep::NAME,
        started.elapsed().as_secs_f64()
    ))
}

/// Waits for the subscription's initial copy: tables ready n/N and bytes on PostgreSQL 15.
/// It runs in PostgreSQL 15 itself: a rerun only watches again.
pub async fn initial_copy(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    let started = Instant::now();
    let bar = r.printer.bytes_bar(Some(db.source_bytes), "initial copy");
    let mut last_change = (Instant::now(), None);
    loop {
        let out = psql(
            r,
            &db,
            Side::Target,
            "reading the initial copy's progress",
            &rep::initial_copy_query(),
        )
        .await?;
        let p = rep::parse_initial_copy(&out).map_err(|e| Error::new(ExitCode::External, e))?;
        bar.set_position(p.bytes);
        bar.set_message(format!("initial copy: {}/{} tables", p.ready, p.tables));
        if p.tables == 0 && started.elapsed() > Duration::from_secs(30) {
            // The subscription is gone (dropped by hand, or PostgreSQL 15 replaced).
            r.state.undo("replicate.subscribe");
            r.save().await?;
            return Err(Error::new(
                ExitCode::External,
                format!(
                    "PostgreSQL 15 has no subscription {} to PostgreSQL 11",
                    rep::NAME
                ),
            )
            .hint(r.rerun_hint_to("it subscribes anew")));
        }
        if p.done() {
            bar.finish_and_clear();
            let lag = replication_lag(&r.kube, &r.state)
                .await
                .map(|l| format!("; following PostgreSQL 11, {} behind", human(l.bytes)))
                .unwrap_or_default();
            return Ok(format!(
                "initial copy done: {} tables, {} on PostgreSQL 15, in {:.1} s{lag}",
                p.tables,
                human(p.bytes),
                started.elapsed().as_secs_f64()
            ));
        }
        let key = Some((p.ready, p.bytes));
        if key != last_change.1 {
            last_change = (Instant::now(), key);
        } else if last_change.0.elapsed() > Duration::from_secs(600) {
            let log = r
                .kube
                .exec_script(
                    &db.pod_name(),
                    "tail -n 20 /opt/bitnami/postgresql/logs/postgresql.log 2>/dev/null || true",
                )
                .await
                .map(|o| o.stdout)
                .unwrap_or_default();
            return Err(Error::new(
                ExitCode::External,
                format!(
                    "the initial copy made no progress for 10 minutes ({}/{} tables ready)\n{log}",
                    p.ready, p.tables
                ),
            )
            .hint(format!(
                "see PostgreSQL 15's log (`kubectl -n {} logs {}`); {}",
                r.settings.namespace,
                db.pod_name(),
                r.rerun_hint()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The replication's lag as PostgreSQL 11 sees it, for `status`: `None` when the plan is not
/// online, the replication is not running (not yet subscribed, or dropped), or the copy pod
/// cannot tell.
pub async fn replication_lag(kube: &Kube, state: &State) -> Option<rep::Lag> {
    let db = state.plan.new_database.as_ref()?;
    state.plan.online.as_ref()?;
    if !state.is_done("replicate.subscribe") || state.is_done("copy.unsubscribe") {
        return None;
    }
    let argv: Vec<String> = ["psql", "-X", "-A", "-t", "-q", "-c", &rep::lag_query()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = kube
        .exec_checked(
            &db.copy_pod,
            "reading the replication lag",
            &copy_script::on(Side::Source, &argv),
        )
        .await
        .ok()?;
    rep::parse_lag(&out).ok().flatten()
}

async fn table_marks(r: &Runner<'_>, db: &NewDatabasePlan) -> Result<BTreeMap<String, String>> {
    // A fresh statistics snapshot: what the app's ended sessions reported last.
    let out = psql(
        r,
        db,
        Side::Source,
        "reading PostgreSQL 11's table write marks",
        rep::table_marks_query(),
    )
    .await?;
    rep::parse_table_marks(&out).map_err(|e| Error::new(ExitCode::External, e))
}

async fn fingerprint_query(
    r: &Runner<'_>,
    db: &NewDatabasePlan,
    side: Side,
    what: &str,
    query: String,
) -> Result<DatabaseStats> {
    let out = psql(r, db, side, &format!("fingerprinting {what}"), &query).await?;
    sql::parse_fingerprint(&out, HashMethod::CURRENT)
        .map_err(|e| Error::new(ExitCode::External, format!("{what} fingerprint: {e}")))
}

/// Compares both databases while the app writes: every table equal then is proven until its
/// write mark changes; the others are proven again at the cut-over.
pub async fn prove_live(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    let started = Instant::now();
    let marks = table_marks(r, &db).await?;
    let query = sql::fingerprint_query(HashMethod::CURRENT);
    let (source, target) = tokio::try_join!(
        fingerprint_query(r, &db, Side::Source, "PostgreSQL 11", query.clone()),
        fingerprint_query(r, &db, Side::Target, "PostgreSQL 15", query),
    )?;
    let unproven: Vec<String> = source
        .tables
        .iter()
        .filter(|(t, s)| target.tables.get(*t) != Some(s))
        .map(|(t, _)| t.clone())
        .collect();
    let summary = format!(
        "{} of {} tables equal while the app runs ({} rows) in {:.1} s; {} written meanwhile, proven again at the cut-over",
        source.tables.len() - unproven.len(),
        source.tables.len(),
        source.total_rows(),
        started.elapsed().as_secs_f64(),
        unproven.len()
    );
    // What the initial copy wrote goes to disk now, with the app up, not in the shutdown
    // checkpoint when PostgreSQL 15 is stopped at the cut-over.
    psql(
        r,
        &db,
        Side::Target,
        "checkpointing PostgreSQL 15",
        "CHECKPOINT",
    )
    .await?;
    r.state.record.online = Some(crate::state::OnlineRecord {
        marks,
        unproven,
        source,
    });
    Ok(summary)
}

/// The app is off. PostgreSQL 11's schema must be the one replicated (a subscription carries
/// no DDL), and PostgreSQL 15 must have applied 11's current WAL position. Either failing
/// brings the app back on the old release.
pub async fn catch_up(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    match catch_up_inner(r, &db).await {
        Ok(s) => Ok(s),
        Err(e) => Err(app_back(r, e).await),
    }
}

async fn catch_up_inner(r: &mut Runner<'_>, db: &NewDatabasePlan) -> Result<String> {
    let started = Instant::now();
    let query = sql::schema_objects_query();
    let (source, target) = tokio::try_join!(
        fingerprint_query(r, db, Side::Source, "PostgreSQL 11's schema", query.clone()),
        fingerprint_query(r, db, Side::Target, "PostgreSQL 15's schema", query),
    )?;
    let changes = crate::verify::compare_objects(&source, &target);
    if !changes.is_empty() {
        let lines: Vec<String> = changes.iter().map(|d| format!("  - {d}")).collect();
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "PostgreSQL 11's schema changed during the replication, which carries rows, not schema changes:\n{}",
                lines.join("\n")
            ),
        )
        .hint(format!(
            "the app is back on the old release, nothing was deleted. Start over so the new schema is loaded: `{}`, then `{}`",
            r.command("rollback"),
            r.command("--online")
        )));
    }
    let lsn = psql(
        r,
        db,
        Side::Source,
        "reading PostgreSQL 11's WAL position",
        rep::current_lsn_query(),
    )
    .await?
    .trim()
    .to_string();
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    // What was left to apply at the first look, and a bar of what has been applied since.
    let mut bar = None;
    loop {
        let out = psql(
            r,
            db,
            Side::Source,
            "reading the subscription's position",
            &rep::caught_up_query(&lsn),
        )
        .await?;
        match rep::parse_caught_up(&out).map_err(|e| Error::new(ExitCode::External, e))? {
            Some((true, _)) => break,
            Some((false, left)) if Instant::now() < deadline => {
                let (bar, first) = bar
                    .get_or_insert_with(|| (r.printer.bytes_bar(Some(left), "catching up"), left));
                bar.set_position(first.saturating_sub(left));
            }
            Some((false, left)) => {
                return Err(Error::new(
                    ExitCode::External,
                    format!(
                        "PostgreSQL 15 did not apply PostgreSQL 11's last changes within {} s ({} left)",
                        CATCH_UP_TIMEOUT.as_secs(),
                        human(left)
                    ),
                )
                .hint(format!(
                    "the app is back on the old release. See PostgreSQL 15's log (`kubectl -n {} logs {}`); {}",
                    r.settings.namespace,
                    db.pod_name(),
                    r.rerun_hint()
                )))
            }
            None => {
                return Err(Error::new(
                    ExitCode::External,
                    format!("the replication slot {} is gone from PostgreSQL 11", rep::NAME),
                )
                .hint(format!(
                    "the app is back on the old release; start over: `{}`, then `{}`",
                    r.command("rollback"),
                    r.command("--online")
                )))
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some((bar, _)) = bar {
        bar.finish_and_clear();
    }
    Ok(format!(
        "schema unchanged; PostgreSQL 15 applied PostgreSQL 11 up to {lsn} in {:.1} s",
        started.elapsed().as_secs_f64()
    ))
}

/// Every sequence on 15 as on 11, missing ones created (triggers do not fire on a
/// subscriber).
pub async fn sync_sequences(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    match bash(
        r,
        &db,
        "syncing the sequences",
        &rep::sync_sequences_script(),
    )
    .await
    {
        Ok(out) => Ok(format!(
            "sequences synced: {}",
            out.trim()
                .replace("sequences=", "")
                .replace(" created=", ", created ")
        )),
        Err(e) => Err(app_back(r, e).await),
    }
}

/// The proof at the cut-over: the rows and content of the tables written since the proof
/// while replicating (their write mark changed) or not equal then, every sequence and schema
/// object. A table not written since keeps that proof: the work, and so the downtime, follows
/// what the app wrote, not the size of the database.
pub async fn prove(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    match prove_inner(r, &db).await {
        Ok(s) => Ok(s),
        Err(e) => Err(app_back(r, e).await),
    }
}

async fn prove_inner(r: &mut Runner<'_>, db: &NewDatabasePlan) -> Result<String> {
    let Some(live) = r.state.record.online.clone() else {
        return Err(Error::new(
            ExitCode::Precondition,
            "no proof while replicating is recorded",
        )
        .hint(r.rerun_hint()));
    };
    let started = Instant::now();
    let source_marks = super::copy::source_marks(r, db).await?;
    let marks = table_marks(r, db).await?;
    let again = rep::tables_to_prove_again(&live.marks, &marks, &live.unproven);
    let hashed = sql::fingerprint_tables_query(HashMethod::CURRENT, &again);
    let (src_hashed, dst_hashed) = tokio::try_join!(
        fingerprint_query(r, db, Side::Source, "PostgreSQL 11", hashed.clone()),
        fingerprint_query(r, db, Side::Target, "PostgreSQL 15", hashed),
    )?;
    let source = rep::whole_fingerprint(&live.source, &marks, &src_hashed);
    // A table not written since was equal on both sides then, and still is.
    let target = rep::whole_fingerprint(&live.source, &marks, &dst_hashed);
    let report = compare(&source, &target, true);
    if !report.is_equal() {
        let lines: Vec<String> = report
            .differences
            .iter()
            .map(|d| format!("  - {d}"))
            .collect();
        return Err(Error::new(
            ExitCode::VerificationFailed,
            format!(
                "PostgreSQL 15 differs from PostgreSQL 11 at the cut-over:\n{}",
                lines.join("\n")
            ),
        )
        .hint(format!(
            "the app is back on the old release, nothing was deleted; {} (or `{}`)",
            r.rerun_hint_to("it catches up and proves again"),
            r.command("rollback")
        )));
    }
    let summary = format!(
        "equal in {:.1} s: {} tables ({} rows), {} of them written since the live proof and hashed again, {} sequences, {} schema objects",
        started.elapsed().as_secs_f64(),
        report.tables,
        report.rows,
        again.len(),
        source.sequences.len(),
        source.objects.len(),
    );
    r.state.record.source = Some(source);
    r.state.record.source_marks = Some(source_marks);
    r.state.record.copy_verified = true;
    Ok(summary)
}

/// Subscription on 15, slot and publication on 11 dropped: PostgreSQL 15 is on its own.
pub async fn unsubscribe(r: &mut Runner<'_>) -> Result<String> {
    let db = new_database_plan(r)?;
    bash(
        r,
        &db,
        "dropping the subscription, slot and publication",
        &rep::unsubscribe_script(),
    )
    .await?;
    Ok(format!(
        "subscription {0} dropped on PostgreSQL 15, slot and publication {0} on PostgreSQL 11",
        rep::NAME
    ))
}

/// After a failed catch-up or proof: the app back at its recorded replicas (nothing
/// destructive has happened), the cut-over's steps to run again. Returns `e` with what was
/// done.
async fn app_back(r: &mut Runner<'_>, mut e: Error) -> Error {
    let replicas = r.state.record.replicas.clone();
    match super::rollback::restore_replicas(r, &replicas).await {
        Ok(_) => {
            for id in [
                "copy.scale-down",
                "copy.catch-up",
                "copy.sequences",
                "copy.prove",
            ] {
                r.state.undo(id);
            }
            r.state.record.copy_verified = false;
            if let Err(save) = r.save().await {
                e.message = format!(
                    "{}\n(and the state could not be saved: {})",
                    e.message, save.message
                );
            }
            e.message = format!(
                "{}\nThe app is back on the old release ({}); the replication goes on.",
                e.message,
                replicas
                    .iter()
                    .map(|(d, n)| format!("{d} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Err(back) => {
            e.message = format!(
                "{}\nThe app could not be scaled back: {} — start it with `{}`",
                e.message,
                back.message,
                r.command("rollback")
            );
        }
    }
    e
}

/// Rollback: the slot and publication dropped on PostgreSQL 11 (the subscription goes with
/// PostgreSQL 15), replica identities back to the default, `wal_level` as it was.
pub async fn undo(r: &mut Runner<'_>) -> Result<String> {
    let online = online_plan(r)?;
    let pod = online.source_pod.clone();
    r.kube
        .wait_pod_ready(&pod, Duration::from_secs(600))
        .await?;
    let mut sql = rep::drop_source_side();
    for fix in &online.identity_fixes {
        sql.push_str(&format!(
            " ALTER TABLE {} REPLICA IDENTITY DEFAULT;",
            fix.table
        ));
    }
    in_source_pod(r, &pod, "dropping the replication on PostgreSQL 11", &sql).await?;
    if online.restart_for_wal_level {
        // ALTER SYSTEM runs on its own, outside the block above's transaction.
        in_source_pod(r, &pod, "resetting wal_level", &rep::reset_wal_level()).await?;
    }
    let mut done = vec![format!("slot and publication {} dropped", rep::NAME)];
    if !online.identity_fixes.is_empty() {
        done.push("replica identities back to the default".into());
    }
    if online.restart_for_wal_level {
        let now = in_source_pod(r, &pod, "reading wal_level", "show wal_level").await?;
        if now.trim() != online.wal_level_before {
            restart_source(r, &pod).await?;
            done.push(format!(
                "PostgreSQL 11 restarted with wal_level={}",
                online.wal_level_before
            ));
        }
    }
    Ok(done.join("; "))
}

/// SQL run by psql inside PostgreSQL 11's own pod, with the pod's credentials, over its Unix
/// socket (the copy pod may be gone by now).
async fn in_source_pod(r: &Runner<'_>, pod: &str, what: &str, sql: &str) -> Result<String> {
    let database = r
        .state
        .plan
        .new_database
        .as_ref()
        .map(|d| d.source.database.clone())
        .unwrap_or_default();
    let argv: Vec<String> = [
        "psql",
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        &database,
        "-c",
        sql,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    r.kube
        .exec_checked(pod, what, &scripts::in_postgres_pod(&argv))
        .await
}
