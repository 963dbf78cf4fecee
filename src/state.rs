//! The in-cluster record that makes every run resumable, from any machine: a ConfigMap
//! `la-migrate-<release>` in the release's namespace holding the plan, each completed step and
//! the facts later steps need (replica counts, reclaim policies, backup checksum, the source's
//! fingerprint). Never a secret value. A lock (holder + expiry, in annotations) keeps two runs
//! from interleaving; every write carries the resourceVersion it read, so a concurrent writer
//! gets a conflict instead of a lost update.
//!
//! The codec (`State` <-> ConfigMap data) and the lock decision are pure and tested here; the
//! [`Store`] does the API calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::plan::manifests::labels;
use crate::plan::{Phase, Plan};
use crate::verify::DatabaseStats;

const PLAN_KEY: &str = "plan.json";
const STEPS_KEY: &str = "steps.json";
const RECORD_KEY: &str = "record.json";
const LOCK_HOLDER: &str = "la-migrate.cognigy.com/lock-holder";
const LOCK_EXPIRES: &str = "la-migrate.cognigy.com/lock-expires";
/// How long a lock lasts without being renewed (every state write renews it, and a running
/// migration renews it every minute).
pub const LOCK_SECONDS: i64 = 15 * 60;

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
    /// Whether the restore compared equal.
    #[serde(default)]
    pub restore_verified: bool,
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

    /// The first step of the migration not yet done (cleanup steps are not part of it: only
    /// `cleanup` runs them).
    pub fn next_step(&self) -> Option<&crate::plan::Step> {
        self.plan
            .steps
            .iter()
            .find(|s| s.phase != Phase::Cleanup && !self.is_done(&s.id))
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

/// A lock as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub holder: String,
    pub expires: i64,
}

/// Whether `me` may take the lock at `now`.
pub fn may_lock(existing: Option<&Lock>, me: &str, now: i64) -> std::result::Result<(), Lock> {
    match existing {
        Some(l) if l.holder != me && l.expires > now => Err(l.clone()),
        _ => Ok(()),
    }
}

/// The pid of `holder` when it ran on the same user and host as `me` (`user@host:pid`):
/// only then can this machine tell whether that run is still alive.
pub fn same_machine_pid(holder: &str, me: &str) -> Option<u32> {
    let (their_who, their_pid) = holder.rsplit_once(':')?;
    let (my_who, _) = me.rsplit_once(':')?;
    (their_who == my_who).then(|| their_pid.parse().ok())?
}

