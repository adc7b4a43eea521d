//! Shared by the interop tests: finding the real peer a test drives.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// The binary `name` from PATH. When it is missing the test is skipped (after saying why), unless
/// `IMS_REQUIRE_INTEROP=1`, where a missing peer fails the test. `install` says how to get it.
pub(crate) fn interop_tool(name: &str, install: &str) -> Option<PathBuf> {
    let required = std::env::var("IMS_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    match find_on_path(name) {
        Some(p) => Some(p),
        None if required => panic!("{name} not found on PATH and IMS_REQUIRE_INTEROP=1: {install}"),
        None => {
            eprintln!("SKIP: {name} not found on PATH ({install}, or set IMS_REQUIRE_INTEROP=1 to make this a failure)");
            None
        }
    }
}

/// The example binary `name` that `cargo test` builds next to the test binaries
/// (`target/<profile>/examples/`). When it is missing (`cargo test --test X` alone does not build
/// the examples) the test is skipped after saying so, unless `IMS_REQUIRE_INTEROP=1`, where it
/// fails.
#[allow(dead_code)]
pub(crate) fn example_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is in target/<profile>/deps")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        return Some(bin);
    }
    let required = std::env::var("IMS_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{} not built and IMS_REQUIRE_INTEROP=1 (`cargo test` builds the examples)",
        bin.display()
    );
    eprintln!(
        "SKIP: {} not built (run `cargo build --example {name}`)",
        bin.display()
    );
    None
}

/// A scratch directory for one test's files (captures, SIPp logs), removed on drop unless the
/// environment variable `keep_var` is set.
pub(crate) struct TempDir {
    path: PathBuf,
    keep_var: &'static str,
}

