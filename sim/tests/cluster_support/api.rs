//! A bare HTTPS client for the sim's API, for tests of the wire format itself: TLS trusting the
//! kubeconfig's CA, its bearer token, requests and answers as JSON, watch streams read to their
//! end, and exec WebSockets offering exactly the subprotocols a test names.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

pub struct Api {
    /// `127.0.0.1:<port>`
    address: String,
    token: String,
    tls: Arc<rustls::ClientConfig>,
}

/// What an exec session sent back, by channel.
#[derive(Debug, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The Status on channel 3
    pub status: Option<Value>,
}

impl Api {
    /// The server, CA and token of a kubeconfig the sim wrote.
    pub fn new(kubeconfig: &Path) -> Api {
        use base64::Engine;
        let cfg: Value =
            serde_norway::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
        let server = cfg["clusters"][0]["cluster"]["server"].as_str().unwrap();
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                cfg["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&ca).expect("CA certificate"))
            .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Api {
            address: server.trim_start_matches("https://").to_string(),
            token: cfg["users"][0]["user"]["token"]
                .as_str()
                .unwrap()
                .to_string(),
            tls: Arc::new(tls),
        }
    }

    fn connect(&self) -> Tls {
        let tcp = TcpStream::connect(&self.address).expect("connect to the API server");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    }

    /// One request (`Connection: close`); the status code and the body as JSON. PATCH bodies
    /// go as JSON merge patches.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (code, body) = self.raw(method, path, body);
        let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {code} with a body that is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        (code, json)
    }

    /// A watch request read to its end (ask for `timeoutSeconds`): the status code and every
    /// event line.
    pub fn watch(&self, path: &str) -> (u16, Vec<Value>) {
        let (code, body) = self.raw("GET", path, None);
        let events = String::from_utf8(body)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (code, events)
    }

    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
        let mut stream = self.connect();
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.address,
            self.token,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        stream.flush().unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let code: u16 = status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: bad status line {status:?}"));
        let mut chunked = false;
        let mut length = None;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
                "content-length" => length = value.trim().parse::<usize>().ok(),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap() == 0 {
                    break;
                }
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                if size == 0 {
                    break;
                }
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                out.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(n) = length {
            out.resize(n, 0);
            reader.read_exact(&mut out).unwrap();
        } else {
            reader.read_to_end(&mut out).unwrap();
        }
        (code, out)
    }

    /// Opens `pods/exec` (path with its query) offering exactly `protocols`; returns the
    /// socket and the subprotocol the server chose.
    pub fn exec(&self, path: &str, protocols: &[&str]) -> (WebSocket<Tls>, String) {
        let mut req = format!("wss://{}{path}", self.address)
            .into_client_request()
            .unwrap();
        let headers = req.headers_mut();
        headers.insert(
            "Authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        headers.insert(
            "Sec-WebSocket-Protocol",
            protocols.join(", ").parse().unwrap(),
        );
        let (ws, response) = tungstenite::client(req, self.connect())
            .unwrap_or_else(|e| panic!("exec handshake on {path}: {e}"));
        let chosen = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (ws, chosen)
    }
}

/// Sends `data` on an exec channel (0 stdin, 4 resize).
pub fn send(ws: &mut WebSocket<Tls>, channel: u8, data: &[u8]) {
    let mut frame = vec![channel];
    frame.extend_from_slice(data);
    ws.send(Message::Binary(frame.into())).unwrap();
}

/// Reads an exec session to its close: each channel's bytes and the final Status.
pub fn read_to_close(ws: &mut WebSocket<Tls>) -> ExecOutput {
    let mut out = ExecOutput::default();
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => match b.split_first() {
                Some((1, rest)) => out.stdout.extend_from_slice(rest),
                Some((2, rest)) => out.stderr.extend_from_slice(rest),
                Some((3, rest)) => out.status = Some(serde_json::from_slice(rest).unwrap()),
                _ => {}
            },
            Ok(Message::Close(_)) => {}
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                return out
            }
            Err(e) => panic!("exec session: {e}"),
        }
    }
}
