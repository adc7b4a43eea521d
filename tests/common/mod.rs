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
