//! Shared by the TLS and Diameter interop tests: a throw-away certificate authority made with the
//! `openssl` CLI ([`Pki`]), and `freeDiameterd` as a peer ([`FreeDiameter`]: started with the
//! test's own configuration, its log polled).
//!
//! Used by `tests/net_tls.rs`, `tests/diameter_freediameter.rs` (`mod interop_common;`) and by
//! `crates/ims-net/tests/diameter_inband_tls.rs`, which includes this file and `tests/common`
//! with `#[path]`. Std only (no `ims` types): the tests turn the PEM files into their TLS
//! configuration themselves. Needs the crate's `mod common;` (for `interop_tool` and `TempDir`).
#![allow(dead_code)]

use crate::common::{interop_tool, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A test CA (`ca.pem`, `ca.key`: EC P-256, valid 2 days) in a temp dir removed on drop, and
/// the leaf certificates it signs.
pub(crate) struct Pki {
    dir: TempDir,
    ssl: PathBuf,
}

/// Runs `openssl args` in `dir`; panics with its stderr when it fails.
pub(crate) fn openssl(ssl: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(ssl)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

impl Pki {
    /// A fresh test CA in `ims-<prefix>-<tag>-…` under the temp dir, kept when the environment
    /// variable `keep_var` is set. `None` when `openssl` is missing (the test is skipped; a
    /// failure with `IMS_REQUIRE_INTEROP=1`).
    pub(crate) fn new(prefix: &str, tag: &str, keep_var: &'static str) -> Option<Pki> {
        let ssl = interop_tool("openssl", "install openssl (Debian package `openssl`)")?;
        let dir = TempDir::new(prefix, tag, keep_var);
        let mut a = vec!["req", "-x509"];
        a.extend(EC_KEY);
        a.extend([
            "-days",
            "2",
            "-subj",
            "/CN=ims-rs test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&ssl, &a, dir.path());
        Some(Pki { dir, ssl })
    }

    /// The directory holding every file.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file of the directory (`ca.pem`, `<stem>.pem`, `<stem>.key`, or the test's own).
    pub(crate) fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// A leaf certificate signed by the CA for `name` (CN and DNS SAN) and IP 127.0.0.1, for
    /// server and client authentication: `(<stem>.pem, <stem>.key)`.
    pub(crate) fn leaf(&self, stem: &str, name: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let (key, csr, pem, ext) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.pem"),
            format!("{stem}.ext"),
        );
        let subj = format!("/CN={name}");
        let mut a = vec!["req"];
        a.extend(EC_KEY);
        a.extend(["-subj", &subj, "-keyout", &key, "-out", &csr]);
        openssl(&self.ssl, &a, d);
        std::fs::write(
            d.join(&ext),
            format!(
                "subjectAltName=DNS:{name},IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .unwrap();
        openssl(
            &self.ssl,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &ext,
            ],
            d,
        );
        (d.join(pem), d.join(key))
    }

    /// A self-signed certificate (no CA, CN `stem`), as MSRP endpoints use with SDP
    /// fingerprints: `(<stem>.pem, <stem>.key)`.
    pub(crate) fn self_signed(&self, stem: &str) -> (PathBuf, PathBuf) {
        let (key, pem) = (format!("{stem}.key"), format!("{stem}.pem"));
        let subj = format!("/CN={stem}");
        let mut a = vec!["req", "-x509"];
        a.extend(EC_KEY);
        a.extend(["-days", "2", "-subj", &subj, "-keyout", &key, "-out", &pem]);
        openssl(&self.ssl, &a, self.dir.path());
        (self.path(&pem), self.path(&key))
    }
}

/// freeDiameterd on 127.0.0.1 as `identity` in realm `test.example`, with the certificate
/// `dir/fd.pem` + `dir/fd.key` and the CA `dir/ca.pem` (made by the caller), its plain `port` and
/// TLS `sec_port`, TLS after CER/CEA allowed for *.test.example (`ALLOW_OLD_TLS`), clear not (no
/// `ALLOW_IPSEC`), the 3GPP dictionaries, and `extra` configuration lines.
pub(crate) fn start_tls_freediameter(
    fd: &Path,
    dir: &Path,
    identity: &str,
    (port, sec_port): (u16, u16),
    extra: &str,
) -> FreeDiameter {
    std::fs::write(dir.join("acl.conf"), "ALLOW_OLD_TLS *.test.example\n").unwrap();
    let conf = format!(
        r#"Identity = "{identity}";
Realm = "test.example";
Port = {port};
SecPort = {sec_port};
No_SCTP;
No_IPv6;
ListenOn = "127.0.0.1";
TLS_Cred = "{d}/fd.pem", "{d}/fd.key";
TLS_CA = "{d}/ca.pem";
TwTimer = 6;
TcTimer = 3;
AppServThreads = 2;
LoadExtension = "{e}/dict_nasreq.fdx";
LoadExtension = "{e}/dict_dcca.fdx";
LoadExtension = "{e}/dict_dcca_3gpp.fdx";
LoadExtension = "{e}/acl_wl.fdx" : "{d}/acl.conf";
{extra}
"#,
        d = dir.display(),
        e = freediameter_extensions().display(),
    );
    FreeDiameter::start(fd, dir, &conf, port)
}

/// Where the freeDiameter package puts its extensions (`dict_dcca_3gpp.fdx`, `acl_wl.fdx`, …).
pub(crate) fn freediameter_extensions() -> PathBuf {
    for d in [
        "/usr/lib/freeDiameter",
        "/usr/lib/x86_64-linux-gnu/freeDiameter",
        "/usr/lib/aarch64-linux-gnu/freeDiameter",
        "/usr/local/lib/freeDiameter",
    ] {
        if Path::new(d).join("dict_dcca_3gpp.fdx").exists() {
            return PathBuf::from(d);
        }
    }
    panic!("freeDiameter extensions (dict_dcca_3gpp.fdx) not found");
}

/// A TCP port of 127.0.0.1 that was free a moment ago (for a peer that must be told its port),
/// never one this process was given before: the kernel may hand a released port out again at
/// once, and two calls returning the same one made freeDiameterd's `Port` and `SecPort` equal
/// ("Address already in use", seen under load in session 11).
pub(crate) fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a free port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A running `freeDiameterd` (its configuration written by the test); killed on drop.
pub(crate) struct FreeDiameter {
    child: std::sync::Mutex<std::process::Child>,
    log: PathBuf,
    /// Its plain Diameter port (`Port =` of the configuration).
    pub(crate) port: u16,
}

impl FreeDiameter {
    /// Writes `conf` to `<dir>/fd.conf`, starts `fd -c <dir>/fd.conf -d` with its output in
    /// `<dir>/fd.log`, and waits for it to be ready (up to 30 s: start-up is slow on a loaded
    /// machine). `port` is the `Port =` of `conf`.
    pub(crate) fn start(fd: &Path, dir: &Path, conf: &str, port: u16) -> FreeDiameter {
        std::fs::write(dir.join("fd.conf"), conf).unwrap();
        let log = dir.join("fd.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(fd)
            .arg("-c")
            .arg(dir.join("fd.conf"))
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start freeDiameterd");
        let me = FreeDiameter {
            child: std::sync::Mutex::new(child),
            log,
            port,
        };
        me.wait_log(
            "freeDiameterd daemon initialized",
            std::time::Duration::from_secs(30),
        );
        me
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls the log (written asynchronously) until it contains `needle`; panics with the log
    /// after `timeout` or when the process has exited.
    pub(crate) fn wait_log(&self, needle: &str, timeout: std::time::Duration) {
        let polls = timeout.as_millis() / 50 + 1;
        for _ in 0..polls {
            if self.log().contains(needle) {
                return;
            }
            if let Ok(Some(st)) = self.child.lock().unwrap().try_wait() {
                if self.log().contains(needle) {
                    return;
                }
                panic!("freeDiameterd exited ({st}):\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("freeDiameterd never logged {needle:?}:\n{}", self.log());
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// SIGTERM: freeDiameter disconnects its peers with DPR and exits.
    pub(crate) fn terminate(&self) {
        let id = self.child.lock().unwrap().id();
        let _ = Command::new("kill")
            .args(["-TERM", &id.to_string()])
            .status();
    }

    /// Waits for the process to exit (its log is complete then); panics after `timeout`.
    pub(crate) fn wait_exit(&self, timeout: std::time::Duration) {
        for _ in 0..timeout.as_millis() / 50 + 1 {
            if let Ok(Some(_)) = self.child.lock().unwrap().try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("freeDiameterd did not exit:\n{}", self.log());
    }
}

impl Drop for FreeDiameter {
    fn drop(&mut self) {
        if let Ok(c) = self.child.get_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
