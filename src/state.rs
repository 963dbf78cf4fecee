//! The in-cluster record that makes every run resumable, from any machine: a ConfigMap
//! `la-migrate-<release>` in the release's namespace holding the plan, each completed step and
//! the facts later steps need (replica counts, reclaim policies, backup checksum, the source's
//! fingerprint). Never a secret value. A lock (holder + lease, in annotations) keeps two runs
//! from interleaving; every write carries the resourceVersion it read, so a concurrent writer
//! gets a conflict instead of a lost update, and a run that gets one has lost the lock: its
//! fence closes and its client sends nothing more.
//!
//! The codec (`State` <-> ConfigMap data) is pure and tested here, the lock's decisions in
//! `lock.rs`; the [`Store`] reads and writes it through `kube::config_map`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::kube::config_map::{ConfigMaps, Write};
use crate::kube::fence::Fence;
use crate::kube::ops::Kube;
use crate::plan::manifests::labels;
use crate::plan::{Phase, Plan};
use crate::verify::DatabaseStats;

const PLAN_KEY: &str = "plan.json";
const STEPS_KEY: &str = "steps.json";
const RECORD_KEY: &str = "record.json";
const LOCK_HOLDER: &str = "la-migrate.cognigy.com/lock-holder";
const LOCK_EXPIRES: &str = "la-migrate.cognigy.com/lock-expires";
const LOCK_LEASE: &str = "la-migrate.cognigy.com/lock-lease-seconds";
/// How long a lock lasts without being renewed (every state write renews it, and a running
/// migration renews it every [`RENEW_EVERY`]), measured by the run that watches it.
pub const LOCK_SECONDS: i64 = crate::lock::LEASE_SECONDS;

/// A completed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    pub by: String,
}

/// What the backup produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// SHA-256 of the archive's file list with per-file SHA-256s.
    pub sha256: String,
    pub bytes: u64,
    pub table_data_entries: u64,
    pub source: DatabaseStats,
}

/// The archive's copy on the operator's disk (`--local-copy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCopyRecord {
    pub path: String,
    /// SHA-256 of the tar file, equal to the same tar hashed in the dump pod.
    pub sha256: String,
    pub bytes: u64,
}

/// Facts recorded by steps for later steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Deployment -> replicas before the scale-down.
    #[serde(default)]
    pub replicas: BTreeMap<String, i32>,
    /// PersistentVolume -> reclaim policy before the migration set it to Retain.
    #[serde(default)]
    pub reclaim_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub backup: Option<BackupRecord>,
    #[serde(default)]
    pub local_copy: Option<LocalCopyRecord>,
    /// PostgreSQL 11's fingerprint (every table's rows and content hash, sequences, schema
    /// objects) as the proof found it equal to PostgreSQL 15's.
    #[serde(default)]
    pub source: Option<crate::verify::DatabaseStats>,
    /// PostgreSQL 11's write marks at the proof, checked again at the point of no return.
    #[serde(default)]
    pub source_marks: Option<String>,
    /// Whether PostgreSQL 15 compared equal to PostgreSQL 11.
    #[serde(default)]
    pub copy_verified: bool,
    /// The volume PostgreSQL 15 was copied onto, pre-bound to the new release's claim.
    #[serde(default)]
    pub new_database_volume: Option<String>,
    /// `Kind/name` -> uid of each object a later step deletes, as first seen (or as the
    /// plugin created it): the delete carries it as a precondition, so an object of that
    /// name created again by someone else meanwhile is not deleted.
    #[serde(default)]
    pub uids: BTreeMap<String, String>,
    /// Volumes of the new release a rollback set to Retain and left Released (PostgreSQL
    /// 15's data and Redis 7's).
    #[serde(default)]
    pub rollback_kept_volumes: Vec<String>,
    /// Online: the proof made while replicating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineRecord>,
}

/// The proof made while the app ran and PostgreSQL 15 replicated: PostgreSQL 11's table
/// write marks before it, the tables not equal then, and PostgreSQL 11's fingerprint. A
/// table whose mark is unchanged at the cut-over is not hashed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineRecord {
    pub marks: BTreeMap<String, String>,
    pub unproven: Vec<String>,
    pub source: crate::verify::DatabaseStats,
}

/// The whole record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct State {
    pub plan: Plan,
    pub done: Vec<Done>,
    pub record: Record,
}

impl State {
    pub fn new(plan: Plan) -> State {
        State {
            plan,
            done: Vec::new(),
            record: Record::default(),
        }
    }

