//! The pod network, as a cluster's network plugin would lay it out on one node: a bridge per
//! running sim holding the gateway address of its [`Subnet`], and per pod a veth pair, one end
//! on the bridge, the other as `eth0` in the pod's network namespace with the pod's address
//! and a default route through the gateway. Pods reach each other over the bridge; the host
//! (readiness checks, tests) reaches them through the bridge's route.
//!
//! Configured with iproute2's `ip` (`ip -batch -`), on the host and, for the pod's end, in
//! the pod's network namespace (forked there by the spawner). Needs `CAP_NET_ADMIN` (root).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{Error, Result};
use super::subnet::{Subnet, SubnetClaim};

/// A claimed subnet and its bridge; the bridge is removed on [`PodNetwork::remove`] or drop.
pub struct PodNetwork {
    claim: SubnetClaim,
    removed: AtomicBool,
}

impl PodNetwork {
    /// Claims a subnet (locks in `lock_dir`) and sets up its bridge.
    pub fn create(lock_dir: &Path) -> Result<PodNetwork> {
        let claim = SubnetClaim::first_free(lock_dir)
            .map_err(|e| Error::new(format!("cannot claim a pod subnet: {e}")))?;
        PodNetwork::set_up(claim)
    }

    /// Sets up the bridge of a claimed subnet. A bridge of that name is a leftover of a sim
    /// killed before it could remove it (the claim says no running sim has it): replaced.
    fn set_up(claim: SubnetClaim) -> Result<PodNetwork> {
        let subnet = claim.subnet();
        let bridge = subnet.bridge();
        if Path::new("/sys/class/net").join(&bridge).exists() {
            run_ip(&format!("link delete {bridge}\n")).map_err(|e| {
                Error::new(format!("cannot remove the leftover bridge {bridge}: {e}"))
            })?;
        }
        let script = format!(
            "link add {bridge} type bridge\n\
             address add {gateway}/{len} dev {bridge}\n\
             link set {bridge} up\n",
            gateway = subnet.gateway(),
            len = Subnet::PREFIX_LEN,
        );
        run_ip(&script).map_err(|e| {
            Error::new(format!(
                "cannot create the pod network (bridge {bridge} for {subnet}): {e}; the sim \
                 runs pods as root (CAP_NET_ADMIN), or start it with --no-runtime"
            ))
        })?;
        Ok(PodNetwork {
            claim,
            removed: AtomicBool::new(false),
        })
    }

    pub fn subnet(&self) -> Subnet {
        self.claim.subnet()
    }

    /// Gives the network namespace of process `pid` (a pod's init) the address `ip`: a veth
    /// pair to the bridge, `lo` up, the default route through the gateway. `in_pod` spawns a
    /// command in that namespace.
    pub fn attach(
        &self,
        pid: i32,
        ip: Ipv4Addr,
        in_pod: impl FnOnce(Command) -> std::io::Result<Child>,
    ) -> Result<()> {
        let subnet = self.subnet();
        if !subnet.contains(ip) {
            return Err(Error::new(format!(
                "pod address {ip} is not in the runtime's subnet {subnet}"
            )));
        }
        let (bridge, veth) = (subnet.bridge(), subnet.veth(ip));
        let host_side = format!(
            "link add {veth} type veth peer name eth0 netns {pid}\n\
             link set {veth} master {bridge} up\n"
        );
        if let Err(first) = run_ip(&host_side) {
            // The veth of a pod that had this address and is not quite gone yet.
            if Path::new("/sys/class/net").join(&veth).exists() {
                let _ = run_ip(&format!("link delete {veth}\n"));
                run_ip(&host_side)
            } else {
                Err(first)
            }
            .map_err(|e| Error::new(format!("cannot connect {ip} to bridge {bridge}: {e}")))?;
        }
        let pod_side = format!(
            "link set lo up\n\
             address add {ip}/{len} dev eth0\n\
             link set eth0 up\n\
             route add default via {gateway}\n",
            len = Subnet::PREFIX_LEN,
            gateway = subnet.gateway(),
        );
        ip_batch(&pod_side, in_pod)
            .map_err(|e| Error::new(format!("cannot give the pod its address {ip}: {e}")))
    }

    /// Removes the veth pair of the pod at `ip` (the kernel would, once its namespace is gone).
    pub fn detach(&self, ip: Ipv4Addr) {
        let veth = self.subnet().veth(ip);
        if self.subnet().contains(ip) && Path::new("/sys/class/net").join(&veth).exists() {
            let _ = run_ip(&format!("link delete {veth}\n"));
        }
    }

    /// Removes the bridge (once; after every pod is stopped).
    pub fn remove(&self) {
        if !self.removed.swap(true, Ordering::SeqCst) {
            let _ = run_ip(&format!("link delete {}\n", self.subnet().bridge()));
        }
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs `ip -batch -` with `script` on stdin on the host.
fn run_ip(script: &str) -> std::result::Result<(), String> {
    ip_batch(script, |mut cmd| cmd.spawn())
}

/// Runs `ip -batch -` with `script` on stdin, started by `spawn`; the error holds ip's stderr.
fn ip_batch(
    script: &str,
    spawn: impl FnOnce(Command) -> std::io::Result<Child>,
) -> std::result::Result<(), String> {
    // Where iproute2 puts it, also when sbin is not on PATH.
    let program = ["/usr/sbin/ip", "/sbin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("ip");
    let mut cmd = Command::new(program);
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the `ip` command is missing; install iproute2 (scripts/install-test-deps.sh)".into()
        } else {
            format!("cannot run ip: {e}")
        }
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_exists(name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    fn bridge_addresses(bridge: &str) -> String {
        let out = Command::new("ip")
            .args(["-4", "-o", "address", "show", "dev", bridge])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn a_bridge_left_by_a_killed_sim_is_replaced_and_removed_with_the_network() {
        let lock_dir = super::super::subnet::default_lock_dir();
        let claim = SubnetClaim::first_free(&lock_dir).unwrap();
        let subnet = claim.subnet();
        let bridge = subnet.bridge();
        // What a SIGKILLed sim leaves: its bridge, up, with its address and a stray one.
        let stray = subnet.address(5);
        run_ip(&format!(
            "link add {bridge} type bridge\n\
             address add {}/24 dev {bridge}\n\
             address add {stray}/32 dev {bridge}\n\
             link set {bridge} up\n",
            subnet.gateway()
        ))
        .unwrap();
        let network = PodNetwork::set_up(claim).unwrap();
        let addresses = bridge_addresses(&bridge);
        assert!(
            addresses.contains(&format!("{}/24", subnet.gateway())),
            "{addresses}"
        );
        assert!(!addresses.contains(&format!("{stray}/")), "{addresses}");
        drop(network);
        assert!(!link_exists(&bridge));
    }
}
