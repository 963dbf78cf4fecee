//! A consistent read of the store for one reconcile pass, indexed by type.

use std::collections::HashMap;

use serde_json::Value;

use crate::api::resources::{self, ResourceType};
use crate::store::{meta, Store};

pub struct Snapshot {
    by_type: HashMap<String, Vec<Value>>,
}

pub fn rt(group: &str, plural: &str) -> &'static ResourceType {
    resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .expect("known resource")
}

impl Snapshot {
    pub fn take(store: &Store) -> Snapshot {
        Snapshot::from_objects(store.snapshot().into_iter().map(|(_, v)| v))
    }

    pub fn from_objects(objs: impl IntoIterator<Item = Value>) -> Snapshot {
        let mut by_type: HashMap<String, Vec<Value>> = HashMap::new();
        for o in objs {
            if let Some(r) = resources::by_kind(
                o["apiVersion"].as_str().unwrap_or_default(),
                o["kind"].as_str().unwrap_or_default(),
            ) {
                by_type.entry(r.key()).or_default().push(o);
            }
        }
        Snapshot { by_type }
    }

    pub fn all(&self, group: &str, plural: &str) -> &[Value] {
        self.by_type
            .get(&format!("{group}/{plural}"))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<&Value> {
        self.all(group, plural)
            .iter()
            .find(|o| meta::name(o) == name && meta::namespace(o) == ns)
    }

    pub fn in_ns<'a>(
        &'a self,
        group: &str,
        plural: &str,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Value> {
        self.all(group, plural)
            .iter()
            .filter(move |o| meta::namespace(o) == ns)
    }

    /// Objects (of a type) whose ownerReferences name `uid`.
    pub fn owned<'a>(
        &'a self,
        group: &str,
        plural: &str,
        uid: &'a str,
    ) -> impl Iterator<Item = &'a Value> {
        self.all(group, plural)
            .iter()
            .filter(move |o| meta::owned_by(o, uid))
    }

    pub fn uids(&self) -> std::collections::HashSet<&str> {
        self.by_type.values().flatten().map(meta::uid).collect()
    }

    pub fn everything(&self) -> impl Iterator<Item = &Value> {
        self.by_type.values().flatten()
    }
}