    pub fn is_done(&self, id: &str) -> bool {
        self.done.iter().any(|d| d.id == id)
    }

    pub fn mark_done(&mut self, id: &str, now: i64, by: &str) {
        if !self.is_done(id) {
            self.done.push(Done {
                id: id.to_string(),
                at: now,
                by: by.to_string(),
            });
        }
    }

    /// Forgets that a step was done, so the next run does it again.
    pub fn undo(&mut self, id: &str) {
        self.done.retain(|d| d.id != id);
    }

    /// The first step of the migration not yet done (cleanup and rollback steps are not part
    /// of it: only `cleanup` and `rollback` run them).
    pub fn next_step(&self) -> Option<&crate::plan::Step> {
        self.plan
            .steps
            .iter()
            .find(|s| !matches!(s.phase, Phase::Cleanup | Phase::Rollback) && !self.is_done(&s.id))
    }

    /// Whether a rollback has started: one of its steps is done.
    pub fn rollback_started(&self) -> bool {
        self.plan
            .steps
            .iter()
            .any(|s| s.phase == Phase::Rollback && self.is_done(&s.id))
    }

    /// The first step of an unfinished cleanup.
    pub fn next_cleanup_step(&self) -> Option<&crate::plan::Step> {
        self.plan
            .steps
            .iter()
            .find(|s| s.phase == Phase::Cleanup && !self.is_done(&s.id))
    }

    /// ConfigMap data.
    pub fn encode(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            // No `--set` value: those stay in the values Secret.
            (
                PLAN_KEY.to_string(),
                json(&crate::plan::commands::for_state(&self.plan)),
            ),
            (STEPS_KEY.to_string(), json(&self.done)),
            (RECORD_KEY.to_string(), json(&self.record)),
        ])
    }

    pub fn decode(data: &BTreeMap<String, String>) -> std::result::Result<State, String> {
        let get = |key: &str| {
            data.get(key)
                .ok_or_else(|| format!("the state has no {key}"))
        };
        Ok(State {
            plan: serde_json::from_str(get(PLAN_KEY)?)
                .map_err(|e| format!("{PLAN_KEY} is unreadable: {e}"))?,
            done: serde_json::from_str(get(STEPS_KEY)?)
                .map_err(|e| format!("{STEPS_KEY} is unreadable: {e}"))?,
            record: serde_json::from_str(get(RECORD_KEY)?)
                .map_err(|e| format!("{RECORD_KEY} is unreadable: {e}"))?,
        })
    }
}

