//! Readiness checks, as the charts' probes would see them: a PostgreSQL startup handshake
//! (like `pg_isready`), Redis `AUTH` + `PING`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use super::programs::Readiness;

const TIMEOUT: Duration = Duration::from_millis(500);

pub fn is_ready(check: &Readiness, ip: Ipv4Addr) -> bool {
    match check {
        Readiness::Running => true,
        Readiness::Postgres { port } => postgres_accepts(ip, *port).unwrap_or(false),
        Readiness::Redis { port, password } => {
            redis_pongs(ip, *port, password.as_deref()).unwrap_or(false)
        }
    }
}

fn connect(ip: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&SocketAddr::from((ip, port)), TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Ready when the server asks for authentication (or rejects us for a reason other than
/// "the database system is starting up" / "shutting down", SQLSTATE 57P03), as `pg_isready`.
fn postgres_accepts(ip: Ipv4Addr, port: u16) -> std::io::Result<bool> {
    let mut stream = connect(ip, port)?;
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes()); // protocol 3.0
    for part in ["user", "postgres", "database", "postgres", ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    stream.write_all(&packet)?;
    let mut reply = [0u8; 512];
    let n = stream.read(&mut reply)?;
    Ok(match reply.first() {
        Some(b'R') => true,
        Some(b'E') => !String::from_utf8_lossy(&reply[..n]).contains("57P03"),
        _ => false,
    })
}

/// Ready when `PING` answers `PONG` (not `-LOADING`), after `AUTH` when a password is set.
fn redis_pongs(ip: Ipv4Addr, port: u16, password: Option<&str>) -> std::io::Result<bool> {
    let mut stream = connect(ip, port)?;
    let mut request = Vec::new();
    if let Some(pw) = password {
        request.extend_from_slice(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", pw.len()).as_bytes());
        request.extend_from_slice(pw.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    stream.write_all(&request)?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.ends_with(b"+PONG\r\n") && !seen.windows(1).any(|w| w == b"-") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(seen.ends_with(b"+PONG\r\n"))
}
