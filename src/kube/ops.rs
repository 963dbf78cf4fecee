//! Every Kubernetes action of the migration, each a small method with an error that names
//! the object. No decisions here: the plan decides, these carry it out.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::wait;
use crate::error::{Error, Result};
use crate::exit::ExitCode;

/// The client and the release's namespace.
#[derive(Clone)]
pub struct Kube {
    pub client: kube::Client,
    pub namespace: String,
}

const CLAIM: &str = "PersistentVolumeClaim";

/// An admission plugin's refusal of a new object (403 like a missing permission, but the
/// object is what must change, or the namespace's policy): the hint for it, or `None` for
/// any other 403.
pub fn admission_hint(message: &str) -> Option<&'static str> {
    if message.contains("violates PodSecurity") {
        Some("the namespace enforces a Pod Security level (label pod-security.kubernetes.io/enforce) that this pod does not meet; \
              the plugin's own pods meet `restricted`: for a pod of the chart, give it a security context through the release's values (-f/--values), then run the same command again")
    } else if message.contains("exceeded quota:") {
        Some("a ResourceQuota of the namespace has no room for this pod or claim (`kubectl describe quota`): raise the quota or free room in the namespace, \
              then run the same command again: it resumes at this step")
    } else if message.contains("failed quota:") {
        Some("a ResourceQuota of the namespace requires every container to declare the resources named; the plugin's pods declare cpu and memory (--tools-cpu, --tools-memory): \
              for a pod of the chart, set its resources in the release's values (-f/--values) or add a LimitRange with defaults, then run the same command again")
    } else {
        None
    }
}

fn api_error(e: kube::Error, what: String) -> Error {
    if let kube::Error::Api(s) = &e {
        if let Some(hint) = (s.code == 403)
            .then(|| admission_hint(&s.message))
            .flatten()
        {
            return Error::new(
                ExitCode::Precondition,
                format!("{what}: refused by the cluster's admission: {}", s.message),
            )
            .hint(hint);
        }
        if s.code == 403 {
            // The API's message names the verb, resource and scope that were refused.
            return Error::new(
                ExitCode::PermissionDenied,
                format!("{what}: permission denied: {}", s.message),
            )
            .hint("grant this identity that permission (check with `kubectl auth can-i <verb> <resource>`), or use an identity that has it, then run the same command again: it resumes at this step");
        }
    }
    let code = match &e {
        kube::Error::Api(s) if s.code == 403 => ExitCode::PermissionDenied,
        kube::Error::Api(s) if s.code == 404 => ExitCode::NotFound,
        _ => ExitCode::Failure,
    };
    Error::new(code, what)
        .source(e)
        .hint("fix the cause, then run the same command again: it resumes where it stopped")
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The object a delete is meant for: its uid as recorded when it was first seen and, where
/// only that version may go, its resourceVersion. The API server deletes it only while both
/// still hold (`DeleteOptions.preconditions`): one deleted and created again by someone else
/// since (another uid), or changed since, is left alone and the delete fails (409).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub uid: String,
    pub resource_version: Option<String>,
}

impl Seen {
    /// The object's uid, from its metadata (`None` without one).
    pub fn uid_of(meta: &ObjectMeta) -> Option<Seen> {
        meta.uid.clone().filter(|u| !u.is_empty()).map(|uid| Seen {
            uid,
            resource_version: None,
        })
    }

    /// The object's uid and resourceVersion: only this very version may be deleted.
    pub fn version_of(meta: &ObjectMeta) -> Option<Seen> {
        Seen::uid_of(meta).map(|s| Seen {
            resource_version: meta.resource_version.clone(),
            ..s
        })
    }
}

/// The DELETE's options: the preconditions of `seen`, if any.
pub fn delete_params(seen: Option<&Seen>) -> DeleteParams {
    DeleteParams {
        preconditions: seen.map(|s| Preconditions {
            uid: Some(s.uid.clone()),
            resource_version: s.resource_version.clone(),
        }),
        ..DeleteParams::default()
    }
}

/// A delete refused by its preconditions: the object of that name is not the one recorded.
fn replaced(what: &str, seen: &Seen, e: kube::Error) -> Error {
    let detail = match &e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    };
    Error::new(
        ExitCode::Precondition,
        format!(
            "{what} is not the object this migration recorded (uid {}): it was deleted and created again, or changed, since; not deleted ({detail})",
            seen.uid
        ),
    )
    .hint("find out what created or changed it (`kubectl get` it with `-o yaml`: uid, creationTimestamp, managedFields); if it must go too, delete it yourself, then run the same command again: it resumes at this step")
}

