//! The state's ConfigMap: read, created and replaced with the resourceVersion it carries. A
//! write that another writer overtook is a [`Write::Conflict`], not an error: the caller
//! decides what that means.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::ops::Kube;

/// How a write ended when the API answered.
#[derive(Debug)]
pub enum Write {
    /// Written: the object's new resourceVersion.
    Done(Option<String>),
    /// Another writer got there first (HTTP 409).
    Conflict,
}

/// The ConfigMaps of the release's namespace.
#[derive(Clone)]
pub struct ConfigMaps {
    api: Api<ConfigMap>,
}

impl Kube {
    pub fn config_maps(&self) -> ConfigMaps {
        ConfigMaps { api: self.ns() }
    }
}

impl ConfigMaps {
    pub async fn get(&self, name: &str) -> Result<Option<ConfigMap>, kube::Error> {
        self.api.get_opt(name).await
    }

    /// Creates `cm`; a [`Write::Conflict`] when it exists already.
    pub async fn create(&self, cm: &ConfigMap) -> Result<Write, kube::Error> {
        written(self.api.create(&PostParams::default(), cm).await)
    }

    /// Deletes `name` if its resourceVersion is still `resource_version` (one already gone
    /// counts as deleted).
    pub async fn delete(
        &self,
        name: &str,
        resource_version: Option<String>,
    ) -> Result<Write, kube::Error> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version,
                uid: None,
            }),
            ..Default::default()
        };
        match self.api.delete(name, &params).await {
            Ok(_) => Ok(Write::Done(None)),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(Write::Done(None)),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Write::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Replaces `name` with `cm`, if its resourceVersion is still the one `cm` carries.
    pub async fn replace(&self, name: &str, cm: &ConfigMap) -> Result<Write, kube::Error> {
        written(self.api.replace(name, &PostParams::default(), cm).await)
    }
}

fn written(result: Result<ConfigMap, kube::Error>) -> Result<Write, kube::Error> {
    match result {
        Ok(saved) => Ok(Write::Done(saved.metadata.resource_version)),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Write::Conflict),
        Err(e) => Err(e),
    }
}
