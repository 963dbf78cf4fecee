//! Pod subnets: `10.240.0.0/12` cut into `/24`s. Each running sim claims one, so several
//! clusters (parallel tests, a demo beside a test run) never hand out the same pod address:
//! the gateway `.1` is the sim's bridge, `.2` to `.254` are pod addresses.
//!
//! A claim is an exclusive `flock` on `<dir>/subnet-N.lock`, held for the runtime's lifetime;
//! the kernel releases it when the process ends, however it ends. A subnet the machine already
//! routes (a VPN, a cloud network, another container runtime) is skipped.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where the claims live: one place for every sim on the machine (not `$TMPDIR`, which may
/// differ between them while the interfaces do not), emptied at boot.
pub fn default_lock_dir() -> PathBuf {
    PathBuf::from("/run/la-sim-pod-subnets")
}

/// One `/24` of `10.240.0.0/12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    index: u16,
}

impl Subnet {
    /// Subnets there are: `10.240.0.0/24` to `10.255.255.0/24`.
    pub const COUNT: u16 = 4096;
    /// Pod addresses in a subnet: `.2` to `.254`.
    pub const ADDRESSES: u32 = 253;
    pub const PREFIX_LEN: u8 = 24;
    /// The subnet of pods that run nothing (`--no-runtime`): never claimed, never on a bridge.
    pub const UNBRIDGED: Subnet = Subnet { index: 0 };

    pub fn new(index: u16) -> Option<Subnet> {
        (index < Self::COUNT).then_some(Subnet { index })
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            10,
            240 + (self.index / 256) as u8,
            (self.index % 256) as u8,
            0,
        )
    }

    /// The host's address on the subnet (the bridge), the pods' default route.
    pub fn gateway(&self) -> Ipv4Addr {
        self.host(1)
    }

    /// The `index`th pod address, 1-based: 1 is `.2`, [`Subnet::ADDRESSES`] is `.254`.
    pub fn address(&self, index: u32) -> Ipv4Addr {
        assert!(
            (1..=Self::ADDRESSES).contains(&index),
            "pod address index {index} outside 1..={}",
            Self::ADDRESSES
        );
        self.host(index as u8 + 1)
    }

    /// Whether `ip` is a pod address of this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let [a, b, c, d] = ip.octets();
        let [na, nb, nc, _] = self.network().octets();
        (a, b, c) == (na, nb, nc) && (2..=254).contains(&d)
    }

    /// The bridge of a sim on this subnet.
    pub fn bridge(&self) -> String {
        format!("lasim{}", self.index)
    }

    /// The host end of the veth pair of the pod at `ip` (interface names: 15 bytes at most).
    pub fn veth(&self, ip: Ipv4Addr) -> String {
        format!("lasim{}v{}", self.index, ip.octets()[3])
    }

    fn host(&self, last: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.network().octets();
        Ipv4Addr::new(a, b, c, last)
    }

    /// Whether a route of the machine's (from `/proc/net/route`) covers part of the subnet.
    /// The default route does not count, nor a route through this subnet's own bridge (left
    /// behind by a sim that was killed).
    pub fn is_routed(&self, proc_net_route: &str) -> bool {
        let network = u32::from(self.network());
        let mask = u32::MAX << (32 - Self::PREFIX_LEN);
        let bridge = self.bridge();
        proc_net_route.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(iface), Some(dest), Some(route_mask)) =
                (fields.first(), fields.get(1), fields.get(7))
            else {
                return false;
            };
            let (Some(dest), Some(route_mask)) = (route_field(dest), route_field(route_mask))
            else {
                return false;
            };
            let common = mask & route_mask;
            route_mask != 0 && *iface != bridge && dest & common == network & common
        })
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network(), Self::PREFIX_LEN)
    }
}

/// An address of `/proc/net/route`: the network-order bytes printed as a native integer.
fn route_field(hex: &str) -> Option<u32> {
    let raw = u32::from_str_radix(hex, 16).ok()?;
    Some(u32::from(Ipv4Addr::from(raw.to_ne_bytes())))
}

/// A claimed subnet, held until dropped.
#[derive(Debug)]
pub struct SubnetClaim {
    subnet: Subnet,
    _lock: File,
}

impl SubnetClaim {
    /// Claims the first subnet no running sim holds and the machine does not route.
    pub fn first_free(lock_dir: &Path) -> std::io::Result<SubnetClaim> {
        std::fs::create_dir_all(lock_dir)?;
        let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        for index in 1..Subnet::COUNT {
            let subnet = Subnet { index };
            if subnet.is_routed(&routes) {
                continue;
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(lock_dir.join(format!("subnet-{index}.lock")))?;
            // SAFETY: flock on a file descriptor this function owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(SubnetClaim {
                    subnet,
                    _lock: file,
                });
            }
        }
        Err(std::io::Error::other(format!(
            "every pod subnet of 10.240.0.0/12 is claimed by another running sim or routed by \
             the machine (locks in {}; see `ip route`)",
            lock_dir.display()
        )))
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
tun0\t0000F20A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
lasim7\t0007F00A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    #[test]
    fn two_claims_in_one_directory_get_different_subnets_and_a_released_one_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = SubnetClaim::first_free(dir.path()).unwrap();
        let b = SubnetClaim::first_free(dir.path()).unwrap();
        assert_ne!(a.subnet(), b.subnet());
        assert_ne!(a.subnet().address(1), b.subnet().address(1));
        let freed = a.subnet();
        drop(a);
        let c = SubnetClaim::first_free(dir.path()).unwrap();
        assert_eq!(c.subnet(), freed);
    }

    #[test]
    fn addresses_are_the_hosts_of_the_subnet_after_the_gateway() {
        let s = Subnet::new(257).unwrap();
        assert_eq!(s.to_string(), "10.241.1.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 241, 1, 1));
        assert_eq!(s.address(1), Ipv4Addr::new(10, 241, 1, 2));
        assert_eq!(s.address(Subnet::ADDRESSES), Ipv4Addr::new(10, 241, 1, 254));
        assert!(s.contains(s.address(1)) && s.contains(s.address(Subnet::ADDRESSES)));
        assert!(!s.contains(s.gateway()));
        assert!(!s.contains(Subnet::new(256).unwrap().address(1)));
        assert_eq!(
            Subnet::new(Subnet::COUNT - 1).unwrap().network(),
            Ipv4Addr::new(10, 255, 255, 0)
        );
        assert_eq!(Subnet::new(Subnet::COUNT), None);
    }

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let s = Subnet::new(Subnet::COUNT - 1).unwrap();
        assert_eq!(s.bridge(), "lasim4095");
        let veth = s.veth(s.address(Subnet::ADDRESSES));
        assert_eq!(veth, "lasim4095v254");
        assert!(veth.len() <= 15);
    }

    #[test]
    fn a_subnet_the_machine_routes_is_taken_but_the_default_route_and_its_own_bridge_are_not() {
        // 10.242.0.0/16 on tun0 covers subnets 512 to 767.
        assert!(Subnet::new(512).unwrap().is_routed(ROUTES));
        assert!(Subnet::new(767).unwrap().is_routed(ROUTES));
        assert!(!Subnet::new(768).unwrap().is_routed(ROUTES));
        assert!(!Subnet::new(1).unwrap().is_routed(ROUTES));
        // A leftover bridge of subnet 7 does not keep subnet 7 from being claimed.
        assert!(!Subnet::new(7).unwrap().is_routed(ROUTES));
        let wider = ROUTES.replace("lasim7", "br0");
        assert!(Subnet::new(7).unwrap().is_routed(&wider));
    }
}
