//! Starting Kamailio (<https://www.kamailio.org>, Debian package `kamailio`) as a stateless or a
//! transaction-stateful proxy with `examples/kamailio/proxy.cfg`, for the interop test
//! (`tests/net_kamailio.rs`) and the throughput comparison (`proxy_rate` in
//! `tests/net_sip_sipp.rs`). Kamailio runs in the foreground in its own process group, which is
//! terminated (SIGTERM, then SIGKILL) when the handle drops: only the processes started here.
//! [`Process`] (that process group) also serves `tests/kamailio_cdp.rs`.

use super::common::{interop_tool, TempDir};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// The Kamailio binary, or `None` (test skipped) unless `IMS_REQUIRE_INTEROP=1`.
pub(crate) fn kamailio() -> Option<PathBuf> {
    // Debian installs it in /usr/sbin, which is not on every user's PATH
    let sbin = Path::new("/usr/sbin/kamailio");
    if sbin.is_file() {
        return Some(sbin.to_path_buf());
    }
    interop_tool(
        "kamailio",
        "install Kamailio (Debian package `kamailio`: apt-get install kamailio)",
    )
}

/// A port in 8000–8999 (this suite's range) free on `ip` for UDP and TCP a moment ago.
pub(crate) fn free_port_in_range(ip: IpAddr) -> u16 {
    // spread over the range: by process, and by call within the process (parallel tests)
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 1000) as u16;
    for _ in 0..1000u16 {
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 8000 + (start + i.wrapping_mul(37)) % 1000;
        let Ok(t) = std::net::TcpListener::bind((ip, port)) else {
            continue;
        };
        if std::net::UdpSocket::bind((ip, port)).is_ok() {
            drop(t);
            return port;
        }
    }
    panic!("no port free in 8000-8999");
}

/// Kamailio running in the foreground in its own process group, its output in
/// `kamailio.log` of its directory; the group is terminated (SIGTERM, then SIGKILL after 5 s)
/// on drop.
pub(crate) struct Process {
    child: Child,
}

impl Process {
    /// Kamailio's command line for the configuration `cfg`: in the foreground, logging to
    /// stderr, 64 MB of shared and 8 MB of private memory, `dir` its runtime and working
    /// directory.
    pub(crate) fn command(bin: &Path, cfg: &Path, dir: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(cfg)
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-Y")
            .arg(dir)
            .arg("-w")
            .arg(dir);
        cmd
    }

    /// Starts `cmd` in `dir`, in a new process group, its output to `dir/kamailio.log`.
    pub(crate) fn spawn(mut cmd: Command, dir: &Path) -> std::io::Result<Process> {
        let log = std::fs::File::create(dir.join("kamailio.log"))?;
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        Ok(Process { child })
    }

    /// How it exited, if it has.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // the main process and its workers: our process group only
        self.signal_group("-TERM");
        // up to 5 s (100 × 50 ms)
        for _ in 0..100 {
            if self.exited().is_some() {
                // the main process stops its workers before it exits
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

/// A running Kamailio.
pub(crate) struct Kamailio {
    process: Process,
    /// Where it listens (UDP and TCP).
    pub(crate) addr: SocketAddr,
    dir: TempDir,
    /// The command line, for diagnostics.
    pub(crate) command: String,
}

impl Kamailio {
    /// Starts Kamailio on `ip` (a free port in 8000–8999, UDP and TCP) relaying every request to
    /// `next_hop` (`sip:` URI), statelessly or with `tm` (`stateful`), with `children` worker
    /// processes per transport. Returns once it accepts TCP connections.
    pub(crate) fn start(
        bin: &Path,
        tag: &str,
        stateful: bool,
        ip: IpAddr,
        next_hop: &str,
        children: u32,
    ) -> Kamailio {
        let dir = TempDir::new("kamailio", tag, "IMS_KEEP_KAMAILIO");
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kamailio/proxy.cfg");
        let port = free_port_in_range(ip);
        let addr = SocketAddr::new(ip, port);
        let mut cmd = Process::command(bin, &cfg, dir.path());
        cmd.args(["-l", &format!("udp:{addr}"), "-l", &format!("tcp:{addr}")])
            .args(["-A", &format!("NEXT_HOP=\"{next_hop}\"")])
            .args(["-A", &format!("CHILDREN={children}")]);
        if stateful {
            cmd.args(["-A", "WITH_TM"]);
        }
        let command = format!("{cmd:?}");
        let process =
            Process::spawn(cmd, dir.path()).unwrap_or_else(|e| panic!("spawn {command}: {e}"));
        let mut k = Kamailio {
            process,
            addr,
            dir,
            command,
        };
        // up to 10 s (200 × 50 ms)
        let mut tries = 0;
        loop {
            if let Some(st) = k.process.exited() {
                panic!("Kamailio exited at start ({st})\n{}", k.diagnostics());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            tries += 1;
            assert!(
                tries < 200,
                "Kamailio not listening after 10 s\n{}",
                k.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // the TCP listener is up; give the UDP workers a moment too
        std::thread::sleep(Duration::from_millis(200));
        k
    }

    /// The command and the tail of its log.
    pub(crate) fn diagnostics(&self) -> String {
        let log = std::fs::read(self.dir.path().join("kamailio.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let tail: String = {
            let c: Vec<char> = log.chars().collect();
            c[c.len().saturating_sub(3000)..].iter().collect()
        };
        format!(
            "Kamailio command: {}\n----- kamailio.log (tail) -----\n{tail}",
            self.command
        )
    }
}
