//! The object store: every API object as JSON, with the metadata bookkeeping a real API server
//! does (uid, resourceVersion, generation, timestamps, deletion with finalizers) and a watch
//! fan-out with a bounded history for resuming watches.

pub mod error;
pub mod meta;
pub mod selectors;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::api::resources::{self, ResourceType};
pub use error::ApiError;

/// How many past events are kept for watches that resume from a resourceVersion, unless
/// configured otherwise ([`Store::with_watch_cache_size`]).
pub const DEFAULT_WATCH_CACHE_SIZE: usize = 20_000;

/// A DELETE's `preconditions`: the object is deleted only while its uid and resourceVersion
/// are the ones given, else 409 Conflict with the real server's message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl Preconditions {
    fn check(&self, rt: &ResourceType, name: &str, obj: &Value) -> Result<(), ApiError> {
        let field = |f: &str| obj["metadata"][f].as_str().unwrap_or("").to_string();
        if let Some(uid) = &self.uid {
            if *uid != field("uid") {
                return Err(ApiError::precondition_failed(
                    rt,
                    name,
                    &format!(
                        "UID in precondition: {uid}, UID in object meta: {}",
                        field("uid")
                    ),
                ));
            }
        }
        if let Some(rv) = &self.resource_version {
            if *rv != field("resourceVersion") {
                return Err(ApiError::precondition_failed(
                    rt,
                    name,
                    &format!(
                        "ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        field("resourceVersion")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub resource: &'static ResourceType,
    pub kind: EventType,
    pub object: Value,
    pub rv: u64,
}

type Key = (String, String, String);

/// Events to send first, the live receiver, and the resourceVersion they start from.
pub type WatchStart = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>, u64);

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Event>>,
    /// How many events `history` keeps
    history_size: usize,
    /// The last configuration each field manager applied (server-side apply), by object uid
    applied: HashMap<(String, String), Value>,
}

pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
}

/// What `delete` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

fn key(rt: &ResourceType, ns: &str, name: &str) -> Key {
    (
        rt.key(),
        if rt.namespaced {
            ns.to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Self::with_watch_cache_size(DEFAULT_WATCH_CACHE_SIZE)
    }

    /// A store whose watches resume from at most the last `size` changes.
    pub fn with_watch_cache_size(size: usize) -> Self {
        let (events, _) = broadcast::channel(65_536);
        Store {
            inner: Mutex::new(Inner {
                history_size: size.max(1),
                ..Inner::default()
            }),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&key(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    pub fn try_get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&key(rt, ns, name)).cloned()
    }

    /// All objects of a type (in one namespace, or all with `None`) and the list's resourceVersion.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> (Vec<Value>, u64) {
        list_locked(&self.lock(), rt, ns)
    }

    /// Every object in the store, with its type (controllers reconcile from this snapshot).
    pub fn snapshot(&self) -> Vec<(&'static ResourceType, Value)> {
        let inner = self.lock();
        inner
            .objects
            .values()
            .filter_map(|v| {
                let rt = resources::by_kind(v["apiVersion"].as_str()?, v["kind"].as_str()?)?;
                Some((rt, v.clone()))
            })
            .collect()
    }

    fn emit(&self, inner: &mut Inner, rt: &'static ResourceType, kind: EventType, object: Value) {
        let ev = Arc::new(Event {
            resource: rt,
            kind,
            object,
            rv: inner.rv,
        });
        inner.history.push_back(ev.clone());
        if inner.history.len() > inner.history_size {
            inner.history.pop_front();
        }
        let _ = self.events.send(ev);
    }

    pub fn create(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not an object",
            ));
        }
        if obj.get("metadata").is_none_or(|m| !m.is_object()) {
            obj["metadata"] = json!({});
        }
        let mut name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let prefix = obj["metadata"]["generateName"].as_str().unwrap_or_default();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    &[(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            loop {
                name = format!("{prefix}{}", meta::random_suffix(5));
                if !inner.objects.contains_key(&key(rt, ns, &name)) {
                    break;
                }
            }
        }
        if rt.namespaced {
            if ns.is_empty() {
                return Err(ApiError::bad_request(
                    "the server could not find the requested resource",
                ));
            }
            let ns_rt = resources::find("", "v1", "namespaces").expect("namespaces");
            match inner.objects.get(&key(ns_rt, "", ns)) {
                None => return Err(ApiError::not_found(ns_rt, ns)),
                Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                    return Err(ApiError::new(
                        403,
                        "Forbidden",
                        format!(
                            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            error::qualified(rt)
                        ),
                    ));
                }
                _ => {}
            }
        }
        let k = key(rt, ns, &name);
        if inner.objects.contains_key(&k) {
            return Err(ApiError::already_exists(rt, &name));
        }
        meta::prune_nulls(&mut obj);
        inner.rv += 1;
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let m = &mut obj["metadata"];
        m["name"] = json!(name);
        if rt.namespaced {
            m["namespace"] = json!(ns);
        } else if let Some(o) = m.as_object_mut() {
            o.remove("namespace");
        }
        m["uid"] = json!(uuid::Uuid::new_v4().to_string());
        m["resourceVersion"] = json!(inner.rv.to_string());
        m["creationTimestamp"] = json!(meta::now());
        m["generation"] = json!(1);
        if let Some(o) = m.as_object_mut() {
            o.remove("deletionTimestamp");
            o.remove("managedFields");
        }
        inner.objects.insert(k, obj.clone());
        self.emit(&mut inner, rt, EventType::Added, obj.clone());
        Ok(obj)
    }

    /// Replaces an object with what `f` makes of the current one, atomically. `status_only`
    /// takes only the status from the result (the status subresource); otherwise the status of
    /// types with a status subresource is kept. A stale resourceVersion in the result is a
    /// Conflict; an unchanged object is not written.
    pub fn update<F>(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        status_only: bool,
        f: F,
    ) -> Result<Value, ApiError>
    where
        F: FnOnce(&Value) -> Result<Value, ApiError>,
    {
        let mut inner = self.lock();
        let k = key(rt, ns, name);
        let old = inner
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut new = f(&old)?;
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not an object",
            ));
        }
        meta::prune_nulls(&mut new);
        if let Some(rv) = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() {
                return Err(ApiError::conflict(rt, name));
            }
        }
        if let Some(n) = new.pointer("/metadata/name").and_then(Value::as_str) {
            if n != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        if status_only {
            let status = new.get("status").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        } else if rt.subresources.contains(&"status") {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        new["apiVersion"] = old["apiVersion"].clone();
        new["kind"] = old["kind"].clone();
        if new.get("metadata").is_none_or(|m| !m.is_object()) {
            new["metadata"] = json!({});
        }
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old["metadata"].get(f) {
                Some(v) => new["metadata"][f] = v.clone(),
                None => {
                    if let Some(o) = new["metadata"].as_object_mut() {
                        o.remove(f);
                    }
                }
            }
        }
        if let Some(o) = new["metadata"].as_object_mut() {
            o.remove("managedFields");
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == old {
            return Ok(old);
        }
        if rt.tracks_generation && meta::spec_changed(&old, &new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        let finished = new.pointer("/metadata/deletionTimestamp").is_some()
            && meta::finalizers(&new).is_empty();
        if finished {
            inner.objects.remove(&k);
            self.forget_applied(&mut inner, &new);
            self.emit(&mut inner, rt, EventType::Deleted, new.clone());
        } else {
            inner.objects.insert(k, new.clone());
            self.emit(&mut inner, rt, EventType::Modified, new.clone());
        }
        Ok(new)
    }

    fn forget_applied(&self, inner: &mut Inner, obj: &Value) {
        if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) {
            inner.applied.retain(|(u, _), _| u != uid);
        }
    }

    /// Deletes an object: removed at once when nothing holds it, otherwise marked with a
    /// deletionTimestamp (finalizers, foreground propagation, pods awaiting their kubelet).
    /// Returns the object as last seen and whether it is gone.
    pub fn delete(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        propagation: Propagation,
        preconditions: &Preconditions,
    ) -> Result<(Value, bool), ApiError> {
        let mut inner = self.lock();
        let k = key(rt, ns, name);
        let mut obj = inner
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        preconditions.check(rt, name, &obj)?;
        // As the real server does, whether or not there are dependents: the garbage collector
        // deletes (foreground) or frees (orphan) them, then drops the finalizer.
        let mut fins = meta::finalizers(&obj);
        let gc_finalizer = match propagation {
            Propagation::Foreground => Some(meta::FOREGROUND_DELETION),
            Propagation::Orphan => Some(meta::ORPHAN),
            Propagation::Background => None,
        };
        if let Some(f) = gc_finalizer {
            if !fins.iter().any(|x| x == f) {
                fins.push(f.into());
            }
        }
        // Pods wait for their kubelet, namespaces for their content to go.
        let graceful_pod = rt.kind == "Pod" && rt.group.is_empty();
        let awaits_controller = graceful_pod || (rt.kind == "Namespace" && rt.group.is_empty());
        if fins.is_empty() && !awaits_controller {
            inner.rv += 1;
            inner.objects.remove(&k);
            self.forget_applied(&mut inner, &obj);
            obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
            self.emit(&mut inner, rt, EventType::Deleted, obj.clone());
            return Ok((obj, true));
        }
        if obj.pointer("/metadata/deletionTimestamp").is_some()
            && meta::finalizers(&obj).len() == fins.len()
        {
            return Ok((obj, false));
        }
        inner.rv += 1;
        obj["metadata"]["deletionTimestamp"] = json!(meta::now());
        if graceful_pod {
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        }
        if !fins.is_empty() {
            obj["metadata"]["finalizers"] = json!(fins);
        }
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.insert(k, obj.clone());
        self.emit(&mut inner, rt, EventType::Modified, obj.clone());
        Ok((obj, false))
    }

    /// Removes an object outright (the kubelet's last word on a terminated pod).
    pub fn remove(&self, rt: &'static ResourceType, ns: &str, name: &str) -> Option<Value> {
        let mut inner = self.lock();
        let mut obj = inner.objects.remove(&key(rt, ns, name))?;
        inner.rv += 1;
        self.forget_applied(&mut inner, &obj);
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(&mut inner, rt, EventType::Deleted, obj.clone());
        Some(obj)
    }

    /// The configuration a field manager last applied to an object (server-side apply).
    pub fn last_applied(&self, uid: &str, manager: &str) -> Option<Value> {
        self.lock()
            .applied
            .get(&(uid.to_string(), manager.to_string()))
            .cloned()
    }

    pub fn set_last_applied(&self, uid: &str, manager: &str, config: Value) {
        self.lock()
            .applied
            .insert((uid.to_string(), manager.to_string()), config);
    }

    /// Starts a watch: the events to send first and a receiver for what follows. Without a
    /// resourceVersion (or "0") the current objects come first as ADDED, like the real server.
    pub fn watch(
        &self,
        rt: &'static ResourceType,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let rx = self.events.subscribe();
        let backlog = match from {
            None | Some(0) => {
                let (items, rv) = list_locked(&inner, rt, None);
                let evs = items
                    .into_iter()
                    .map(|o| {
                        Arc::new(Event {
                            resource: rt,
                            kind: EventType::Added,
                            object: o,
                            rv,
                        })
                    })
                    .collect();
                return Ok((evs, rx, rv));
            }
            Some(rv) => {
                let oldest = inner.history.front().map(|e| e.rv).unwrap_or(inner.rv + 1);
                if rv + 1 < oldest && inner.history.len() >= inner.history_size {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        oldest - 1
                    )));
                }
                inner
                    .history
                    .iter()
                    .filter(|e| e.rv > rv && std::ptr::eq(e.resource, rt))
                    .cloned()
                    .collect()
            }
        };
        Ok((backlog, rx, inner.rv))
    }

    /// A receiver of every change, for controllers that wake on events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

fn list_locked(inner: &Inner, rt: &ResourceType, ns: Option<&str>) -> (Vec<Value>, u64) {
    let k = rt.key();
    let items = inner
        .objects
        .range((k.clone(), String::new(), String::new())..)
        .take_while(|((r, _, _), _)| *r == k)
        .filter(|((_, n, _), _)| ns.is_none_or(|ns| !rt.namespaced || n == ns))
        .map(|(_, v)| v.clone())
        .collect();
    (items, inner.rv)
}
