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
    pub fn check(&self, path: &str) -> Option<u16> {
        let mut g = self.active.lock().unwrap_or_else(|p| p.into_inner());
        match &*g {
            Some((f, until)) if Instant::now() < *until => {
                (f.path_contains.is_empty() || path.contains(&f.path_contains)).then_some(f.code)
            }
            Some(_) => {
                *g = None;
                None
            }
            None => None,
        }
    }
}
