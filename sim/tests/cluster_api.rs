//! Acceptance: authentication, authorization and the guide's kubectl commands against the sim.

mod cluster_support;

use std::time::Duration;

use cluster_support::{helm, kubectl, SimProcess};

#[test]
fn a_wrong_token_gets_401_and_kubectl_says_unauthorized() {
    let sim = SimProcess::start_without_runtime();
    let cfg = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    let token = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("token line")
        .to_string();
    let bad = sim.state_dir().join("bad-kubeconfig");
    std::fs::write(&bad, cfg.replace(&token, "not-a-valid-token")).unwrap();
    let out = sim.run_as(&bad, &kubectl(), &["get", "pods"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("You must be logged in to the server"), "{err}");
}

#[test]
fn a_restricted_identity_gets_403_and_honest_access_reviews() {
    let sim = SimProcess::start_without_runtime();
    sim.kubectl(&["create", "namespace", "live-agent"]);
    let rules = sim.state_dir().join("reader.json");
    std::fs::write(&rules, r#"[{"verbs":["get","list","watch"],"apiGroups":[""],"resources":["pods","secrets"],"namespaces":["live-agent"]}]"#).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_la-sim"))
        .args(["identity", "--state-dir"])
        .arg(sim.state_dir())
        .args(["--name", "reader", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let ok = sim.run_as(&cfg, &kubectl(), &["get", "pods", "-n", "live-agent"], None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let denied = sim.run_as(
        &cfg,
        &kubectl(),
        &["delete", "secret", "x", "-n", "live-agent"],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&denied.stderr).trim(),
        "Error from server (Forbidden): secrets \"x\" is forbidden: User \"reader\" cannot delete resource \"secrets\" in API group \"\" in the namespace \"live-agent\""
    );
    let pv = sim.run_as(&cfg, &kubectl(), &["get", "pv"], None);
    assert!(String::from_utf8_lossy(&pv.stderr).contains(
        "cannot list resource \"persistentvolumes\" in API group \"\" at the cluster scope"
    ));
    let yes = sim.run_as(
        &cfg,
        &kubectl(),
        &["auth", "can-i", "list", "secrets", "-n", "live-agent"],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&yes.stdout).trim(), "yes");
    let no = sim.run_as(
        &cfg,
        &kubectl(),
        &["auth", "can-i", "create", "pods/exec", "-n", "live-agent"],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");
}

/// The guide's backup StatefulSet, Service and StorageClass.
const BACKUP_MANIFEST: &str = include_str!("fixtures/backup-pod.yaml");

#[test]
fn the_guides_kubectl_commands_work_on_a_4_43_1_install() {
    let sim = SimProcess::start_without_runtime();
    sim.install_4_43_1("3.19.0", "cognigy-live-agent", "live-agent");
    let manifest = sim.state_dir().join("backup-pod.yaml");
    std::fs::write(&manifest, BACKUP_MANIFEST).unwrap();
    let applied = sim.kubectl(&[
        "apply",
        "-n",
        "live-agent",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    assert!(
        applied.contains("storageclass.storage.k8s.io/postgres-backup created"),
        "{applied}"
    );
    assert!(
        applied.contains("statefulset.apps/postgres-backup created"),
        "{applied}"
    );
    sim.wait_for(
        &[
            "get",
            "pvc",
            "postgres-backup-claim-postgres-backup-0",
            "-n",
            "live-agent",
            "-o",
            "jsonpath={.status.phase}",
        ],
        "the backup claim to bind",
        Duration::from_secs(30),
        |o| o == "Bound",
    );

    // Step 1: scale the app off.
    for d in [
        "cognigy-live-agent",
        "cognigy-live-agent-worker",
        "cognigy-live-agent-odata",
    ] {
        let out = sim.kubectl(&[
            "scale",
            "--replicas=0",
            "-n",
            "live-agent",
            &format!("deployment/{d}"),
        ]);
        assert_eq!(out.trim(), format!("deployment.apps/{d} scaled"));
    }
    sim.wait_for(
        &[
            "get",
            "pods",
            "-n",
            "live-agent",
            "-l",
            "app.kubernetes.io/name=live-agent",
            "-o",
            "name",
        ],
        "app pods to go",
        Duration::from_secs(30),
        |o| o.trim().is_empty(),
    );

    // Step 3: keep the attachments volume, uninstall, free it, delete the database claims.
    let pv = sim.kubectl(&[
        "get",
        "pvc",
        "live-agent",
        "-n",
        "live-agent",
        "-o",
        "jsonpath={.spec.volumeName}",
    ]);
    let listing = sim.kubectl(&["get", "pv"]);
    assert!(
        listing.contains("RECLAIM POLICY") && listing.contains(&pv) && listing.contains("Delete"),
        "{listing}"
    );
    sim.retain_volume(&pv);
    sim.ok(
        &helm("3.19.0"),
        &["delete", "-n", "live-agent", "cognigy-live-agent"],
    );
    sim.wait_volume_phase(
        &pv,
        "Released",
        "the attachments volume to be Released",
        Duration::from_secs(30),
    );
    sim.kubectl(&["patch", "pv", &pv, "-p", r#"{"spec":{"claimRef": null}}"#]);
    sim.wait_volume_phase(
        &pv,
        "Available",
        "the attachments volume to be Available",
        Duration::from_secs(30),
    );
    for pvc in [
        "data-cognigy-live-agent-postgresql-0",
        "redis-data-cognigy-live-agent-redis-master-0",
        "redis-data-cognigy-live-agent-redis-replicas-0",
    ] {
        let out = sim.kubectl(&["delete", "pvc", "-n", "live-agent", pvc]);
        assert!(
            out.starts_with(&format!("persistentvolumeclaim \"{pvc}\" deleted")),
            "{out}"
        );
    }
    // Step 4: the database secrets.
    for s in ["cognigy-live-agent-postgresql", "cognigy-live-agent-redis"] {
        let out = sim.run(&kubectl(), &["delete", "secret", "-n", "live-agent", s]);
        // Uninstall removed them already: NotFound, worded like the real server.
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("Error from server (NotFound): secrets \"{s}\" not found")
        );
    }
    // A new `live-agent` claim binds to the retained volume once it is Available.
    let claim = sim.state_dir().join("claim.yaml");
    std::fs::write(&claim, "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: live-agent\n  namespace: live-agent\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 10Gi\n").unwrap();
    sim.kubectl(&["apply", "-f", claim.to_str().unwrap()]);
    let bound = sim.wait_for(
        &[
            "get",
            "pvc",
            "live-agent",
            "-n",
            "live-agent",
            "-o",
            "jsonpath={.status.phase} {.spec.volumeName}",
        ],
        "the new claim to bind",
        Duration::from_secs(30),
        |o| o.starts_with("Bound"),
    );
    assert_eq!(bound, format!("Bound {pv}"));
    // Step 9: clean up the backup objects.
    sim.kubectl(&[
        "delete",
        "statefulset",
        "-n",
        "live-agent",
        "postgres-backup",
    ]);
    sim.kubectl(&["delete", "service", "-n", "live-agent", "postgres-backup"]);
    sim.kubectl(&["delete", "sc", "postgres-backup"]);
    sim.kubectl(&[
        "delete",
        "pvc",
        "-n",
        "live-agent",
        "postgres-backup-claim-postgres-backup-0",
    ]);
    // Its class retains: the volume stays, Released.
    let pvs = sim.wait_for(
        &[
            "get",
            "pv",
            "-o",
            "jsonpath={range .items[*]}{.spec.storageClassName}={.status.phase}{\"\\n\"}{end}",
        ],
        "the backup volume to be Released",
        Duration::from_secs(30),
        |o| o.contains("postgres-backup=Released"),
    );
    assert!(pvs.contains("postgres-backup=Released"), "{pvs}");
}

#[test]
fn kubectl_exec_streams_pg_dump_out_and_psql_in_and_reports_the_exit_code() {
    let sim = SimProcess::start_with_runtime();
    sim.install_4_43_1("3.19.0", "cognigy-live-agent", "live-agent");
    let pod = "cognigy-live-agent-postgresql-0";
    let in_pod = |script: &str| {
        vec![
            "exec".to_string(),
            "-i".into(),
            "-n".into(),
            "live-agent".into(),
            pod.into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            format!("export PGPASSWORD=$POSTGRES_PASSWORD; {script}"),
        ]
    };
    // A table big enough that the dump spans many WebSocket frames.
    let load = "create table notes (id int primary key, body text);\n\
                insert into notes select g, repeat(md5(g::text), 20) from generate_series(1, 20000) g;\n";
    let args = in_pod("psql -v ON_ERROR_STOP=1 -U postgres -d live_agent_production");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sim.run_as(&sim.kubeconfig, &kubectl(), &args, Some(load));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "CREATE TABLE\nINSERT 0 20000\n"
    );

    let args = in_pod("pg_dump -U postgres -d live_agent_production -t notes");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dump = sim.kubectl(&args);
    assert!(dump.len() > 20000 * 640, "dump of {} bytes", dump.len());
    assert!(dump.contains("COPY public.notes (id, body) FROM stdin;"));
    assert!(dump.contains("-- PostgreSQL database dump complete"));

    // The dump, streamed back in through stdin, restores into a new database.
    let args =
        in_pod("createdb -U postgres copy && psql -v ON_ERROR_STOP=1 -q -U postgres -d copy");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sim.run_as(&sim.kubeconfig, &kubectl(), &args, Some(&dump));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args =
        in_pod("psql -U postgres -d copy -tAc 'select count(*), sum(length(body)) from notes'");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(sim.kubectl(&args).trim(), "20000|12800000");

    // A failing command's exit code comes back through kubectl.
    let args = in_pod("psql -v ON_ERROR_STOP=1 -U postgres -d copy -c 'select 1/0'");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sim.run(&kubectl(), &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("division by zero"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn la_sim_fault(sim: &SimProcess, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_la-sim"))
        .args(["fault", "--state-dir"])
        .arg(sim.state_dir())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_killed_server_restarts_and_counts_it_and_an_api_fault_fails_requests_for_a_while() {
    let sim = SimProcess::start_with_runtime();
    sim.install_4_43_1("3.19.0", "cognigy-live-agent", "live-agent");
    let pod = "cognigy-live-agent-postgresql-0";
    let said = la_sim_fault(&sim, &["kill", "-n", "live-agent", pod]);
    assert_eq!(
        said.trim(),
        format!("killed cognigy-live-agent-postgresql in pod live-agent/{pod}")
    );
    let state = sim.wait_for(
        &[
            "get",
            "pod",
            pod,
            "-n",
            "live-agent",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}",
        ],
        "the PostgreSQL pod to restart and be Ready",
        Duration::from_secs(60),
        |o| o == "1 true",
    );
    assert_eq!(state, "1 true");
    let listing = sim.kubectl(&["get", "pod", pod, "-n", "live-agent"]);
    assert!(listing.contains("Running   1 "), "{listing}");

    la_sim_fault(&sim, &["api", "--code", "500", "--seconds", "3"]);
    let out = sim.run(&kubectl(), &["get", "pods", "-n", "live-agent"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (InternalError)") && err.contains("injected fault"),
        "{err}"
    );
    sim.wait_for(
        &["get", "pods", "-n", "live-agent", "-o", "name"],
        "the API to answer again",
        Duration::from_secs(10),
        |o| o.contains(pod),
    );
}

/// A claim deleted and created again by someone else between a client's look and its delete
/// is not deleted by that client: the real server checks a DELETE's `preconditions` (uid,
/// resourceVersion) and answers 409 Conflict with its message.
#[test]
fn a_delete_with_preconditions_spares_an_object_created_again_or_changed_since() {
    let sim = SimProcess::start_without_runtime();
    let api = cluster_support::api::Api::new(&sim.kubeconfig);
    let secrets = "/api/v1/namespaces/default/secrets";
    let create = |data: &str| {
        let (code, body) = api.request(
            "POST",
            secrets,
            Some(&serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db"}, "data": {"k": data}})),
        );
        assert_eq!(code, 201, "{body}");
        let field = |f: &str| body["metadata"][f].as_str().unwrap().to_string();
        (field("uid"), field("resourceVersion"))
    };
    let delete = |uid: Option<&str>, rv: Option<&str>| {
        let mut pre = serde_json::Map::new();
        if let Some(uid) = uid {
            pre.insert("uid".into(), uid.into());
        }
        if let Some(rv) = rv {
            pre.insert("resourceVersion".into(), rv.into());
        }
        api.request(
            "DELETE",
            &format!("{secrets}/db"),
            Some(&serde_json::json!({"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": pre})),
        )
    };
    let exists = || api.request("GET", &format!("{secrets}/db"), None).0 == 200;

    let (first_uid, _) = create("b25l");
    let (code, _) = delete(Some(&first_uid), None);
    assert_eq!(code, 200);
    let (second_uid, second_rv) = create("dHdv");
    let (code, status) = delete(Some(&first_uid), None);
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        format!("Operation cannot be fulfilled on secrets \"db\": Precondition failed: UID in precondition: {first_uid}, UID in object meta: {second_uid}")
    );
    assert_eq!(status["details"]["name"], "db");
    assert!(exists(), "the object created again was deleted");

    // Changed since it was read: the resourceVersion precondition refuses.
    let (code, changed) = api.request(
        "PATCH",
        &format!("{secrets}/db"),
        Some(&serde_json::json!({"metadata": {"labels": {"changed": "yes"}}})),
    );
    assert_eq!(code, 200, "{changed}");
    let now_rv = changed["metadata"]["resourceVersion"].as_str().unwrap();
    let (code, status) = delete(Some(&second_uid), Some(&second_rv));
    assert_eq!(code, 409, "{status}");
    assert_eq!(
        status["message"],
        format!("Operation cannot be fulfilled on secrets \"db\": Precondition failed: ResourceVersion in precondition: {second_rv}, ResourceVersion in object meta: {now_rv}")
    );
    assert!(exists());

    let (code, status) = delete(Some(&second_uid), Some(now_rv));
    assert_eq!(code, 200, "{status}");
    assert!(!exists());
}