fn json<T: Serialize>(value: &T) -> String {
    // Plain data without maps keyed by non-strings: serialisation cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub use crate::lock::Lock;
use crate::lock::{Decision, Watched};

/// Whether a process with this pid runs here: a zombie (killed, not yet reaped) does not
/// (Linux `/proc`; elsewhere: assumed alive, so only the lease frees the lock).
fn process_alive(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    crate::lock::alive_by_stat(stat.as_deref())
}

fn read_lock(meta: &ObjectMeta) -> Option<Lock> {
    let a = meta.annotations.as_ref()?;
    Some(Lock {
        holder: a.get(LOCK_HOLDER)?.clone(),
        expires: a
            .get(LOCK_EXPIRES)
            .and_then(|e| e.parse().ok())
            .unwrap_or(0),
        lease_seconds: a
            .get(LOCK_LEASE)
            .and_then(|e| e.parse().ok())
            .unwrap_or(LOCK_SECONDS),
    })
}

/// Who this run is (no secret; shown to a second run that finds the lock): user, host, boot
/// id and pid namespace, and pid.
pub fn holder_id() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok();
    let pid_ns = std::fs::read_link("/proc/self/ns/pid").ok().map(|l| {
        l.to_string_lossy()
            .trim_start_matches("pid:[")
            .trim_end_matches(']')
            .to_string()
    });
    crate::lock::holder_id(
        &user,
        &host,
        boot.as_deref(),
        pid_ns.as_deref(),
        std::process::id(),
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How often a running migration renews its lock.
pub const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// How often a run watching the lock of a run elsewhere looks again.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// What this run last wrote: the resourceVersion to write over, and the object to write again
/// when only the lock is renewed. Shared with the renewal task.
#[derive(Default)]
struct Written {
    resource_version: Option<String>,
    object: Option<ConfigMap>,
}

/// The ConfigMap, read and written with resourceVersion checks.
pub struct Store {
    api: ConfigMaps,
    pub name: String,
    namespace: String,
    release: String,
    pub holder: String,
    written: Arc<Mutex<Written>>,
    renewal: Option<tokio::task::JoinHandle<()>>,
    /// Closed when another run took the lock: the client sends nothing more.
    pub fence: Fence,
}

impl Store {
    pub fn new(kube: &Kube, release: &str, fence: Fence) -> Store {
        Store {
            api: kube.config_maps(),
            name: crate::plan::own_names::state(release),
            namespace: kube.namespace.clone(),
            release: release.to_string(),
            holder: holder_id(),
            written: Arc::default(),
            renewal: None,
            fence,
        }
    }

    /// The plugin's command `args` for this release (hints).
    fn command(&self, args: &str) -> String {
        crate::hint::command(&self.release, &self.namespace, args)
    }

    fn where_(&self) -> String {
        format!("ConfigMap {}/{}", self.namespace, self.name)
    }

    /// The ConfigMap as stored now; its resourceVersion is the one the next write checks.
    async fn read(&self) -> Result<Option<ConfigMap>> {
        let cm = self.api.get(&self.name).await.map_err(|e| {
            Error::new(
                ExitCode::Failure,
                format!("cannot read the state {}", self.where_()),
            )
            .source(e)
            .hint("check the connection to the cluster and run again")
        })?;
        self.written.lock().await.resource_version = cm
            .as_ref()
            .and_then(|c| c.metadata.resource_version.clone());
        Ok(cm)
    }

    /// The recorded state, if a migration has started. Read-only: no lock.
    pub async fn load(&mut self) -> Result<Option<(State, Option<Lock>)>> {
        let Some(cm) = self.read().await? else {
            return Ok(None);
        };
        let lock = read_lock(&cm.metadata);
        let state = State::decode(&cm.data.unwrap_or_default()).map_err(|e| {
            Error::new(
                ExitCode::Precondition,
                format!("the state {} is damaged: {e}", self.where_()),
            )
            .hint(format!(
                "inspect it with `kubectl -n {} get configmap {} -o yaml`; it was not written by this version of la-migrate",
                self.namespace, self.name
            ))
        })?;
        Ok(Some((state, lock)))
    }

    /// The ConfigMap holding `state` and, while a run holds it, the lock.
    fn object(
        &self,
        state: &State,
        lock: Option<&Lock>,
        resource_version: Option<String>,
    ) -> ConfigMap {
        let annotations = lock.map(|l| {
            BTreeMap::from([
                (LOCK_HOLDER.to_string(), l.holder.clone()),
                (LOCK_EXPIRES.to_string(), l.expires.to_string()),
                (LOCK_LEASE.to_string(), l.lease_seconds.to_string()),
            ])
        });
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels(&self.release)),
                annotations,
                resource_version,
                ..ObjectMeta::default()
            },
            data: Some(state.encode()),
            ..ConfigMap::default()
        }
    }

    fn my_lock(&self) -> Lock {
        Lock {
            holder: self.holder.clone(),
            expires: now() + LOCK_SECONDS,
            lease_seconds: LOCK_SECONDS,
        }
    }

    /// Creates the state (first run) holding the lock.
    pub async fn create(&mut self, state: &State) -> Result<()> {
        let mut written = self.written.lock().await;
        written.resource_version = None;
        let cm = self.object(state, Some(&self.my_lock()), None);
        match self.api.create(&cm).await {
            Ok(Write::Done(version)) => {
                written.resource_version = version;
                written.object = Some(cm);
                Ok(())
            }
            Ok(Write::Conflict) => Err(Error::new(
                ExitCode::Locked,
                format!("another run created {} at the same time", self.where_()),
            )
            .hint(format!(
                "wait for it to finish, or run `{}` to see who holds it",
                self.command("status")
            ))),
            Err(e) => Err(Error::new(
                ExitCode::Failure,
                format!("cannot create the state {}", self.where_()),
            )
            .source(e)
            .hint("check that you may create ConfigMaps in the namespace, then run again")),
        }
    }

    /// Takes (or renews) the lock on an existing state; refuses while another run holds it.
    /// A lock of a dead run on this machine is taken over at once; one of a run elsewhere is
    /// watched: a write by its holder refuses (exit 10), a whole lease without one takes it.
    pub async fn lock(&mut self, state: &State, existing: Option<&Lock>) -> Result<()> {
        let mut existing = existing.cloned();
        let mut first: Option<(String, Lock, std::time::Instant)> = None;
        loop {
            match crate::lock::decide(existing.as_ref(), &self.holder, process_alive) {
                Decision::Take => break,
                Decision::Refuse => {
                    return Err(
                        self.locked(existing.as_ref(), "a run on this machine that still runs")
                    )
                }
                Decision::Watch => {}
            }
            let held = existing.clone().unwrap_or_else(|| self.my_lock());
            let version = self
                .written
                .lock()
                .await
                .resource_version
                .clone()
                .unwrap_or_default();
            let (v0, l0, t0) = first.get_or_insert_with(|| {
                tracing::warn!(
                    "the migration lock is held by {} (on another machine): watching it for up to {} s; a run renews it every {} s, a lock not renewed for that long is taken over",
                    held.holder,
                    held.lease_seconds,
                    RENEW_EVERY.as_secs()
                );
                (version.clone(), held.clone(), std::time::Instant::now())
            });
            match crate::lock::watched((v0, l0), (&version, existing.as_ref()), t0.elapsed()) {
                Watched::Alive => {
                    return Err(self.locked(
                        existing.as_ref(),
                        "a run on another machine, which renewed it while this run watched",
                    ))
                }
                Watched::Expired => {
                    tracing::warn!(holder = %held.holder, "taking over a lock not renewed for its whole lease");
                    break;
                }
                Watched::Released | Watched::Waiting => {
                    tokio::time::sleep(WATCH_EVERY).await;
                    existing = self.peek_lock().await?;
                }
            }
        }
        if let Some(l) = &existing {
            if l.holder != self.holder {
                tracing::info!(holder = %l.holder, "taking over the lock of a run that ended");
            }
        }
        self.save(state).await
    }

    /// The lock as stored now.
    async fn peek_lock(&self) -> Result<Option<Lock>> {
        Ok(self.read().await?.and_then(|c| read_lock(&c.metadata)))
    }

    /// The refusal of a lock held by a live run (`who`).
    fn locked(&self, held: Option<&Lock>, who: &str) -> Error {
        Error::new(
            ExitCode::Locked,
            format!(
                "the migration of release {:?} is locked by {} ({who})",
                self.release,
                held.map(|l| l.holder.as_str()).unwrap_or("another run"),
            ),
        )
        .hint(format!(
            "`{}` shows its progress; run again once it is done. A run that died on another machine leaves a lock that the next run takes over once it has seen no renewal for {LOCK_SECONDS} s (or remove the annotation {LOCK_HOLDER} from {})",
            self.command("status"),
            self.where_()
        ))
    }

    /// Renews the lock every [`RENEW_EVERY`] until [`Store::unlock`] (or the end of the process), so a
    /// long wait, dump or helm call never lets it lapse.
    pub fn keep_lock(&mut self) {
        if self.renewal.is_some() {
            return;
        }
        let written = self.written.clone();
        let api = self.api.clone();
        let name = self.name.clone();
        let fence = self.fence.clone();
        let lost = self.lost_message();
        self.renewal = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let mut w = written.lock().await;
                let Some(mut cm) = w.object.clone() else {
                    continue;
                };
                cm.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(LOCK_EXPIRES.to_string(), (now() + LOCK_SECONDS).to_string());
                cm.metadata.resource_version = w.resource_version.clone();
                match api.replace(&name, &cm).await {
                    Ok(Write::Done(version)) => w.resource_version = version,
                    // Another run wrote the state: it holds the lock now, this run stops.
                    Ok(Write::Conflict) => {
                        fence.close(lost.clone());
                        return;
                    }
                    // A passing failure: the next renewal (or save) tries again.
                    Err(e) => tracing::warn!(error = %e, "cannot renew the migration lock"),
                }
            }
        }));
    }

    /// Writes the state, renewing the lock. A conflict means another run wrote in between.
    pub async fn save(&mut self, state: &State) -> Result<()> {
        self.write(state, Some(&self.my_lock())).await
    }

    /// Why a run that lost its lock stopped.
    fn lost_message(&self) -> String {
        format!(
            "this run lost the migration lock on {}: another run wrote the state over it, so this one stopped before its next call to the cluster",
            self.where_()
        )
    }

    /// The error of a run that lost its lock.
    pub fn lost_error(&self, why: String) -> Error {
        Error::new(ExitCode::Locked, why).hint(format!(
            "`{}` shows which run holds it now and what is done; run again once it has finished",
            self.command("status")
        ))
    }

    async fn write(&self, state: &State, lock: Option<&Lock>) -> Result<()> {
        if let Some(why) = self.fence.closed() {
            return Err(self.lost_error(why));
        }
        let mut written = self.written.lock().await;
        let cm = self.object(state, lock, written.resource_version.clone());
        match self.api.replace(&self.name, &cm).await {
            Ok(Write::Done(version)) => {
                written.resource_version = version;
                written.object = Some(cm);
                Ok(())
            }
            Ok(Write::Conflict) => {
                self.fence.close(self.lost_message());
                Err(self.lost_error(self.lost_message()))
            }
            Err(e) => Err(Error::new(
                ExitCode::Failure,
                format!("cannot write the state {}", self.where_()),
            )
            .source(e)
            .hint("check the connection to the cluster and run again: completed steps are kept")),
        }
    }

    /// Releases the lock (end of a run), keeping the record.
    pub async fn unlock(&mut self, state: &State) -> Result<()> {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        self.write(state, None).await.map_err(|e| {
            Error::new(
                ExitCode::Failure,
                format!("cannot release the lock on {}", self.where_()),
            )
            .source(e)
            .hint(self.unlock_hint())
        })
    }

    /// Deletes the record with its lock (the end of a rollback: the namespace as if no
    /// migration had started). Only the record this run holds: a precondition on the
    /// resourceVersion it last wrote.
    pub async fn delete(&mut self) -> Result<()> {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if let Some(why) = self.fence.closed() {
            return Err(self.lost_error(why));
        }
        let written = self.written.lock().await;
        match self
            .api
            .delete(&self.name, written.resource_version.clone())
            .await
        {
            Ok(Write::Done(_)) => Ok(()),
            Ok(Write::Conflict) => {
                self.fence.close(self.lost_message());
                Err(self.lost_error(self.lost_message()))
            }
            Err(e) => Err(Error::new(
                ExitCode::Failure,
                format!("cannot delete the state {}", self.where_()),
            )
            .source(e)
            .hint(self.unlock_hint())),
        }
    }

    /// What to do when the lock could not be released: the steps are recorded, the lock
    /// left behind is taken over at once from this machine, after a lease from another.
    fn unlock_hint(&self) -> String {
        format!(
            "the completed steps are recorded (`{}` shows them); run the same command again once the cluster answers: a run from this machine takes the lock over at once, one from another machine once the lock has gone {LOCK_SECONDS} s without a renewal",
            self.command("status")
        )
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{build, fixtures::release_4_43, Options};

    #[test]
    fn the_state_survives_a_round_trip_through_configmap_data() {
        let plan = build(&release_4_43(), &Options::default()).unwrap();
        let mut state = State::new(plan);
        state.mark_done("prepare.save-values", 100, "ops@laptop:1");
        state.mark_done("prepare.save-values", 101, "ops@laptop:1");
        state.record.replicas.insert("cognigy-live-agent".into(), 2);
        state
            .record
            .reclaim_policies
            .insert("pvc-attach".into(), "Delete".into());
        let data = state.encode();
        let back = State::decode(&data).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.done.len(), 1);
        assert_eq!(back.next_step().unwrap().id, "prepare.record-replicas");
    }

    #[test]
    fn a_state_written_before_the_onboarding_host_and_the_local_copy_record_still_reads() {
        let state = State::new(build(&release_4_43(), &Options::default()).unwrap());
        let mut data = state.encode();
        let mut plan: serde_json::Value = serde_json::from_str(&data[PLAN_KEY]).unwrap();
        let step = plan["steps"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|s| s["action"]["action"] == "clear-onboarding")
            .unwrap();
        step["action"].as_object_mut().unwrap().remove("host");
        data.insert(PLAN_KEY.to_string(), plan.to_string());
        let mut record: serde_json::Value = serde_json::from_str(&data[RECORD_KEY]).unwrap();
        record.as_object_mut().unwrap().remove("local_copy");
        data.insert(RECORD_KEY.to_string(), record.to_string());

        let back = State::decode(&data).unwrap();
        let host = back.plan.steps.iter().find_map(|s| match &s.action {
            crate::plan::Action::ClearOnboarding { host, .. } => Some(host.clone()),
            _ => None,
        });
        assert_eq!(host.as_deref(), Some(""));
        assert_eq!(back.record.local_copy, None);
    }

    #[test]
    fn damaged_data_is_reported_by_key() {
        let mut data = BTreeMap::new();
        data.insert(PLAN_KEY.to_string(), "{".to_string());
        assert!(State::decode(&data).unwrap_err().contains(PLAN_KEY));
    }
}
