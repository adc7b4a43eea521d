//! Interop with SIPp (<https://github.com/SIPp/sipp>, Debian package `sip-tester`) over UDP on
//! 127.0.0.1.
//!
//! 1. `sipp_uac_against_ims_sip_uas`: SIPp runs its built-in `uac` scenario (20 INVITE / ACK / BYE
//!    calls) against a small UAS in this test that parses every datagram with
//!    [`ims::sip::parse_datagram`], checks it with [`ims::sip::validate`] and answers with
//!    [`ResponseBuilder::from_request`] (100 + 180 + 200 with Contact and SDP to INVITE, 200 to BYE).
//! 2. `ims_sip_uac_against_sipp_uas`: SIPp runs its built-in `uas` scenario and the test places 5
//!    calls built with [`RequestBuilder`], checking that every response SIPp sends parses,
//!    validates and belongs to the right transaction (Call-ID, CSeq, Via branch, tags).
//! 3. `sipp_register_message_uac_against_ims_sip_uas`: SIPp runs
//!    `examples/sipp/register_message_uac.xml` (REGISTER, then a MESSAGE carrying
//!    `application/vnd.3gpp.sms`) against the UAS of test 1.
//!
//! Each test asserts that SIPp exits 0 and that its statistics file (`-trace_stat`) counts the
//! expected number of successful calls and no failed one. SIPp runs without a terminal UI
//! (`-nostdin`, stdout to a file) in a temporary directory that also receives its logs; every wait
//! is bounded, SIPp has its own `-timeout`, and the child is killed when a test fails.
//!
//! When `sipp` is not on `PATH` the tests print why and pass, unless `IMS_REQUIRE_INTEROP=1`, in
//! which case they fail. Set `IMS_KEEP_SIPP=1` to keep SIPp's directories (their path is printed).

mod common;

use common::TempDir;

use ims::sip::{
    headers, parse_datagram, validate, Host, Message, Method, OwnedMessage, RequestBuilder,
    ResponseBuilder, ValidationConfig,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest a whole SIPp run may take before the test kills it (SIPp's own `-timeout` is shorter).
const SIPP_WALL_LIMIT: Duration = Duration::from_secs(60);
/// SIPp's global `-timeout`, in seconds.
const SIPP_TIMEOUT_S: u32 = 30;
/// RFC 3261 T1, for the UAC's retransmissions.
const T1: Duration = Duration::from_millis(500);
/// How long one UAC transaction may take.
const TRANSACTION_LIMIT: Duration = Duration::from_secs(15);
/// The UAS thread stops on its own after this long, even if never told to.
const UAS_LIMIT: Duration = Duration::from_secs(90);

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The clock. The workspace's clippy.toml forbids `Instant::now` because its crates are sans-IO;
/// this test does real I/O against a real process and needs real timeouts, so it reads the clock
/// here and nowhere else.
#[allow(
    clippy::disallowed_methods,
    reason = "an interop test bounds its waits with wall-clock timeouts"
)]
fn now() -> Instant {
    Instant::now()
}

// ---------------------------------------------------------------------------------------------
// Finding SIPp
// ---------------------------------------------------------------------------------------------

/// The sipp binary, or `None` (after saying why) when the test should be skipped.
fn sipp() -> Option<PathBuf> {
    common::interop_tool("sipp", "install SIPp (Debian package `sip-tester`)")
}

/// `SIPp v3.6.1-...` from `sipp -v`.
fn sipp_version(sipp: &Path) -> String {
    let out = Command::new(sipp)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .expect("run sipp -v");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("SIPp"))
        .unwrap_or("unknown")
        .trim_end_matches('.')
        .to_owned()
}