// The helpers below each do one API call; `what` names the object in the error.

async fn get<K>(api: Api<K>, name: &str, what: String) -> Result<Option<K>>
where
    K: Clone + DeserializeOwned + Debug,
{
    api.get_opt(name)
        .await
        .map_err(|e| api_error(e, format!("cannot read {what}")))
}

async fn list<K>(api: Api<K>, params: &ListParams, what: String) -> Result<Vec<K>>
where
    K: Clone + DeserializeOwned + Debug,
{
    api.list(params)
        .await
        .map(|l| l.items)
        .map_err(|e| api_error(e, format!("cannot list {what}")))
}

async fn create<K>(api: Api<K>, object: &K, what: String) -> Result<()>
where
    K: Clone + DeserializeOwned + Serialize + Debug,
{
    api.create(&PostParams::default(), object)
        .await
        .map(|_| ())
        .map_err(|e| api_error(e, format!("cannot create {what}")))
}

/// A merge patch; `failure` is the whole error message.
async fn merge_patch<K>(api: Api<K>, name: &str, patch: Value, failure: String) -> Result<()>
where
    K: Clone + DeserializeOwned + Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| api_error(e, failure))
}

/// Deletes the object, only while it is the one `seen` (when given); one that is already
/// gone counts as deleted.
async fn delete<K>(api: Api<K>, name: &str, what: String, seen: Option<&Seen>) -> Result<()>
where
    K: Clone + DeserializeOwned + Debug,
{
    match (api.delete(name, &delete_params(seen)).await, seen) {
        (Ok(_), _) => Ok(()),
        (Err(e), _) if is_not_found(&e) => Ok(()),
        (Err(e), Some(seen)) if matches!(&e, kube::Error::Api(s) if s.code == 409) => {
            Err(replaced(&what, seen, e))
        }
        (Err(e), _) => Err(api_error(e, format!("cannot delete {what}"))),
    }
}

impl Kube {
    pub fn new(client: kube::Client, namespace: &str) -> Kube {
        Kube {
            client,
            namespace: namespace.to_string(),
        }
    }

