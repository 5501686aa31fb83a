//! The campaign's network: one network namespace per node, joined by veth pairs to a bridge in a
//! hub namespace of their own. Addresses come from 198.18.0.0/23 (RFC 2544's benchmarking range)
//! and exist only inside these namespaces: the host's own network namespace gets nothing, and
//! nothing routes out. Node x has a real address `198.18.1.(10+x)` on its `eth0` and a service
//! address `198.18.0.(10+x)` that lives in the hub, where the UDP proxy (`proxy`) relays between
//! them; every node routes `198.18.0.0/24` through the hub (`198.18.1.1`). Faults are nftables
//! rules inside the node namespaces (a table of our own per namespace), matching the peers'
//! service addresses; deleting the namespaces removes everything.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The prefix of every namespace the campaign creates: `rrc-<pid>-<run>-...`.
pub const NS_PREFIX: &str = "rrc-";
const TABLE: &str = "ringraft_campaign";

/// Node `id`'s service address: the one it advertises, the one peers send to (through the
/// proxy), the one its datagrams come from as the others see them.
pub fn node_ip(id: u64) -> Ipv4Addr {
    assert!((1..=240).contains(&id), "node ids 1..=240 have addresses");
    Ipv4Addr::new(198, 18, 0, 10 + id as u8)
}

/// Node `id`'s real address, on its own `eth0`, where it listens.
pub fn real_ip(id: u64) -> Ipv4Addr {
    assert!((1..=240).contains(&id), "node ids 1..=240 have addresses");
    Ipv4Addr::new(198, 18, 1, 10 + id as u8)
}

const HUB_IP: &str = "198.18.1.1";

/// What one node's input drops: everything from some peers, and a share of the rest at random.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub drop_from: BTreeSet<u64>,
    /// Percent of incoming packets dropped at random (0: none).
    pub loss_percent: u32,
}

pub struct Network {
    prefix: String,
    hub: String,
    nodes: BTreeMap<u64, String>,
    rules: BTreeMap<u64, Rules>,
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("{what}: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run(
        Command::new("ip").args(args),
        &format!("ip {}", args.join(" ")),
    )
}

/// Why the campaign's network cannot be built here, or `None`.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces and nftables need it)".into());
    }
    for tool in ["ip", "nft"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup.sh installs it)"
            ));
        }
    }
    None
}

/// Deletes namespaces left by campaigns whose process is gone (killed before it could clean up).
pub fn remove_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = ip(&["netns", "delete", name]);
            }
        }
    }
}

impl Network {
    /// The hub namespace and its bridge; `run` makes the names unique within this process.
    pub fn create(run: u64) -> Result<Network, String> {
        let prefix = format!("{NS_PREFIX}{}-{run}", std::process::id());
        let hub = format!("{prefix}-hub");
        let network = Network {
            prefix,
            hub: hub.clone(),
            nodes: BTreeMap::new(),
            rules: BTreeMap::new(),
        };
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_IP}/24"),
            "dev",
            "br0",
        ])?;
        // Every service address is local to the hub: the proxy binds them all.
        ip(&[
            "-n",
            &hub,
            "route",
            "add",
            "local",
            "198.18.0.0/24",
            "dev",
            "lo",
        ])?;
        Ok(network)
    }

    pub fn namespace(&self, id: u64) -> Option<&str> {
        self.nodes.get(&id).map(String::as_str)
    }

    /// The file that names node `id`'s namespace, for setns(2).
    pub fn namespace_file(&self, id: u64) -> Option<PathBuf> {
        self.namespace(id)
            .map(|ns| PathBuf::from("/run/netns").join(ns))
    }

    pub fn hub_file(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.hub)
    }

    /// A namespace for node `id`, with `eth0` at `real_ip(id)` on the bridge and the service
    /// addresses routed through the hub.
    pub fn add_node(&mut self, id: u64) -> Result<Ipv4Addr, String> {
        let ns = format!("{}-n{id}", self.prefix);
        let address = real_ip(id);
        ip(&["netns", "add", &ns])?;
        self.nodes.insert(id, ns.clone());
        let port = format!("v{id}");
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", &self.hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ])?;
        ip(&["-n", &self.hub, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &self.hub, "link", "set", &port, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "route", "add", "198.18.0.0/24", "via", HUB_IP])?;
        self.rules.insert(id, Rules::default());
        Ok(address)
    }

    pub fn rules(&self, id: u64) -> Rules {
        self.rules.get(&id).cloned().unwrap_or_default()
    }

    /// Replaces node `id`'s rules (one nft transaction: the old table goes, the new one comes).
    pub fn set_rules(&mut self, id: u64, rules: Rules) -> Result<(), String> {
        let Some(ns) = self.nodes.get(&id).cloned() else {
            return Ok(());
        };
        if self.rules.get(&id) == Some(&rules) {
            return Ok(());
        }
        let mut script = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
        if rules != Rules::default() {
            script.push_str(&format!(
                "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n"
            ));
            if !rules.drop_from.is_empty() {
                let sources: Vec<String> = rules
                    .drop_from
                    .iter()
                    .map(|peer| node_ip(*peer).to_string())
                    .collect();
                script.push_str(&format!("    ip saddr {{ {} }} drop\n", sources.join(", ")));
            }
            if rules.loss_percent > 0 {
                script.push_str(&format!(
                    "    meta l4proto udp numgen random mod 100 < {} drop\n",
                    rules.loss_percent.min(100)
                ));
            }
            script.push_str("  }\n}\n");
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("nft in {ns}: {err}"))?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(script.as_bytes())
            .map_err(|err| format!("nft in {ns}: {err}"))?;
        let output = child
            .wait_with_output()
            .map_err(|err| format!("nft in {ns}: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "nft in {ns}: {}: {}\n{script}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        self.rules.insert(id, rules);
        Ok(())
    }

    /// Removes every rule from every node.
    pub fn heal_all(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.set_rules(id, Rules::default())?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.nodes.values() {
            let _ = ip(&["netns", "delete", ns]);
        }
        let _ = ip(&["netns", "delete", &self.hub]);
    }
}
