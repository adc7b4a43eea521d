//! Starts Debian's `dnsmasq` (package `dnsmasq-base` or `dnsmasq`) as an authoritative-only
//! name server for a test: foreground (`--no-daemon`, no pid file, no fork), on 127.0.0.1 and a
//! port in 8000–8999, no upstream (`--no-resolv`), no `/etc/hosts`, answering only the records
//! given on its command line (NAPTR, SRV, A/AAAA); names under the `--local` domains that have
//! no record get NXDOMAIN. The process (only the one this test started) is killed on drop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `dnsmasq` from PATH or `/usr/sbin` (it is not on a normal user's PATH), or `None` (skip)
/// unless `IMS_REQUIRE_INTEROP=1`.
pub(crate) fn dnsmasq() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/dnsmasq");
    if sbin.is_file() {
        return Some(sbin);
    }
    crate::common::interop_tool("dnsmasq", "apt-get install dnsmasq-base (or dnsmasq)")
}

/// A port in 8000–8999 free on 127.0.0.1 for UDP and TCP a moment ago.
fn free_port() -> u16 {
    // tests of one process start at different places
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = (std::process::id() as u16 % 1000).wrapping_add(k.wrapping_mul(101));
    for i in 0..1000u16 {
        let port = 8000 + (start.wrapping_add(i.wrapping_mul(53))) % 1000;
        let Ok(t) = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) else {
            continue;
        };
        if std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            drop(t);
            return port;
        }
    }
    panic!("no port free in 8000-8999");
}

/// A running dnsmasq.
pub(crate) struct Dnsmasq {
    child: Child,
    log: PathBuf,
    /// Where it answers (UDP and TCP).
    pub(crate) addr: SocketAddr,
    command: String,
}

impl Dnsmasq {
    /// Starts `bin` serving `records` (dnsmasq options such as `--naptr-record=...`,
    /// `--srv-host=...`, `--host-record=...`, `--local=/example.test/`). Returns once it accepts
    /// TCP connections.
    pub(crate) fn start(bin: &PathBuf, records: &[String]) -> Dnsmasq {
        // one start at a time in this process: two tests must not pick the same free port
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = String::new();
        // the port may be taken between the check and dnsmasq's bind: a few attempts
        for _ in 0..5 {
            let port = free_port();
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let mut args: Vec<String> = vec![
                "--no-daemon".into(),
                "--no-resolv".into(),
                "--no-hosts".into(),
                "--no-poll".into(),
                "--pid-file".into(),
                "--conf-file=/dev/null".into(),
                format!("--port={port}"),
                "--listen-address=127.0.0.1".into(),
                "--bind-interfaces".into(),
                "--log-queries".into(),
            ];
            args.extend(records.iter().cloned());
            let command = format!("{} {}", bin.display(), args.join(" "));
            let log =
                std::env::temp_dir().join(format!("ims-dnsmasq-{}-{port}.log", std::process::id()));
            let file = std::fs::File::create(&log).expect("dnsmasq log file");
            let mut child = Command::new(bin)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("start {command}: {e}"));
            // up to 5 s (100 × 50 ms)
            for _ in 0..100 {
                if let Ok(Some(st)) = child.try_wait() {
                    let err = std::fs::read_to_string(&log).unwrap_or_default();
                    let _ = std::fs::remove_file(&log);
                    last = format!("dnsmasq exited at start ({st}): {command}\n{err}");
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    // it must be ours that listens (not another process's on a port taken
                    // meanwhile): still running a moment later
                    std::thread::sleep(Duration::from_millis(50));
                    if let Ok(Some(st)) = child.try_wait() {
                        let err = std::fs::read_to_string(&log).unwrap_or_default();
                        let _ = std::fs::remove_file(&log);
                        last = format!("dnsmasq exited at start ({st}): {command}\n{err}");
                        break;
                    }
                    return Dnsmasq {
                        child,
                        log,
                        addr,
                        command,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if last.is_empty() {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&log);
                last = format!("dnsmasq not listening after 5 s: {command}");
            }
            if !last.contains("Address already in use") {
                break;
            }
        }
        panic!("{last}");
    }

    /// The command line and the queries it logged, for failure messages.
    pub(crate) fn diagnostics(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("{}\n----- dnsmasq log -----\n{log}", self.command)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        // only the process this test started, by its id
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