    pub(super) fn ns<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn cluster<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::ClusterResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::all(self.client.clone())
    }

    /// `kind namespace/name`, how errors and waits name a namespaced object.
    fn named(&self, kind: &str, name: &str) -> String {
        format!("{kind} {}/{name}", self.namespace)
    }

    pub async fn namespace_exists(&self) -> Result<bool> {
        let what = format!("namespace {}", self.namespace);
        get::<Namespace>(self.cluster(), &self.namespace, what)
            .await
            .map(|n| n.is_some())
    }

    pub async fn deployment(&self, name: &str) -> Result<Option<Deployment>> {
        get(self.ns(), name, self.named("Deployment", name)).await
    }

    pub async fn scale(&self, name: &str, replicas: i32) -> Result<()> {
        let patch = json!({ "spec": { "replicas": replicas } });
        let failure = format!(
            "cannot scale {} to {replicas}",
            self.named("Deployment", name)
        );
        merge_patch::<Deployment>(self.ns(), name, patch, failure).await
    }

    pub async fn pods(&self, selector: &str) -> Result<Vec<Pod>> {
        let what = format!("pods {selector:?} in {}", self.namespace);
        list(self.ns(), &ListParams::default().labels(selector), what).await
    }

    pub async fn wait_pods_gone(&self, selector: &str, timeout: Duration) -> Result<()> {
        wait::until(&format!("pods {selector} to be gone"), timeout, || async {
            Ok(self.pods(selector).await?.is_empty().then_some(()))
        })
        .await
    }

    pub async fn pod(&self, name: &str) -> Result<Option<Pod>> {
        get(self.ns(), name, self.named("pod", name)).await
    }

    pub async fn wait_pod_ready(&self, name: &str, timeout: Duration) -> Result<()> {
        let ns = self.namespace.clone();
        wait::until(&format!("pod {ns}/{name} to be ready"), timeout, || async {
            match self.pod(name).await? {
                Some(p) if wait::pod_ended(&p) => Err(Error::new(
                    ExitCode::Failure,
                    format!("pod {ns}/{name} ended before it became ready"),
                )
                .hint(format!(
                    "see `kubectl -n {ns} logs {name}` and `kubectl -n {ns} describe pod {name}`"
                ))),
                Some(p) => Ok(wait::pod_ready(&p).then_some(())),
                None => Ok(None),
            }
        })
        .await
    }

    pub async fn wait_deployment_ready(&self, name: &str, timeout: Duration) -> Result<()> {
        wait::until(
            &format!("{} to be ready", self.named("Deployment", name)),
            timeout,
            || async {
                Ok(self
                    .deployment(name)
                    .await?
                    .filter(wait::deployment_ready)
                    .map(|_| ()))
            },
        )
        .await
    }

    /// Creates the pod unless one of that name exists; a pod that ended is replaced (that
    /// pod only: not one created meanwhile).
    pub async fn ensure_pod(&self, pod: &Pod) -> Result<()> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(existing) = self.pod(&name).await? {
            if !wait::pod_ended(&existing) {
                return Ok(());
            }
            self.delete_pod(&name, Seen::uid_of(&existing.metadata).as_ref())
                .await?;
        }
        create(self.ns(), pod, self.named("pod", &name)).await
    }

    /// Deletes the pod (only while it is the one `seen`) and waits until it is gone.
    pub async fn delete_pod(&self, name: &str, seen: Option<&Seen>) -> Result<()> {
        delete::<Pod>(self.ns(), name, self.named("pod", name), seen).await?;
        wait::until(
            &format!("{} to be deleted", self.named("pod", name)),
            Duration::from_secs(120),
            || async { Ok(self.pod(name).await?.is_none().then_some(())) },
        )
        .await
    }

    /// Deletes a pod its controller recreates under the same name (a StatefulSet's) and waits
    /// until the new one (another uid) is ready.
    pub async fn restart_pod(&self, name: &str, timeout: Duration) -> Result<()> {
        let old = self.pod(name).await?.and_then(|p| p.metadata.uid);
        delete::<Pod>(self.ns(), name, self.named("pod", name), None).await?;
        wait::until(
            &format!("{} to be recreated", self.named("pod", name)),
            timeout,
            || async {
                Ok(self
                    .pod(name)
                    .await?
                    .filter(|p| p.metadata.uid != old)
                    .map(|_| ()))
            },
        )
        .await?;
        self.wait_pod_ready(name, timeout).await
    }

    pub async fn claim(&self, name: &str) -> Result<Option<PersistentVolumeClaim>> {
        get(self.ns(), name, self.named(CLAIM, name)).await
    }

    /// Every claim of the namespace.
    pub async fn claims(&self) -> Result<Vec<PersistentVolumeClaim>> {
        let what = format!("claims in namespace {}", self.namespace);
        list(self.ns(), &ListParams::default(), what).await
    }

    pub async fn ensure_claim(&self, claim: &PersistentVolumeClaim) -> Result<()> {
        let name = claim.metadata.name.clone().unwrap_or_default();
        if self.claim(&name).await?.is_some() {
            return Ok(());
        }
        create(self.ns(), claim, self.named(CLAIM, &name)).await
    }

    /// Deletes claims, each only while it is the one seen (missing ones are fine), and waits
    /// until they are gone.
    pub async fn delete_claims(&self, claims: &[(String, Option<Seen>)]) -> Result<()> {
        for (name, seen) in claims {
            let what = self.named(CLAIM, name);
            delete::<PersistentVolumeClaim>(self.ns(), name, what, seen.as_ref()).await?;
        }
        for (name, _) in claims {
            wait::until(
                &format!("{} to be deleted", self.named(CLAIM, name)),
                Duration::from_secs(300),
                || async { Ok(self.claim(name).await?.is_none().then_some(())) },
            )
            .await?;
        }
        Ok(())
    }

    /// Creates the Service unless one of that name exists.
    pub async fn ensure_service(&self, service: &Service) -> Result<()> {
        let name = service.metadata.name.clone().unwrap_or_default();
        let what = self.named("Service", &name);
        if get::<Service>(self.ns(), &name, what.clone())
            .await?
            .is_some()
        {
            return Ok(());
        }
        create(self.ns(), service, what).await
    }

    pub async fn service(&self, name: &str) -> Result<Option<Service>> {
        get(self.ns(), name, self.named("Service", name)).await
    }

    pub async fn delete_service(&self, name: &str, seen: Option<&Seen>) -> Result<()> {
        delete::<Service>(self.ns(), name, self.named("Service", name), seen).await
    }

    pub async fn volume(&self, name: &str) -> Result<Option<PersistentVolume>> {
        get(self.cluster(), name, format!("PersistentVolume {name}")).await
    }

    pub async fn volumes(&self) -> Result<Vec<PersistentVolume>> {
        let what = "PersistentVolumes".to_string();
        list(self.cluster(), &ListParams::default(), what).await
    }

    pub async fn set_reclaim_policy(&self, volume: &str, policy: &str) -> Result<()> {
        let patch = json!({ "spec": { "persistentVolumeReclaimPolicy": policy } });
        let failure = format!("cannot set PersistentVolume {volume} to {policy}");
        merge_patch::<PersistentVolume>(self.cluster(), volume, patch, failure).await
    }

    /// Reserves a volume for a claim that does not exist yet (no uid: any claim of that
    /// name binds to it).
    pub async fn reserve_volume(&self, volume: &str, claim: &str) -> Result<()> {
        let patch = json!({ "spec": { "claimRef": {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "namespace": self.namespace, "name": claim, "uid": null, "resourceVersion": null
        } } });
        let failure = format!(
            "cannot reserve PersistentVolume {volume} for {}",
            self.named("claim", claim)
        );
        merge_patch::<PersistentVolume>(self.cluster(), volume, patch, failure).await
    }

    /// Points a volume at a claim of the past (`uid` is one no claim has any more): the
    /// volume is Released and binds to no claim, whatever its name.
    pub async fn release_volume(&self, volume: &str, claim: &str, uid: &str) -> Result<()> {
        let patch = json!({ "spec": { "claimRef": {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "namespace": self.namespace, "name": claim, "uid": uid, "resourceVersion": null
        } } });
        let failure = format!(
            "cannot release PersistentVolume {volume} to {}",
            self.named("claim", claim)
        );
        merge_patch::<PersistentVolume>(self.cluster(), volume, patch, failure).await
    }

    pub async fn delete_volume(&self, name: &str, seen: Option<&Seen>) -> Result<()> {
        let what = format!("PersistentVolume {name}");
        delete::<PersistentVolume>(self.cluster(), name, what, seen).await
    }

    pub async fn secret(&self, name: &str) -> Result<Option<Secret>> {
        get(self.ns(), name, self.named("Secret", name)).await
    }

    pub async fn delete_secret(&self, name: &str, seen: Option<&Seen>) -> Result<()> {
        delete::<Secret>(self.ns(), name, self.named("Secret", name), seen).await
    }

    /// Creates or replaces a Secret with `data` (values never logged).
    pub async fn put_secret(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        data: BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        self.put_secret_annotated(name, labels, BTreeMap::new(), data)
            .await
            .map(|_| ())
    }

    /// Creates or replaces a Secret with these labels and annotations; the Secret as written.
    pub async fn put_secret_annotated(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        data: BTreeMap<String, Vec<u8>>,
    ) -> Result<Secret> {
        let secret = Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..Default::default()
            },
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            type_: Some("Opaque".to_string()),
            ..Secret::default()
        };
        let api = self.ns::<Secret>();
        let result = match api.get_opt(name).await {
            Ok(Some(_)) => api.replace(name, &PostParams::default(), &secret).await,
            Ok(None) => api.create(&PostParams::default(), &secret).await,
            Err(e) => Err(e),
        };
        result.map_err(|e| api_error(e, format!("cannot write Secret {}/{name}", self.namespace)))
    }

    pub async fn storage_classes(&self) -> Result<Vec<StorageClass>> {
        let what = "StorageClasses".to_string();
        list(self.cluster(), &ListParams::default(), what).await
    }

    pub async fn quotas(&self) -> Result<Vec<ResourceQuota>> {
        let what = format!("ResourceQuotas in {}", self.namespace);
        list(self.ns(), &ListParams::default(), what).await
    }

    /// Asks the API server whether the current identity may do `verb` on `resource`.
    pub async fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespaced: bool,
    ) -> Result<bool> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    namespace: namespaced.then(|| self.namespace.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &review)
            .await
            .map(|r| r.status.map(|s| s.allowed).unwrap_or(false))
            .map_err(|e| {
                api_error(
                    e,
                    format!("cannot check the permission to {verb} {resource}"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_refusal_is_told_apart_from_a_missing_permission() {
        let pod_security = "pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true)";
        assert!(admission_hint(pod_security)
            .unwrap()
            .contains("Pod Security level"));
        let exceeded = "pods \"x\" is forbidden: exceeded quota: compute, requested: limits.cpu=1, used: limits.cpu=2, limited: limits.cpu=2";
        assert!(admission_hint(exceeded)
            .unwrap()
            .contains("raise the quota"));
        let required =
            "pods \"x\" is forbidden: failed quota: compute: must specify limits.cpu for: c";
        assert!(admission_hint(required).unwrap().contains("LimitRange"));
        let rbac = "pods is forbidden: User \"reader\" cannot create resource \"pods\" in API group \"\" in the namespace \"live-agent\"";
        assert_eq!(admission_hint(rbac), None);
    }
}
