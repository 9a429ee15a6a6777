//! Separate hosts on one machine: Linux network namespaces, one per host,
//! each with a veth pair to a bridge in a namespace of its own (the
//! switch), and one more pair from the test's namespace, so the test
//! reaches every host. Needs root (`ip netns`); everything made is deleted
//! on drop, also when the test fails.

use std::process::Command;

/// The namespaces and links of one test, deleted on drop.
pub struct Net {
    /// A prefix unique to this test process: names and the subnet.
    tag: String,
    /// `10.<subnet>.0.0/24`.
    subnet: u8,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (package iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// Makes the switch and the test's own link to it, or says why not.
    pub fn new() -> Result<Net, String> {
        let pid = std::process::id();
        let subnet = 100 + (pid % 100) as u8;
        let net = Net {
            tag: format!("pz{}", pid % 100_000),
            subnet,
            hosts: Vec::new(),
        };
        let switch = net.switch();
        ip(&["netns", "add", &switch])
            .map_err(|e| format!("cannot make network namespaces (root needed): {e}"))?;
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        // The test's namespace joins the switch as 10.S.0.2.
        let (here, there) = (format!("{}t", net.tag), format!("{}tb", net.tag));
        ip(&[
            "link", "add", &here, "type", "veth", "peer", "name", &there, "netns", &switch,
        ])?;
        ip(&["-n", &switch, "link", "set", &there, "master", "br0", "up"])?;
        ip(&["addr", "add", &format!("{}/24", net.addr(2)), "dev", &here])?;
        ip(&["link", "set", &here, "up"])?;
        Ok(net)
    }

    fn switch(&self) -> String {
        format!("{}-switch", self.tag)
    }

    /// The address of host number `n` (2 is the test itself).
    pub fn addr(&self, n: u8) -> String {
        format!("10.{}.0.{n}", self.subnet)
    }

    /// Makes host `name` with address `10.S.0.n`; returns its namespace.
    pub fn host(&mut self, name: &str, n: u8) -> Result<String, String> {
        let ns = format!("{}-{name}", self.tag);
        ip(&["netns", "add", &ns])?;
        self.hosts.push(ns.clone());
        let (inner, outer) = (format!("{}h{n}", self.tag), format!("{}s{n}", self.tag));
        let switch = self.switch();
        ip(&[
            "-n", &ns, "link", "add", &inner, "type", "veth", "peer", "name", &outer, "netns", &switch,
        ])?;
        ip(&["-n", &switch, "link", "set", &outer, "master", "br0", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", self.addr(n)),
            "dev",
            &inner,
        ])?;
        ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and with them
        // their peers.
        for ns in self.hosts.iter().chain(std::iter::once(&self.switch())) {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &format!("{}t", self.tag)]);
    }
}