/// The tests run one SIPp at a time: the machine may be small and busy, and SIPp's control and
/// media ports (8888, 6000, ...) are shared.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A UDP port that was free a moment ago (the OS picked it).
fn free_udp_port() -> u16 {
    UdpSocket::bind((LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("bind a UDP socket on 127.0.0.1:0")
        .port()
}

// ---------------------------------------------------------------------------------------------
// Running SIPp
// ---------------------------------------------------------------------------------------------

/// A running SIPp, killed when dropped (so a failing test never leaves it behind).
struct Sipp {
    child: Child,
    dir: TempDir,
    started: Instant,
    /// The port SIPp listens on (`-p`).
    port: u16,
    command: String,
}

/// What SIPp reported when it was done.
struct SippRun {
    status: ExitStatus,
    elapsed: Duration,
    stats: BTreeMap<String, String>,
    diagnostics: String,
}

impl SippRun {
    fn stat(&self, name: &str) -> u64 {
        let v = self
            .stats
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in SIPp's statistics\n{}", self.diagnostics));
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {v:?} is not a number\n{}", self.diagnostics))
    }
}

impl Sipp {
    /// Starts SIPp with `args` plus the options every run uses: local address 127.0.0.1 and a free
    /// port, no stdin, statistics, error and message logs in a fresh temporary directory (also
    /// the working directory), and a global timeout that fails the run. Retries with another port
    /// when SIPp could not bind the one chosen.
    fn start(sipp: &Path, tag: &str, args: &[&str]) -> Sipp {
        let mut last = String::new();
        for _ in 0..3 {
            let dir = common::TempDir::new("sipp", tag, "IMS_KEEP_SIPP");
            let port = free_udp_port();
            let mut cmd = Command::new(sipp);
            cmd.args(args)
                .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                .args(["-ci", "127.0.0.1", "-mi", "127.0.0.1"])
                .arg("-nostdin")
                .args(["-trace_err", "-error_file", "errors.log"])
                .args(["-trace_msg", "-message_file", "messages.log"])
                .args(["-trace_stat", "-stf", "stats.csv"])
                .args(["-timeout", &format!("{SIPP_TIMEOUT_S}s"), "-timeout_error"])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(file(&dir, "stdout.log"))
                .stderr(file(&dir, "stderr.log"));
            let command = format!("{cmd:?}");
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
            let mut s = Sipp {
                child,
                dir,
                started: now(),
                port,
                command,
            };
            // SIPp exits at once with -2 when its port is taken (someone grabbed it after us)
            let settle = now() + Duration::from_millis(300);
            while now() < settle {
                match s.try_wait() {
                    Some(st) if st.code() == Some(254) => break,
                    Some(_) => return s, // any other early exit is reported by the caller
                    None => thread::sleep(Duration::from_millis(10)),
                }
            }
            match s.try_wait() {
                Some(st) if st.code() == Some(254) => last = s.diagnostics(),
                _ => return s,
            }
        }
        panic!("SIPp could not bind a port three times\n{last}");
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOCALHOST, self.port))
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll SIPp")
    }

    /// Waits for SIPp to exit (killing it after [`SIPP_WALL_LIMIT`]) and collects its statistics.
    fn finish(mut self) -> SippRun {
        let deadline = self.started + SIPP_WALL_LIMIT;
        let status = loop {
            if let Some(st) = self.try_wait() {
                break st;
            }
            if now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "SIPp still running after {SIPP_WALL_LIMIT:?}: killed\n{}",
                    self.diagnostics()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        SippRun {
            status,
            elapsed: self.started.elapsed(),
            stats: self.stats(),
            diagnostics: self.diagnostics(),
        }
    }

    /// The last row of `stats.csv`, by column name (`SuccessfulCall(C)`, `FailedCall(C)`, ...).
    fn stats(&self) -> BTreeMap<String, String> {
        let text = read_lossy(&self.dir.path().join("stats.csv"));
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let (Some(head), Some(last)) = (lines.next(), lines.next_back()) else {
            return BTreeMap::new();
        };
        head.split(';')
            .zip(last.split(';'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The command line and the tails of SIPp's output and logs, for failure messages.
    fn diagnostics(&self) -> String {
        let mut s = format!(
            "SIPp command: {}\nSIPp directory: {}\n",
            self.command,
            self.dir.path().display()
        );
        for name in ["stderr.log", "errors.log", "messages.log", "stdout.log"] {
            let text = read_lossy(&self.dir.path().join(name));
            let tail: String = tail_chars(&text, 4000);
            let _ = write!(
                s,
                "----- {name} (last {} bytes) -----\n{tail}\n",
                tail.len()
            );
        }
        s
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn file(dir: &TempDir, name: &str) -> std::fs::File {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()))
}

fn read_lossy(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail_chars(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// Asserts the common outcome of a SIPp run: exit code 0, `calls` successful calls, none failed.
fn assert_sipp_ok(run: &SippRun, calls: u64) {
    assert_eq!(
        run.status.code(),
        Some(0),
        "SIPp exited with {} (0 = all calls successful, 1 = a call failed, 97 = internal \
         command, 99 = no call processed, 255 = fatal error)\n{}",
        run.status,
        run.diagnostics
    );
    assert_eq!(
        run.stat("SuccessfulCall(C)"),
        calls,
        "successful calls\n{}",
        run.diagnostics
    );
    assert_eq!(
        run.stat("FailedCall(C)"),
        0,
        "failed calls\n{}",
        run.diagnostics
    );
}

// ---------------------------------------------------------------------------------------------
// The ims-sip UAS (tests 1 and 3)
// ---------------------------------------------------------------------------------------------

const UAS_SDP: &str = "v=0\r\n\
o=ims-sip 2890844527 2890844527 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// What the UAS saw and did.
#[derive(Debug, Default)]
struct UasLog {
    datagrams: usize,
    /// Every request received, retransmissions included, by method.
    received: BTreeMap<String, usize>,
    /// Distinct (Call-ID, CSeq number) per method: one per transaction.
    transactions: BTreeMap<String, BTreeSet<(String, u32)>>,
    /// Responses sent, by status.
    sent: BTreeMap<u16, usize>,
    /// MESSAGE requests with an `application/vnd.3gpp.sms` body.
    sms: usize,
    /// Everything that went wrong; must stay empty.
    failures: Vec<String>,
}

impl UasLog {
    fn distinct(&self, method: &str) -> usize {
        self.transactions.get(method).map_or(0, BTreeSet::len)
    }
    fn raw(&self, method: &str) -> usize {
        self.received.get(method).copied().unwrap_or(0)
    }
    fn fail(&mut self, what: String) {
        if self.failures.len() < 50 {
            self.failures.push(what);
        }
    }
}

/// A UAS answering on its own thread until stopped (or dropped, when a test fails).
struct Uas {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<UasLog>>,
}

impl Uas {
    fn start() -> Uas {
        let sock = UdpSocket::bind((LOCALHOST, 0)).expect("bind the UAS socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set read timeout");
        let addr = sock.local_addr().expect("UAS address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("ims-sip-uas".into())
            .spawn(move || uas_loop(&sock, &flag))
            .expect("spawn the UAS thread");
        Uas {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> UasLog {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().expect("stopped once");
        match handle.join() {
            Ok(log) => log,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A read timeout, or an ICMP error a UDP socket may report for an earlier send: try again.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        WouldBlock | TimedOut | Interrupted | ConnectionRefused | ConnectionReset
    )
}

fn uas_loop(sock: &UdpSocket, stop: &AtomicBool) -> UasLog {
    let cfg = ValidationConfig::default();
    let mut log = UasLog::default();
    // Call-ID -> the To tag this UAS gave the dialog
    let mut dialogs: HashMap<String, String> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let deadline = now() + UAS_LIMIT;
    while !stop.load(Ordering::Relaxed) && now() < deadline {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                log.fail(format!("recv_from: {e}"));
                break;
            }
        };
        log.datagrams += 1;
        uas_handle(sock, &buf[..n], src, &cfg, &mut log, &mut dialogs);
    }
    log
}

fn uas_handle(
    sock: &UdpSocket,
    data: &[u8],
    src: SocketAddr,
    cfg: &ValidationConfig,
    log: &mut UasLog,
    dialogs: &mut HashMap<String, String>,
) {
    let text = || String::from_utf8_lossy(data).into_owned();
    let msg = match parse_datagram(data) {
        Ok(m) => m,
        Err(e) => return log.fail(format!("from {src}: parse_datagram: {e}\n{}", text())),
    };
    if msg.len() != data.len() {
        log.fail(format!(
            "from {src}: {} bytes after the message (Content-Length {:?})\n{}",
            data.len() - msg.len(),
            msg.content_length(),
            text()
        ));
    }
    let Some(method) = msg.method() else {
        return log.fail(format!(
            "from {src}: a response reached the UAS\n{}",
            text()
        ));
    };
    if let Err(r) = validate(&msg, cfg) {
        log.fail(format!("from {src}: validate: {r}\n{}", text()));
        if method != Method::Ack {
            let b = ResponseBuilder::from_request(&msg, r.status)
                .header("Warning", r.warning("ims-sip-test"));
            send_response(sock, src, b, log);
        }
        return;
    }
    // validate() checked that these are present and parse
    let call_id = msg
        .call_id()
        .ok()
        .flatten()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    let cseq = msg.cseq().ok().flatten().map_or(0, |c| c.seq);
    *log.received.entry(method.as_str().to_owned()).or_default() += 1;
    log.transactions
        .entry(method.as_str().to_owned())
        .or_default()
        .insert((call_id.clone(), cseq));
    match msg.top_via() {
        Ok(Some(v)) if v.has_rfc3261_branch() => {}
        other => log.fail(format!(
            "{method}: top Via without an RFC 3261 branch: {other:?}"
        )),
    }
    if msg.from().ok().flatten().and_then(|f| f.tag()).is_none() {
        log.fail(format!("{method}: From without a tag\n{}", text()));
    }
    let contact = format!("<sip:uas@{}>", sock.local_addr().expect("UAS address"));
    match method {
        Method::Invite => {
            let sdp = msg
                .get::<headers::ContentType>()
                .ok()
                .flatten()
                .is_some_and(|c| c.0.is("application", "sdp"));
            if !sdp || !msg.body().starts_with(b"v=0") {
                log.fail(format!("INVITE without an SDP offer\n{}", text()));
            }
            send_response(sock, src, ResponseBuilder::from_request(&msg, 100), log);
            let ringing = ResponseBuilder::from_request(&msg, 180).header("Contact", &contact);
            send_response(sock, src, ringing, log);
            let ok = ResponseBuilder::from_request(&msg, 200)
                .header("Contact", &contact)
                .header(
                    "Allow",
                    "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, REGISTER",
                )
                .body("application/sdp", UAS_SDP);
            if let Some(sent) = send_response(sock, src, ok, log) {
                let tag = sent
                    .as_message()
                    .to()
                    .ok()
                    .flatten()
                    .and_then(|t| t.tag().map(str::to_owned));
                match tag {
                    Some(tag) => {
                        if let Some(old) = dialogs.insert(call_id, tag.clone()) {
                            if old != tag {
                                log.fail(format!(
                                    "INVITE retransmission got To tag {tag}, first {old}"
                                ));
                            }
                        }
                    }
                    None => log.fail("our 200 to INVITE has no To tag".into()),
                }
            }
        }
        Method::Ack | Method::Bye => {
            let got = msg
                .to()
                .ok()
                .flatten()
                .and_then(|t| t.tag().map(str::to_owned));
            let want = dialogs.get(&call_id);
            if got.as_ref() != want {
                log.fail(format!(
                    "{method} To tag {got:?}, the dialog's is {want:?}\n{}",
                    text()
                ));
            }
            if method == Method::Bye {
                send_response(sock, src, ResponseBuilder::from_request(&msg, 200), log);
            }
        }
        Method::Register => {
            let mut b = ResponseBuilder::from_request(&msg, 200);
            for c in msg.contacts() {
                match c.as_ref().map(|c| (c.uri(), c.expires())) {
                    Ok((Some(uri), expires)) => {
                        let expires = expires.unwrap_or(3600);
                        b = b.header(
                            "Contact",
                            format_args!("<{}>;expires={expires}", uri.as_str()),
                        );
                    }
                    _ => log.fail(format!("REGISTER Contact {c:?}")),
                }
            }
            send_response(sock, src, b, log);
        }
        Method::Message => {
            let sms = msg
                .get::<headers::ContentType>()
                .ok()
                .flatten()
                .is_some_and(|c| c.0.is("application", "vnd.3gpp.sms"));
            if sms && !msg.body().is_empty() {
                log.sms += 1;
            } else {
                log.fail(format!(
                    "MESSAGE without an application/vnd.3gpp.sms body\n{}",
                    text()
                ));
            }
            send_response(sock, src, ResponseBuilder::from_request(&msg, 200), log);
        }
        Method::Options => {
            let b = ResponseBuilder::from_request(&msg, 200)
                .header(
                    "Allow",
                    "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, REGISTER",
                )
                .header("Accept", "application/sdp, application/vnd.3gpp.sms");
            send_response(sock, src, b, log);
        }
        other => {
            log.fail(format!("unexpected {other} request\n{}", text()));
            if other != Method::Ack {
                send_response(sock, src, ResponseBuilder::from_request(&msg, 501), log);
            }
        }
    }
}

/// Builds (which re-parses), validates and sends a response; returns it when it went out.
fn send_response(
    sock: &UdpSocket,
    to: SocketAddr,
    b: ResponseBuilder,
    log: &mut UasLog,
) -> Option<OwnedMessage> {
    let resp = match b.build() {
        Ok(r) => r,
        Err(e) => {
            log.fail(format!("ResponseBuilder made an unparsable response: {e}"));
            return None;
        }
    };
    if let Err(r) = validate(&resp.as_message(), &ValidationConfig::default()) {
        log.fail(format!("our own response does not validate: {r}\n{resp}"));
    }
    if let Err(e) = sock.send_to(resp.bytes(), to) {
        log.fail(format!("send_to {to}: {e}"));
        return None;
    }
    let status = resp.as_message().status().unwrap_or(0);
    *log.sent.entry(status).or_default() += 1;
    Some(resp)
}

fn assert_uas_clean(log: &UasLog, sipp: &SippRun) {
    assert!(
        log.failures.is_empty(),
        "the UAS recorded {} problem(s):\n{}\n{}",
        log.failures.len(),
        log.failures.join("\n---\n"),
        sipp.diagnostics
    );
}

// ---------------------------------------------------------------------------------------------
// Test 1: SIPp uac -> ims-sip UAS
// ---------------------------------------------------------------------------------------------

#[test]
fn sipp_uac_against_ims_sip_uas() {
    let Some(bin) = sipp() else { return };
    let _serial = serial();
    const CALLS: usize = 20;
    let uas = Uas::start();
    let target = uas.addr.to_string();
    let calls = CALLS.to_string();
    let sipp = Sipp::start(
        &bin,
        "uac",
        &["-sn", "uac", &target, "-m", &calls, "-r", "10", "-l", "5"],
    );
    let run = sipp.finish();
    let log = uas.stop();
    eprintln!(
        "{}: uac scenario, {} successful / {} failed calls, {} retransmissions, in {:.2?}; \
         UAS saw {} datagrams {:?}, sent {:?}",
        sipp_version(&bin),
        run.stats
            .get("SuccessfulCall(C)")
            .map_or("?", String::as_str),
        run.stats.get("FailedCall(C)").map_or("?", String::as_str),
        run.stats
            .get("Retransmissions(C)")
            .map_or("?", String::as_str),
        run.elapsed,
        log.datagrams,
        log.received,
        log.sent,
    );
    assert_sipp_ok(&run, CALLS as u64);
    assert_uas_clean(&log, &run);
    for m in ["INVITE", "ACK", "BYE"] {
        assert_eq!(
            log.distinct(m),
            CALLS,
            "{m} transactions seen by the UAS: {log:?}"
        );
        assert!(log.raw(m) >= CALLS, "{m} received: {log:?}");
    }
    assert_eq!(
        log.received.len(),
        3,
        "only INVITE, ACK and BYE expected: {log:?}"
    );
    let call_ids: BTreeSet<_> = log.transactions["INVITE"].iter().map(|(c, _)| c).collect();
    assert_eq!(call_ids.len(), CALLS, "distinct Call-IDs");
    assert_eq!(
        log.sent.get(&200).copied().unwrap_or(0),
        log.raw("INVITE") + log.raw("BYE")
    );
}

// ---------------------------------------------------------------------------------------------
// Test 3: SIPp REGISTER + MESSAGE scenario -> ims-sip UAS
// ---------------------------------------------------------------------------------------------

#[test]
fn sipp_register_message_uac_against_ims_sip_uas() {
    let Some(bin) = sipp() else { return };
    let _serial = serial();
    const CALLS: usize = 10;
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sipp/register_message_uac.xml");
    assert!(scenario.is_file(), "missing {}", scenario.display());
    let scenario = scenario.to_str().expect("UTF-8 path").to_owned();
    let uas = Uas::start();
    let target = uas.addr.to_string();
    let calls = CALLS.to_string();
    let sipp = Sipp::start(
        &bin,
        "regmsg",
        &[
            "-sf",
            &scenario,
            &target,
            "-s",
            "001010123456789",
            "-m",
            &calls,
            "-r",
            "10",
            "-l",
            "5",
        ],
    );
    let run = sipp.finish();
    let log = uas.stop();
    eprintln!(
        "{}: register_message_uac.xml, {} successful / {} failed calls in {:.2?}; UAS saw {:?}, \
         {} SMS bodies, sent {:?}",
        sipp_version(&bin),
        run.stats
            .get("SuccessfulCall(C)")
            .map_or("?", String::as_str),
        run.stats.get("FailedCall(C)").map_or("?", String::as_str),
        run.elapsed,
        log.received,
        log.sms,
        log.sent,
    );
    assert_sipp_ok(&run, CALLS as u64);
    assert_uas_clean(&log, &run);
    assert_eq!(log.distinct("REGISTER"), CALLS, "{log:?}");
    assert_eq!(log.distinct("MESSAGE"), CALLS, "{log:?}");
    assert_eq!(
        log.received.len(),
        2,
        "only REGISTER and MESSAGE expected: {log:?}"
    );
    assert_eq!(log.sms, log.raw("MESSAGE"), "every MESSAGE carries an SMS");
}

// ---------------------------------------------------------------------------------------------
// Test 2: ims-sip UAC -> SIPp uas
// ---------------------------------------------------------------------------------------------

const UAC_SDP: &str = "v=0\r\n\
o=ims-sip 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// The UAC side of test 2.
struct Uac {
    sock: UdpSocket,
    local: SocketAddr,
    cfg: ValidationConfig,
    /// Call-ID -> the ACK sent for its 200, re-sent when SIPp retransmits that 200.
    acks: HashMap<String, OwnedMessage>,
    /// Responses outside the open transaction: retransmissions of answered INVITEs.
    strays: usize,
}

/// A request and what its responses are matched by (RFC 3261 §17.1.3: top Via branch and CSeq
/// method).
struct Sent {
    msg: OwnedMessage,
    branch: String,
    method: String,
}

impl Uac {
    fn new() -> Uac {
        let sock = UdpSocket::bind((LOCALHOST, 0)).expect("bind the UAC socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set read timeout");
        let local = sock.local_addr().expect("UAC address");
        Uac {
            sock,
            local,
            cfg: ValidationConfig::default(),
            acks: HashMap::new(),
            strays: 0,
        }
    }

    fn send(&self, sipp: &Sipp, m: &OwnedMessage) {
        self.sock
            .send_to(m.bytes(), sipp.addr())
            .expect("send to SIPp");
    }

    /// Sends the ACK for the 2xx of `call_id` and keeps it for retransmitted 2xx.
    fn ack(&mut self, sipp: &Sipp, call_id: &str, ack: OwnedMessage) {
        self.send(sipp, &ack);
        self.acks.insert(call_id.to_owned(), ack);
    }

    /// One datagram from SIPp, parsed and validated (the test fails otherwise), or `None` after
    /// the socket's read timeout.
    fn recv(&self, sipp: &Sipp) -> Option<OwnedMessage> {
        let mut buf = vec![0u8; 65536];
        let (n, src) = match self.sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if transient(&e) => return None,
            Err(e) => panic!("recv_from: {e}"),
        };
        let data = &buf[..n];
        let text = String::from_utf8_lossy(data);
        assert_eq!(
            src,
            sipp.addr(),
            "datagram from an unexpected source:\n{text}"
        );
        let msg: Message<'_> = parse_datagram(data)
            .unwrap_or_else(|e| panic!("SIPp sent what ims-sip cannot parse: {e}\n{text}"));
        assert_eq!(msg.len(), n, "bytes after the message:\n{text}");
        assert!(!msg.is_request(), "SIPp's uas sent a request:\n{text}");
        if let Err(r) = validate(&msg, &self.cfg) {
            panic!("SIPp's response does not validate: {r}\n{text}");
        }
        Some(msg.to_owned_message())
    }

    /// Sends `req` and retransmits it (T1, doubling, at most 4 s apart) until a response of its
    /// transaction arrives; returns the transaction's responses up to and including the final one.
    /// A response to the INVITE of a call already ACKed is a retransmission: its 2xx is ACKed
    /// again. Any other response fails the test.
    fn transact(&mut self, sipp: &mut Sipp, req: &Sent) -> Vec<OwnedMessage> {
        let deadline = now() + TRANSACTION_LIMIT;
        let mut interval = T1;
        let mut next = now();
        let mut got: Vec<OwnedMessage> = Vec::new();
        loop {
            let t = now();
            if got.is_empty() && t >= next {
                self.send(sipp, &req.msg);
                next = t + interval;
                interval = (interval * 2).min(Duration::from_secs(4));
            }
            if let Some(st) = sipp.try_wait() {
                panic!(
                    "SIPp exited ({st}) during the {} transaction\n{}",
                    req.method,
                    sipp.diagnostics()
                );
            }
            assert!(
                t < deadline,
                "no final response to {} within {TRANSACTION_LIMIT:?} (got {:?})\n{}",
                req.method,
                got.iter()
                    .map(|r| r.as_message().status())
                    .collect::<Vec<_>>(),
                sipp.diagnostics()
            );
            let Some(resp) = self.recv(sipp) else {
                continue;
            };
            let m = resp.as_message();
            let status = m.status().expect("a response");
            let branch = m.top_via().ok().flatten().and_then(|v| v.branch());
            let cseq = m.cseq().ok().flatten();
            if branch == Some(req.branch.as_str())
                && cseq.is_some_and(|c| c.method.as_str() == req.method)
            {
                got.push(resp);
                if status >= 200 {
                    return got;
                }
                continue;
            }
            let call_id = m.call_id().ok().flatten().map(|c| c.as_str().to_owned());
            let ack = call_id.and_then(|c| self.acks.get(&c));
            match ack {
                Some(ack) if cseq.is_some_and(|c| c.method == Method::Invite) => {
                    if (200..300).contains(&status) {
                        self.send(sipp, ack);
                    }
                    self.strays += 1;
                }
                _ => panic!(
                    "response outside the open {} transaction:\n{m}\n{}",
                    req.method,
                    sipp.diagnostics()
                ),
            }
        }
    }
}

/// Asserts that `resp` answers `req`: same Call-ID, CSeq and From tag, the single Via is ours,
/// and Content-Length matches the body.
fn assert_answers(resp: &Message<'_>, req: &Message<'_>) {
    let text = resp.to_string();
    assert_eq!(
        resp.call_id().unwrap().map(|c| c.as_str()),
        req.call_id().unwrap().map(|c| c.as_str()),
        "Call-ID\n{text}"
    );
    assert_eq!(resp.cseq().unwrap(), req.cseq().unwrap(), "CSeq\n{text}");
    let vias: Vec<_> = resp.via().map(|v| v.expect("Via parses")).collect();
    assert_eq!(vias.len(), 1, "one Via\n{text}");
    assert_eq!(
        vias[0].branch(),
        req.top_via().unwrap().unwrap().branch(),
        "Via branch\n{text}"
    );
    assert_eq!(
        resp.from().unwrap().and_then(|f| f.tag()),
        req.from().unwrap().and_then(|f| f.tag()),
        "From tag\n{text}"
    );
    assert_eq!(
        resp.content_length().map(|n| n as usize),
        Some(resp.body().len()),
        "Content-Length\n{text}"
    );
}

fn to_tag(m: &Message<'_>) -> Option<String> {
    m.to()
        .ok()
        .flatten()
        .and_then(|t| t.tag().map(str::to_owned))
}

#[test]
fn ims_sip_uac_against_sipp_uas() {
    let Some(bin) = sipp() else { return };
    let _serial = serial();
    const CALLS: usize = 5;
    let calls = CALLS.to_string();
    let mut sipp = Sipp::start(&bin, "uas", &["-sn", "uas", "-m", &calls]);
    let mut uac = Uac::new();
    let local = uac.local;
    let remote = sipp.addr();
    let ruri = format!("sip:service@{remote}");
    let pid = std::process::id();
    let mut statuses: Vec<Vec<u16>> = Vec::new();

    for call in 1..=CALLS {
        let call_id = format!("{pid}-{call}-ims-sip@127.0.0.1");
        let from = format!("<sip:ims-sip@{local}>;tag=uac-{pid}-{call}");
        let to = format!("<sip:service@{remote}>");
        let request = |method: Method<'_>, uri: &str, seq: u32, to: &str, body: bool| -> Sent {
            let branch = format!(
                "z9hG4bK-ims-{pid}-{call}-{}",
                method.as_str().to_ascii_lowercase()
            );
            let mut b = RequestBuilder::new(method, uri)
                .header("Via", format_args!("SIP/2.0/UDP {local};branch={branch}"))
                .header("Max-Forwards", 70)
                .header("From", &from)
                .header("To", to)
                .header("Call-ID", &call_id)
                .header("CSeq", format_args!("{seq} {method}"))
                .header("Contact", format_args!("<sip:ims-sip@{local}>"));
            if body {
                b = b.body("application/sdp", UAC_SDP);
            }
            let msg = b.build().expect("RequestBuilder output parses");
            validate(&msg.as_message(), &ValidationConfig::default())
                .expect("our request validates");
            Sent {
                msg,
                branch,
                method: method.as_str().to_owned(),
            }
        };

        // INVITE -> 180, 200 (the uas scenario sends no 100)
        let invite = request(Method::Invite, &ruri, 1, &to, true);
        let inv_resps = uac.transact(&mut sipp, &invite);
        let codes: Vec<u16> = inv_resps
            .iter()
            .filter_map(|r| r.as_message().status())
            .collect();
        assert!(codes.contains(&180), "no 180 Ringing: {codes:?}");
        assert_eq!(codes.last(), Some(&200), "final response: {codes:?}");
        let mut dialog_tag: Option<String> = None;
        for r in &inv_resps {
            let m = r.as_message();
            assert_answers(&m, &invite.msg.as_message());
            let tag = to_tag(&m);
            assert!(
                tag.is_some(),
                "SIPp's {} has no To tag\n{m}",
                m.status().unwrap()
            );
            if let Some(t) = &dialog_tag {
                assert_eq!(tag.as_ref(), Some(t), "180 and 200 To tags differ");
            }
            dialog_tag = tag;
        }
        let ok = inv_resps.last().unwrap().as_message();
        let ct = ok
            .get::<headers::ContentType>()
            .unwrap()
            .expect("200 has a Content-Type");
        assert!(ct.0.is("application", "sdp"), "200 body type {ct}");
        assert!(ok.body().starts_with(b"v=0"), "200 body is SDP:\n{ok}");
        // the remote target: SIPp's Contact, <sip:127.0.0.1:port;transport=UDP>
        let contact = ok
            .contacts()
            .next()
            .expect("200 has a Contact")
            .expect("Contact parses");
        let target = contact.uri().expect("not *");
        let sip_uri = target.as_sip().expect("a SIP URI");
        assert_eq!(
            sip_uri.host(),
            Host::Ipv4(LOCALHOST),
            "Contact host: {target}"
        );
        assert_eq!(
            sip_uri.port(),
            Some(remote.port()),
            "Contact port: {target}"
        );
        let target = target.as_str().to_owned();
        let dialog_to = format!("{to};tag={}", dialog_tag.unwrap());

        // ACK (its own transaction for a 2xx, RFC 3261 §13.2.2.4), to the Contact
        let ack = request(Method::Ack, &target, 1, &dialog_to, false);
        uac.ack(&sipp, &call_id, ack.msg);

        // BYE -> 200
        let bye = request(Method::Bye, &target, 2, &dialog_to, false);
        let bye_resps = uac.transact(&mut sipp, &bye);
        let codes_bye: Vec<u16> = bye_resps
            .iter()
            .filter_map(|r| r.as_message().status())
            .collect();
        assert_eq!(codes_bye, [200], "responses to BYE");
        for r in &bye_resps {
            let m = r.as_message();
            assert_answers(&m, &bye.msg.as_message());
            assert_eq!(
                to_tag(&m),
                to_tag(&bye.msg.as_message()),
                "To tag of the 200 to BYE"
            );
        }
        statuses.push(codes.into_iter().chain(codes_bye).collect());
    }

    let run = sipp.finish();
    eprintln!(
        "{}: uas scenario, {} successful / {} failed calls in {:.2?} (includes the scenario's 4 s \
         timewait); responses per call {statuses:?}, {} retransmitted",
        sipp_version(&bin),
        run.stats
            .get("SuccessfulCall(C)")
            .map_or("?", String::as_str),
        run.stats.get("FailedCall(C)").map_or("?", String::as_str),
        run.elapsed,
        uac.strays,
    );
    assert_sipp_ok(&run, CALLS as u64);
    assert_eq!(
        run.stat("IncomingCall(C)"),
        CALLS as u64,
        "{}",
        run.diagnostics
    );
}