impl TempDir {
    /// A fresh directory `ims-<prefix>-<tag>-<pid>-<n>` under the system temp dir.
    pub(crate) fn new(prefix: &str, tag: &str, keep_var: &'static str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ims-{prefix}-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path, keep_var }
    }
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os(self.keep_var).is_some() {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A live capture of the loopback into a pcap file, by tshark (which runs dumpcap).
///
/// Stopping sends SIGTERM so tshark stops its dumpcap and flushes the file; killing tshark
/// outright would leave dumpcap running forever, orphaned. Dropping an unstopped capture (a
/// failed test) stops it the same way.
#[allow(dead_code)]
pub(crate) struct LiveCapture {
    child: Option<std::process::Child>,
    file: PathBuf,
}

#[allow(dead_code)]
impl LiveCapture {
    /// Starts `tshark -i lo -f <filter> -w <file>` and waits until dumpcap captures; `None`
    /// when tshark cannot start.
    pub(crate) async fn start(tshark: &Path, filter: &str, file: PathBuf) -> Option<LiveCapture> {
        let child = std::process::Command::new(tshark)
            .args(["-i", "lo", "-f", filter, "-w"])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let cap = LiveCapture {
            child: Some(child),
            file,
        };
        for _ in 0..50 {
            if cap.file.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // the file appears before dumpcap captures: give it time
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        Some(cap)
    }

    /// The pcap file being written.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Lets the last packets in, stops the capture and returns the pcap file.
    pub(crate) async fn stop(mut self) -> PathBuf {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if let Some(child) = self.child.take() {
            tokio::task::spawn_blocking(move || terminate(child))
                .await
                .expect("capture stopped");
        }
        std::mem::take(&mut self.file)
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }
}

/// SIGTERM, up to 5 s to exit, then SIGKILL.
fn terminate(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What Wireshark's MSRP dissector found in a capture of the two legs of an MSRP relay
/// (index 0: the leg without `b_leg_port`, index 1: the leg with it), see [`dissect_msrp`].
#[allow(dead_code)]
#[derive(Debug, Default)]
pub(crate) struct MsrpLegs {
    /// SEND requests per leg.
    pub(crate) sends: [usize; 2],
    /// REPORT requests per leg.
    pub(crate) reports: [usize; 2],
    /// 200 responses per leg.
    pub(crate) oks: [usize; 2],
    /// Malformed packets and expert infos not caused by TCP itself.
    pub(crate) problems: Vec<String>,
    /// Packets with TCP's own events (connection notices, retransmissions), set aside.
    pub(crate) tcp_events: usize,
    /// tshark's field output.
    pub(crate) text: String,
}

/// Dissects `pcap` with tshark, MSRP decoded on `msrp_ports`, and counts MSRP methods and
/// 200s per leg (the B leg is the connection with `b_leg_port`), malformed packets and expert
/// infos. Several MSRP messages often share one TCP segment, so tshark may show fewer than
/// were sent.
#[allow(dead_code)]
pub(crate) fn dissect_msrp(
    tshark: &Path,
    pcap: &Path,
    msrp_ports: &[u16],
    b_leg_port: u16,
) -> MsrpLegs {
    let mut cmd = std::process::Command::new(tshark);
    cmd.arg("-r").arg(pcap);
    for p in msrp_ports {
        cmd.args(["-d", &format!("tcp.port=={p},msrp")]);
    }
    cmd.args(["-Y", "msrp || _ws.malformed || _ws.expert", "-T", "fields"])
        .args([
            "-E",
            "separator=\t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ]);
    for f in [
        "tcp.port",
        "msrp.method",
        "msrp.status.code",
        "_ws.expert.message",
        "_ws.malformed",
        "_ws.expert.severity",
        "tcp.analysis.flags",
    ] {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark reads the capture");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut legs = MsrpLegs {
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        ..MsrpLegs::default()
    };
    // TCP's own events are not MSRP's: connection set-up/close notices, and segments the
    // kernel retransmitted (tail-loss probes on a loaded machine, answered with D-SACK)
    const TCP_NOTICES: [&str; 5] = [
        "Connection establish",
        "Connection finish",
        "Connection reset",
        "This frame",
        "D-SACK",
    ];
    let b = b_leg_port.to_string();
    for (i, line) in legs.text.lines().enumerate() {
        let c: Vec<&str> = line.split('\t').collect();
        let g = |k: usize| c.get(k).copied().unwrap_or("");
        let retransmitted = !g(6).is_empty();
        if retransmitted {
            legs.tcp_events += 1;
        }
        let all: Vec<&str> = g(3).split(',').filter(|m| !m.is_empty()).collect();
        let msrp_expert: Vec<&str> = all
            .iter()
            .copied()
            .filter(|m| !TCP_NOTICES.iter().any(|t| m.starts_with(t)))
            .collect();
        if msrp_expert.len() < all.len() {
            legs.tcp_events += 1;
        }
        if !msrp_expert.is_empty() && !retransmitted {
            legs.problems.push(format!(
                "packet {i}: expert info {msrp_expert:?} ({})",
                g(5)
            ));
        }
        if !g(4).is_empty() && !retransmitted {
            legs.problems.push(format!("packet {i}: malformed"));
        }
        let leg = usize::from(g(0).split(',').any(|p| p == b));
        for m in g(1).split(',').filter(|m| !m.is_empty()) {
            match m {
                "SEND" => legs.sends[leg] += 1,
                "REPORT" => legs.reports[leg] += 1,
                _ => {}
            }
        }
        legs.oks[leg] += g(2).split(',').filter(|s| *s == "200").count();
    }
    legs
}

/// A `redis-server` of one test's own on a free port of 127.0.0.1, without persistence
/// (`--save "" --appendonly no`, its files in a [`TempDir`] kept with `IMS_KEEP_REDIS`), killed
/// when dropped (however the test ends).
#[allow(dead_code)]
pub(crate) struct RedisServer {
    port: u16,
    child: std::process::Child,
    dir: TempDir,
}

#[allow(dead_code)]
impl RedisServer {
    /// Finds `redis-server` with [`interop_tool`] (`None`: skip the test), starts it on a free
    /// port and returns once it answers `INFO` with its own process id (so not some other server
    /// that took the port). Tries another port when the server exits (the port was taken in the
    /// meantime); panics, with the server's log, if it never answers.
    pub(crate) async fn start(tag: &str) -> Option<RedisServer> {
        let bin = interop_tool("redis-server", "apt-get install redis-server")?;
        let dir = TempDir::new("redis", tag, "IMS_KEEP_REDIS");
        let log = dir.path().join("redis.log");
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = std::process::Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start redis-server");
            // up to 20 s: a loaded machine
            for _ in 0..400 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if redis_pid(port).await == Some(child.id()) {
                    return Some(RedisServer { port, child, dir });
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "redis-server never answered:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `process_id` `INFO server` reports on 127.0.0.1:`port`, over a fresh connection;
/// `None` while nothing answers there (or something that is not Redis).
#[allow(dead_code)]
async fn redis_pid(port: u16) -> Option<u32> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        c.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            .await
            .ok()?;
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = c.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            text.extend_from_slice(&buf[..n]);
            let s = String::from_utf8_lossy(&text);
            if let Some(rest) = s.split("process_id:").nth(1) {
                if let Some((pid, _)) = rest.split_once("\r\n") {
                    return pid.trim().parse().ok();
                }
            }
            if text.len() > 65536 {
                return None;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}
