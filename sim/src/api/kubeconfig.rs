//! Kubeconfig files for the sim's identities.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::json;

pub fn path(state_dir: &Path, identity: &str) -> PathBuf {
    if identity == "admin" {
        state_dir.join("kubeconfig")
    } else {
        state_dir.join(format!("kubeconfig-{identity}"))
    }
}

/// Renders a kubeconfig with the CA, the server address and the identity's token.
pub fn render(server: &str, ca_pem: &str, identity: &str, token: &str, namespace: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let cfg = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "la-sim", "cluster": { "server": format!("https://{server}"), "certificate-authority-data": ca } }],
        "users": [{ "name": identity, "user": { "token": token } }],
        "contexts": [{ "name": format!("la-sim-{identity}"), "context": { "cluster": "la-sim", "user": identity, "namespace": namespace } }],
        "current-context": format!("la-sim-{identity}"),
        "preferences": {},
    });
    serde_norway::to_string(&cfg).expect("kubeconfig serialises")
}

/// Writes a kubeconfig readable by the owner only (it holds a token).
pub fn write(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(content.as_bytes())?;
    std::fs::rename(tmp, path)
}
