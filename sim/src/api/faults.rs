//! Injected API failures: every request (but discovery of the fault itself) answers with an
//! error status until a deadline, to test how clients cope with an unavailable API server.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiFault {
    /// HTTP status to answer with (500, 503, 429 ...)
    pub code: u16,
    pub seconds: u64,
    /// Only requests whose path contains this string fail (empty: all)
    #[serde(default)]
    pub path_contains: String,
    /// Only requests with this method fail (empty: all)
    #[serde(default)]
    pub method: String,
}

#[derive(Default)]
pub struct Faults {
    active: Mutex<Option<(ApiFault, Instant)>>,
}

impl Faults {
    pub fn set(&self, f: ApiFault) {
        let until = Instant::now() + Duration::from_secs(f.seconds);
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = Some((f, until));
    }

    /// The status code to fail this request with, if a fault is active for it.
    pub fn check(&self, method: &str, path: &str) -> Option<u16> {
        let mut g = self.active.lock().unwrap_or_else(|p| p.into_inner());
        match &*g {
            Some((f, until)) if Instant::now() < *until => ((f.path_contains.is_empty()
                || path.contains(&f.path_contains))
                && (f.method.is_empty() || f.method == method))
                .then_some(f.code),
            Some(_) => {
                *g = None;
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_hits_only_the_requests_it_names() {
        let faults = Faults::default();
        faults.set(ApiFault {
            code: 503,
            seconds: 60,
            path_contains: "/statefulsets".into(),
            method: "POST".into(),
        });
        let path = "/apis/apps/v1/namespaces/live-agent/statefulsets";
        assert_eq!(faults.check("POST", path), Some(503));
        assert_eq!(faults.check("GET", &format!("{path}/db")), None);
        assert_eq!(
            faults.check("POST", "/api/v1/namespaces/live-agent/secrets"),
            None
        );
        faults.set(ApiFault {
            code: 500,
            seconds: 0,
            path_contains: String::new(),
            method: String::new(),
        });
        assert_eq!(
            faults.check("GET", path),
            None,
            "an expired fault hits nothing"
        );
    }
}
