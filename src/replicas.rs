//! The replicas the upgrade starts the app with: those recorded before the scale-down. A
//! workload recorded at 0 (scaled down by the operator before the migration) would leave the
//! app off after a "complete" run, so it takes the release's values instead (`app.replica`,
//! `worker.replica`, `odata.replica`), else the chart's default. Pure.

use std::collections::BTreeMap;

use crate::plan::commands::replica_key;
use crate::plan::facts::WorkloadFacts;

/// `app.replica`, `worker.replica` and `odata.replica` in `values.yaml` of charts 4.43.1 and
/// 4.44.0.
pub const CHART_DEFAULT_REPLICAS: i32 = 1;

/// The replicas for the upgrade, and a note for each count not taken from the record.
pub fn for_upgrade(
    workloads: &[WorkloadFacts],
    recorded: &BTreeMap<String, i32>,
    values: &serde_norway::Value,
) -> (Vec<WorkloadFacts>, Vec<String>) {
    let mut notes = Vec::new();
    let counts = workloads
        .iter()
        .map(|w| {
            let was = *recorded.get(&w.name).unwrap_or(&w.replicas);
            let key = replica_key(w.role);
            let replicas = match (was, value_at(values, key)) {
                (n, _) if n > 0 => n,
                (_, Some(v)) => {
                    notes.push(format!(
                        "Deployment {} was at 0 replicas when the migration started: the upgrade uses {key}={v} from the release's values",
                        w.name
                    ));
                    v
                }
                (_, None) => {
                    notes.push(format!(
                        "Deployment {} was at 0 replicas when the migration started: the upgrade uses the chart's default {key}={CHART_DEFAULT_REPLICAS}",
                        w.name
                    ));
                    CHART_DEFAULT_REPLICAS
                }
            };
            WorkloadFacts {
                replicas,
                ..w.clone()
            }
        })
        .collect();
    (counts, notes)
}

/// An integer at a dotted path of the values.
fn value_at(values: &serde_norway::Value, path: &str) -> Option<i32> {
    path.split('.')
        .try_fold(values, |v, key| v.get(key))?
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::facts::WorkloadRole;

    fn workload(role: WorkloadRole, name: &str) -> WorkloadFacts {
        WorkloadFacts {
            role,
            name: name.into(),
            replicas: 0,
            selector: String::new(),
        }
    }

    #[test]
    fn a_workload_recorded_at_0_takes_the_values_or_the_chart_default() {
        let workloads = [
            workload(WorkloadRole::App, "la"),
            workload(WorkloadRole::Worker, "la-worker"),
            workload(WorkloadRole::Odata, "la-odata"),
        ];
        let recorded = BTreeMap::from([
            ("la".to_string(), 0),
            ("la-worker".to_string(), 0),
            ("la-odata".to_string(), 3),
        ]);
        let values: serde_norway::Value =
            serde_norway::from_str("app:\n  replica: 2\nworker: {}\n").unwrap();
        let (counts, notes) = for_upgrade(&workloads, &recorded, &values);
        let got: Vec<i32> = counts.iter().map(|w| w.replicas).collect();
        assert_eq!(got, [2, 1, 3]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("app.replica=2 from the release's values"));
        assert!(notes[1].contains("chart's default worker.replica=1"));
    }

    #[test]
    fn counts_recorded_above_0_are_kept() {
        let mut w = workload(WorkloadRole::App, "la");
        w.replicas = 5;
        let (counts, notes) = for_upgrade(&[w], &BTreeMap::new(), &serde_norway::Value::Null);
        assert_eq!(counts[0].replicas, 5);
        assert!(notes.is_empty());
    }
}