/// Whether a process with this pid runs here (Linux `/proc`; elsewhere: assumed alive, so
/// only the expiry frees the lock).
fn process_alive(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn read_lock(meta: &ObjectMeta) -> Option<Lock> {
    let a = meta.annotations.as_ref()?;
    Some(Lock {
        holder: a.get(LOCK_HOLDER)?.clone(),
        expires: a.get(LOCK_EXPIRES)?.parse().ok()?,
    })
}

/// Who this run is: `user@host:pid` (no secret; shown to a second run that finds the lock).
pub fn holder_id() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{host}:{}", std::process::id())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How often a running migration renews its lock.
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What this run last wrote: the resourceVersion to write over, and the object to write again
/// when only the lock is renewed. Shared with the renewal task.
#[derive(Default)]
struct Written {
    resource_version: Option<String>,
    object: Option<ConfigMap>,
}

/// The ConfigMap, read and written with resourceVersion checks.
pub struct Store {
    api: Api<ConfigMap>,
    pub name: String,
    namespace: String,
    release: String,
    pub holder: String,
    written: Arc<Mutex<Written>>,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl Store {
    pub fn new(client: kube::Client, namespace: &str, release: &str) -> Store {
        Store {
            api: Api::namespaced(client, namespace),
            name: crate::plan::own_names::state(release),
            namespace: namespace.to_string(),
            release: release.to_string(),
            holder: holder_id(),
            written: Arc::default(),
            renewal: None,
        }
    }

    /// The plugin's command `args` for this release (hints).
    fn command(&self, args: &str) -> String {
        crate::hint::command(&self.release, &self.namespace, args)
    }

    fn where_(&self) -> String {
        format!("ConfigMap {}/{}", self.namespace, self.name)
    }

    /// The recorded state, if a migration has started. Read-only: no lock.
    pub async fn load(&mut self) -> Result<Option<(State, Option<Lock>)>> {
        let cm = self.api.get_opt(&self.name).await.map_err(|e| {
            Error::new(
                ExitCode::Failure,
                format!("cannot read the state {}", self.where_()),
            )
            .source(e)
            .hint("check the connection to the cluster and run again")
        })?;
        let Some(cm) = cm else { return Ok(None) };
        self.written.lock().await.resource_version = cm.metadata.resource_version.clone();
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
        }
    }

    /// Creates the state (first run) holding the lock.
    pub async fn create(&mut self, state: &State) -> Result<()> {
        let mut written = self.written.lock().await;
        written.resource_version = None;
        let cm = self.object(state, Some(&self.my_lock()), None);
        match self.api.create(&PostParams::default(), &cm).await {
            Ok(created) => {
                written.resource_version = created.metadata.resource_version;
                written.object = Some(cm);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Err(Error::new(
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
    pub async fn lock(&mut self, state: &State, existing: Option<&Lock>) -> Result<()> {
        // A run on this machine that died (killed, laptop closed) leaves its lock behind:
        // the rerun takes it over at once instead of waiting for the expiry.
        let dead_here = existing.is_some_and(|l| {
            same_machine_pid(&l.holder, &self.holder).is_some_and(|pid| !process_alive(pid))
        });
        if dead_here {
            tracing::info!(holder = %existing.map(|l| l.holder.as_str()).unwrap_or(""), "taking over the lock of a run that ended on this machine");
        }
        let existing = existing.filter(|_| !dead_here);
        if let Err(held) = may_lock(existing, &self.holder, now()) {
            return Err(Error::new(
                ExitCode::Locked,
                format!(
                    "the migration of release {:?} is locked by {} for {} more seconds",
                    self.release,
                    held.holder,
                    held.expires - now()
                ),
            )
            .hint(format!(
                "`{}` shows its progress; run again once it is done. A run that died on another machine leaves a lock that expires by itself {LOCK_SECONDS} s after its last renewal (or remove the annotation {LOCK_HOLDER} from {})",
                self.command("status"),
                self.where_()
            )));
        }
        self.save(state).await
    }

    /// Renews the lock every minute until [`Store::unlock`] (or the end of the process), so a
    /// long wait, dump or helm call never lets it lapse.
    pub fn keep_lock(&mut self) {
        if self.renewal.is_some() {
            return;
        }
        let written = self.written.clone();
        let api = self.api.clone();
        let name = self.name.clone();
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
                match api.replace(&name, &PostParams::default(), &cm).await {
                    Ok(saved) => w.resource_version = saved.metadata.resource_version,
                    // The next save reports it (a conflict means another writer).
                    Err(e) => tracing::warn!(error = %e, "cannot renew the migration lock"),
                }
            }
        }));
    }

    /// Writes the state, renewing the lock. A conflict means another run wrote in between.
    pub async fn save(&mut self, state: &State) -> Result<()> {
        self.write(state, Some(&self.my_lock())).await
    }

    async fn write(&self, state: &State, lock: Option<&Lock>) -> Result<()> {
        let mut written = self.written.lock().await;
        let cm = self.object(state, lock, written.resource_version.clone());
        match self
            .api
            .replace(&self.name, &PostParams::default(), &cm)
            .await
        {
            Ok(saved) => {
                written.resource_version = saved.metadata.resource_version;
                written.object = Some(cm);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Err(Error::new(
                ExitCode::Locked,
                format!("{} was changed by another run", self.where_()),
            )
            .hint(format!(
                "run `{}` to see its progress; run again once it is done",
                self.command("status")
            ))),
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
            .hint("it expires by itself; the next run can proceed then")
        })
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
        state.mark_done("backup.save-values", 100, "ops@laptop:1");
        state.mark_done("backup.save-values", 101, "ops@laptop:1");
        state.record.replicas.insert("cognigy-live-agent".into(), 2);
        state
            .record
            .reclaim_policies
            .insert("pvc-attach".into(), "Delete".into());
        let data = state.encode();
        let back = State::decode(&data).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.done.len(), 1);
        assert_eq!(back.next_step().unwrap().id, "backup.record-replicas");
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

    #[test]
    fn a_live_lock_of_another_run_refuses_and_an_expired_one_does_not() {
        let other = Lock {
            holder: "a@b:1".into(),
            expires: 1000,
        };
        assert!(may_lock(None, "me", 10).is_ok());
        assert_eq!(may_lock(Some(&other), "me", 999), Err(other.clone()));
        assert!(may_lock(Some(&other), "me", 1000).is_ok());
        assert!(may_lock(Some(&other), "a@b:1", 10).is_ok());
    }

    #[test]
    fn only_a_lock_of_the_same_user_and_host_names_a_pid_to_check() {
        assert_eq!(
            same_machine_pid("ops@laptop:4242", "ops@laptop:17"),
            Some(4242)
        );
        assert_eq!(same_machine_pid("ops@laptop:4242", "ops@ci:17"), None);
        assert_eq!(same_machine_pid("root@laptop:4242", "ops@laptop:17"), None);
        assert_eq!(same_machine_pid("garbage", "ops@laptop:17"), None);
    }
}
