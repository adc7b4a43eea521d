//! The ims-net SIP endpoint and proxy against SIPp (<https://github.com/SIPp/sipp>, Debian package
//! `sip-tester`) on loopback, over UDP, TCP (`-t t1`) and UDP with 10 % of SIPp's datagrams
//! dropped (`-lost 10`), where every call must still complete through retransmissions.
//!
//! - `uac_*`: our [`Endpoint`] places calls (INVITE, 200, ACK, BYE, 200) against SIPp's built-in
//!   `uas` scenario;
//! - `uas_*`: SIPp's built-in `uac` scenario calls our [`Endpoint`], which answers 180 then 200;
//! - `prack_*`: a reliable 183 (RFC 3262) then 200, with `examples/sipp/prack_uac.xml` against our
//!   UAS and `examples/sipp/prack_uas.xml` against our UAC;
//! - `proxy_*`: SIPp `uac` → our stateful [`ProxyEndpoint`] → SIPp `uas`;
//! - `stateless_proxy_*`: the same through [`ProxyEndpoint::bind_stateless`] (RFC 3261 §16.11: no
//!   transaction; responses by Via), Record-Route on so ACK and BYE cross it too (UDP, TCP);
//! - `proxy_forking_*`: one INVITE forked to SIPp `uas` (180, 200) and to
//!   `examples/sipp/fork_uas_ring_busy.xml` (180, then 486 unless cancelled first): the 200 wins,
//!   the other branch is cancelled (CANCEL, 487), exactly one dialog is confirmed at the UAC.
//!
//! Each test asserts SIPp's exit code (0: every call succeeded) and its statistics file
//! (`-trace_stat`: `SuccessfulCall(C)` equal to the calls attempted, `FailedCall(C)` zero), and our
//! side's own count of completed calls; each prints `calls completed/attempted`.
//!
//! When `sipp` is not on `PATH` the tests print why and pass, unless `IMS_REQUIRE_INTEROP=1`.
//! Set `IMS_KEEP_SIPP=1` to keep SIPp's logs (their directory is printed).
//!
//! `proxy_rate` (ignored; run by hand in release) measures our stateful and stateless proxies and
//! Kamailio (`examples/kamailio/proxy.cfg`, stateless and `tm`) the same way in one run.

mod common;
#[path = "net_sip_common/kamailio.rs"]
mod kamailio;

use common::TempDir;
use ims::net::sip::{Endpoint, EndpointConfig, Locations, ProxyEndpoint, ProxyEvents};
use ims::txn::dialog::DialogId;
use ims::txn::ua::{Answer, EndReason, InviteParams, UaEvent};
use ims::txn::{Remote, Transport};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The proxy listens on another loopback address than the UAs (see the note in
/// /work/notes/ims-txn.md: the proxy core recognises itself by host only).
const PROXY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Longest a SIPp run may take before the test kills it.
const SIPP_WALL_LIMIT: Duration = Duration::from_secs(90);
/// Longest one call of our UAC may take (SIPp's own `-timeout` is 75 s).
const CALL_LIMIT: Duration = Duration::from_secs(60);

const SDP: &str = "v=0\r\no=ims-net 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn sipp() -> Option<PathBuf> {
    common::interop_tool("sipp", "install SIPp (Debian package `sip-tester`)")
}

/// One SIPp at a time: the machine is small and SIPp's media ports are shared.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A port free on both UDP and TCP a moment ago.
fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..20 {
        let t = std::net::TcpListener::bind((ip, 0)).expect("bind TCP :0");
        let port = t.local_addr().expect("local addr").port();
        if std::net::UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both UDP and TCP");
}

/// An even port `p`, not in `avoid`, with `p..p+4` free on UDP a moment ago: SIPp's media
/// sockets (audio RTP/RTCP, video RTP/RTCP) go there.
fn free_media_base(avoid: &[u16]) -> u16 {
    for _ in 0..50 {
        let p = free_port(LOCALHOST) & !1;
        if !(1024..=65_530).contains(&p) || (p..p + 4).any(|q| avoid.contains(&q)) {
            continue;
        }
        let held: Vec<_> = (p..p + 4)
            .map_while(|q| std::net::UdpSocket::bind((LOCALHOST, q)).ok())
            .collect();
        if held.len() == 4 {
            return p;
        }
    }
    panic!("no four consecutive UDP ports free for SIPp's media");
}

fn repo_file(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Running SIPp
// ---------------------------------------------------------------------------------------------

struct Sipp {
    child: Child,
    dir: TempDir,
    port: u16,
    command: String,
}

struct SippRun {
    status: ExitStatus,
    stats: BTreeMap<String, String>,
    diagnostics: String,
}

impl Sipp {
    /// Starts SIPp on 127.0.0.1 and a free port with `args`, logging into a fresh directory.
    /// Retries with other ports when SIPp exits at once (a port taken between our check and its
    /// bind: its SIP, control or one of its four media ports).
    fn start(sipp: &Path, tag: &str, args: &[String]) -> Sipp {
        let mut last = String::new();
        for _ in 0..3 {
            let mut s = Self::spawn(sipp, tag, args);
            // 300 ms to settle
            let mut early = None;
            for _ in 0..30 {
                early = s.child.try_wait().expect("poll SIPp");
                if early.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            match early {
                Some(st) if !st.success() => {
                    last = format!("exit {st}\n{}", s.diagnostics());
                    eprintln!("{tag}: SIPp exited at start ({st}), retrying with other ports");
                }
                _ => return s,
            }
        }
        panic!("SIPp exited at start three times\n{last}");
    }

    fn spawn(sipp: &Path, tag: &str, args: &[String]) -> Sipp {
        let dir = TempDir::new("net-sip", tag, "IMS_KEEP_SIPP");
        let port = free_port(LOCALHOST);
        let cport = free_port(LOCALHOST);
        let mport = free_media_base(&[port, cport]);
        let mut cmd = Command::new(sipp);
        cmd.args(args)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-cp", &cport.to_string(), "-mp", &mport.to_string()])
            .arg("-nostdin")
            .args(["-trace_err", "-error_file", "errors.log"])
            .args(["-trace_msg", "-message_file", "messages.log"])
            .args(["-trace_stat", "-stf", "stats.csv", "-fd", "1"])
            .args(["-timeout", "75s", "-timeout_error"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(file(&dir, "stdout.log"))
            .stderr(file(&dir, "stderr.log"));
        let command = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command}: {e}"));
        Sipp {
            child,
            dir,
            port,
            command,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.port)
    }

    /// Waits (asynchronously) until SIPp exits, killing it after [`SIPP_WALL_LIMIT`].
    async fn finish(mut self) -> SippRun {
        let deadline = tokio::time::Instant::now() + SIPP_WALL_LIMIT;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("poll SIPp") {
                break st;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "SIPp still running after {SIPP_WALL_LIMIT:?}: killed\n{}",
                    self.diagnostics()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        SippRun {
            status,
            stats: self.stats(),
            diagnostics: self.diagnostics(),
        }
    }

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

    fn log(&self, name: &str) -> String {
        read_lossy(&self.dir.path().join(name))
    }

    fn diagnostics(&self) -> String {
        let mut s = format!(
            "SIPp command: {}\nSIPp directory: {}\n",
            self.command,
            self.dir.path().display()
        );
        for name in ["stderr.log", "errors.log", "stdout.log", "messages.log"] {
            let text = self.log(name);
            let tail: String = {
                let c: Vec<char> = text.chars().collect();
                c[c.len().saturating_sub(3000)..].iter().collect()
            };
            let _ = write!(s, "----- {name} (tail) -----\n{tail}\n");
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

/// SIPp exited 0 with `calls` successful calls and none failed.
fn assert_sipp_ok(what: &str, run: &SippRun, calls: u64) {
    assert_all_ok(&[(what, run, calls)]);
}

/// Why `run` is not "exit 0, `calls` successful calls, none failed", if it is not.
fn sipp_failure(run: &SippRun, calls: u64) -> Option<String> {
    let stat = |name: &str| {
        run.stats
            .get(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let (ok, failed) = (stat("SuccessfulCall(C)"), stat("FailedCall(C)"));
    if run.status.code() != Some(0) {
        Some(format!(
            "SIPp exit {} (0 = all calls successful)",
            run.status
        ))
    } else if ok != Some(calls) {
        Some(format!("SuccessfulCall(C) {ok:?}, expected {calls}"))
    } else if failed != Some(0) {
        Some(format!("FailedCall(C) {failed:?}, expected 0"))
    } else {
        None
    }
}

/// Every SIPp of one test passed ([`sipp_failure`]); on a failure the diagnostics of all of them
/// are shown (the peer's logs tell why the failing side saw nothing).
fn assert_all_ok(runs: &[(&str, &SippRun, u64)]) {
    let mut failures = String::new();
    for (what, run, calls) in runs {
        eprintln!(
            "{what}: SIPp calls completed {}/{calls}, failed {}, exit {}",
            run.stats.get("SuccessfulCall(C)").map_or("?", |s| s.trim()),
            run.stats.get("FailedCall(C)").map_or("?", |s| s.trim()),
            run.status
        );
        if let Some(why) = sipp_failure(run, *calls) {
            let _ = writeln!(failures, "{what}: {why}");
        }
    }
    if !failures.is_empty() {
        let mut all = failures.clone();
        for (what, run, _) in runs {
            let _ = write!(all, "\n===== {what} =====\n{}", run.diagnostics);
        }
        panic!("{all}");
    }
}

/// Transport flags for SIPp.
fn sipp_transport(t: Transport, lossy: bool) -> Vec<String> {
    let mut v = Vec::new();
    if t == Transport::Tcp {
        v.extend(["-t".into(), "t1".into()]);
    }
    if lossy {
        v.extend(["-lost".into(), "10".into()]);
    }
    v
}

/// For SIPp's built-in `uac` under `-lost`: keep each call up 4 s between ACK and BYE (`-d`, the
/// length of its `pause`). SIPp re-sends the ACK for a retransmitted 200 only while the call is
/// alive; with no pause a lost ACK leaves the UAS retransmitting its 200 to a finished ("dead")
/// call until Timer H, whatever the proxy between them does. Four seconds cover the UAS's 200
/// retransmissions at 0.5, 1.5 and 3.5 s, so three ACKs in a row would have to be lost.
fn lossy_uac_pause(lossy: bool) -> Vec<String> {
    if lossy {
        args(&["-d", "4000"])
    } else {
        Vec::new()
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Our UAC and UAS
// ---------------------------------------------------------------------------------------------

fn ua_config(ip: IpAddr) -> EndpointConfig {
    EndpointConfig {
        addr: SocketAddr::new(ip, 0),
        ..EndpointConfig::default()
    }
}

/// One call from our UAC: INVITE, final 200 (the core ACKs it), BYE, 200. Returns the INVITE's
/// provisional statuses.
async fn call(ep: &Endpoint, to: Remote, user: &str) -> Result<Vec<u16>, String> {
    let mut inv = ep
        .invite(InviteParams {
            request_uri: format!("sip:{user}@{}", to.addr),
            from: "<sip:alice@ims.example>".into(),
            to: format!("<sip:{user}@ims.example>"),
            remote: to,
            headers: vec![],
            body: Some(("application/sdp".into(), SDP.into())),
        })
        .await
        .map_err(|e| format!("invite: {e}"))?;
    let mut provisional = Vec::new();
    let ok = loop {
        match inv.next().await {
            Some(Ok(r)) => {
                let code = r.as_message().status().unwrap_or(0);
                if code < 200 {
                    provisional.push(code);
                } else if code < 300 {
                    break r;
                } else {
                    return Err(format!("INVITE answered {code}"));
                }
            }
            Some(Err(e)) => return Err(format!("INVITE: {e}")),
            None => return Err("INVITE: no final response".into()),
        }
    };
    let dialog = DialogId::of_received_response(&ok.as_message()).ok_or("2xx without tags")?;
    // let the ACK reach the peer before the BYE
    tokio::time::sleep(Duration::from_millis(50)).await;
    let bye = ep.bye(&dialog).await.map_err(|e| format!("bye: {e}"))?;
    let r = bye
        .final_response()
        .await
        .map_err(|e| format!("BYE: {e}"))?;
    match r.as_message().status() {
        Some(200) => Ok(provisional),
        other => Err(format!("BYE answered {other:?}")),
    }
}

/// `n` calls, started 50 ms apart, all running at once; returns (completed, errors).
async fn calls(ep: &Endpoint, to: Remote, n: usize) -> (usize, Vec<String>) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let ep = ep.clone();
        tasks.push(tokio::spawn(async move {
            // an INVITE in Proceeding waits for its final response without a timer (RFC 3261
            // §17.1.1.2: Timer B stops at the first 1xx); bound the whole call here
            match tokio::time::timeout(CALL_LIMIT, call(&ep, to, "service")).await {
                Ok(r) => r,
                Err(_) => Err(format!("call not finished after {CALL_LIMIT:?}")),
            }
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ok = 0;
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(format!("task: {e}")),
        }
    }
    (ok, errors)
}

/// What our UAS saw.
#[derive(Debug, Default, Clone)]
struct UasLog {
    invites: usize,
    acks: usize,
    pracks: usize,
    byes: usize,
    errors: Vec<String>,
}

/// Runs our UAS: every INVITE is answered 180 then 200 with SDP, or with `prack` a reliable 183,
/// then the 200 once the PRACK arrived. BYE is answered by the core.
fn spawn_uas(
    ep: Endpoint,
    mut incoming: ims::net::sip::Incoming,
    prack: bool,
) -> Arc<Mutex<UasLog>> {
    let log = Arc::new(Mutex::new(UasLog::default()));
    let l = log.clone();
    tokio::spawn(async move {
        // (Call-ID, remote tag) → INVITE transaction waiting for its PRACK
        let mut waiting: HashMap<(String, String), ims::txn::TxnId> = HashMap::new();
        while let Some(ev) = incoming.recv().await {
            match ev {
                UaEvent::IncomingInvite { txn, msg, .. } => {
                    l.lock().unwrap().invites += 1;
                    let m = msg.as_message();
                    let r = if prack {
                        let key = (
                            m.call_id()
                                .ok()
                                .flatten()
                                .map(|c| c.as_str().to_owned())
                                .unwrap_or_default(),
                            m.from()
                                .ok()
                                .flatten()
                                .and_then(|f| f.tag().map(str::to_owned))
                                .unwrap_or_default(),
                        );
                        waiting.insert(key, txn);
                        ep.respond(txn, Answer::new(183).reliable()).await
                    } else {
                        match ep.respond(txn, Answer::new(180)).await {
                            Ok(()) => {
                                ep.respond(txn, Answer::new(200).body("application/sdp", SDP))
                                    .await
                            }
                            e => e,
                        }
                    };
                    if let Err(e) = r {
                        l.lock().unwrap().errors.push(format!("respond: {e}"));
                    }
                }
                UaEvent::PrackReceived { dialog, .. } => {
                    l.lock().unwrap().pracks += 1;
                    let key = (dialog.call_id.clone(), dialog.remote_tag.clone());
                    if let Some(txn) = waiting.remove(&key) {
                        if let Err(e) = ep
                            .respond(txn, Answer::new(200).body("application/sdp", SDP))
                            .await
                        {
                            l.lock()
                                .unwrap()
                                .errors
                                .push(format!("200 after PRACK: {e}"));
                        }
                    }
                }
                UaEvent::AckReceived { .. } => l.lock().unwrap().acks += 1,
                UaEvent::DialogTerminated {
                    reason: EndReason::ByeReceived,
                    ..
                } => l.lock().unwrap().byes += 1,
                UaEvent::IncomingRequest { txn, .. } => {
                    let _ = ep.respond(txn, Answer::new(200)).await;
                }
                _ => {}
            }
        }
    });
    log
}

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

const CALLS: usize = 10;
const LOSSY_CALLS: usize = 20;

fn n_calls(lossy: bool) -> usize {
    if lossy {
        LOSSY_CALLS
    } else {
        CALLS
    }
}

/// Runs a lossy interop test, up to twice more if it fails: SIPp's own scenarios mishandle some
/// loss patterns (a call it aborted on an unexpected retransmission never completes on our side
/// either), rare but not negligible over 20-call runs on a loaded machine. Every call of the last
/// run must complete, so a real regression still fails; each failure is printed.
/// `prack_uas.xml` had two such patterns of its own, both fixed in the scenario: a late PRACK
/// ended the retransmissions of the 200 (INVITE), so a call whose first 200 (PRACK) and first
/// 200 (INVITE) were both lost never got its final response; and its 4 s timewait left a BYE
/// whose copies or 200s were lost four times unanswered.
fn lossy_once_more(f: impl Fn()) {
    for attempt in 1..3 {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&f)) {
            Ok(()) => return,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic)");
                eprintln!("lossy run {attempt} failed, running it once more: {msg}");
            }
        }
    }
    f();
}

/// Our UAC against SIPp's `uas` (or `scenario`).
fn uac_against_sipp(tag: &str, transport: Transport, lossy: bool, scenario: Option<&str>) {
    let Some(sipp) = sipp() else { return };
    let _g = serial();
    let n = n_calls(lossy);
    let rt = runtime();
    rt.block_on(async {
        let mut a = match scenario {
            Some(f) => args(&["-sf", &repo_file(f)]),
            None => args(&["-sn", "uas"]),
        };
        a.extend(args(&["-m", &n.to_string()]));
        a.extend(sipp_transport(transport, lossy));
        if lossy {
            // a retransmission whose answer was lost (an INVITE after SIPp's 180 or 200 was
            // dropped, a PRACK after the call ended) reaches SIPp where its scenario expects
            // something else: ignore it (SIPp keeps retransmitting its own 200) rather than abort
            // the call, which is SIPp's default and not what a UAS does (RFC 3261 §17.2.1)
            a.extend(args(&["-default_behaviors", "all,-abortunexp"]));
        }
        let s = Sipp::start(&sipp, tag, &a);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (ep, _events) = Endpoint::bind(ua_config(LOCALHOST)).await.expect("bind");
        let to = Remote {
            transport,
            addr: s.addr(),
        };
        let (ok, errors) = calls(&ep, to, n).await;
        eprintln!("{tag}: our UAC completed {ok}/{n} calls");
        let run = s.finish().await;
        assert!(errors.is_empty(), "{errors:?}\n{}", run.diagnostics);
        assert_eq!(ok, n);
        assert_sipp_ok(tag, &run, n as u64);
        ep.shutdown();
    });
}

/// SIPp's `uac` (or `scenario`) against our UAS.
fn uas_against_sipp(tag: &str, transport: Transport, lossy: bool, scenario: Option<&str>) {
    let Some(sipp) = sipp() else { return };
    let _g = serial();
    let n = n_calls(lossy);
    let rt = runtime();
    rt.block_on(async {
        let (ep, incoming) = Endpoint::bind(ua_config(LOCALHOST)).await.expect("bind");
        let log = spawn_uas(ep.clone(), incoming, scenario.is_some());
        let mut a = match scenario {
            Some(f) => args(&["-sf", &repo_file(f)]),
            None => [args(&["-sn", "uac"]), lossy_uac_pause(lossy)].concat(),
        };
        a.push(ep.local_addr().to_string());
        a.extend(args(&["-m", &n.to_string(), "-r", "10", "-l", "20"]));
        a.extend(sipp_transport(transport, lossy));
        if lossy {
            // our answer to a request SIPp retransmitted (its first answer lost) may arrive after
            // SIPp went on: a 200 (PRACK) for a PRACK retransmitted just before the 200 (INVITE)
            // came, received while SIPp pauses after its ACK. Answering every retransmission is
            // what a UAS must do (RFC 3261 §17.2.2); SIPp's default is to abort the call on it.
            a.extend(args(&["-default_behaviors", "all,-abortunexp"]));
        }
        let s = Sipp::start(&sipp, tag, &a);
        let run = s.finish().await;
        // the last ACK/BYE events may still be in flight
        tokio::time::sleep(Duration::from_millis(200)).await;
        let log = log.lock().unwrap().clone();
        eprintln!("{tag}: our UAS saw {log:?}");
        assert!(
            log.errors.is_empty(),
            "{:?}\n{}",
            log.errors,
            run.diagnostics
        );
        assert_sipp_ok(tag, &run, n as u64);
        assert_eq!(log.invites, n, "{}", run.diagnostics);
        // With datagrams lost, a BYE may overtake a lost ACK (RFC 3261 §15.1.2 lets the UAS take
        // the BYE as the end of the call), and SIPp's built-in `uac` takes a retransmitted 200
        // (INVITE) for the answer to a BYE it lost, so neither count is exact; without loss
        // every ACK and every BYE must arrive.
        if !lossy {
            assert_eq!(log.acks, n, "{}", run.diagnostics);
            assert_eq!(log.byes, n, "{}", run.diagnostics);
        }
        if scenario.is_some() {
            assert_eq!(log.pracks, n, "{}", run.diagnostics);
        }
        ep.shutdown();
    });
}

#[test]
fn uac_udp() {
    uac_against_sipp("uac-udp", Transport::Udp, false, None);
}
#[test]
fn uac_tcp() {
    uac_against_sipp("uac-tcp", Transport::Tcp, false, None);
}
#[test]
fn uac_udp_lost10() {
    lossy_once_more(|| uac_against_sipp("uac-lost", Transport::Udp, true, None));
}
#[test]
fn uas_udp() {
    uas_against_sipp("uas-udp", Transport::Udp, false, None);
}
#[test]
fn uas_tcp() {
    uas_against_sipp("uas-tcp", Transport::Tcp, false, None);
}
#[test]
fn uas_udp_lost10() {
    lossy_once_more(|| uas_against_sipp("uas-lost", Transport::Udp, true, None));
}
#[test]
fn prack_uac_udp() {
    uac_against_sipp(
        "prack-uac-udp",
        Transport::Udp,
        false,
        Some("examples/sipp/prack_uas.xml"),
    );
}
#[test]
fn prack_uac_tcp() {
    uac_against_sipp(
        "prack-uac-tcp",
        Transport::Tcp,
        false,
        Some("examples/sipp/prack_uas.xml"),
    );
}
#[test]
fn prack_uac_udp_lost10() {
    lossy_once_more(|| {
        uac_against_sipp(
            "prack-uac-lost",
            Transport::Udp,
            true,
            Some("examples/sipp/prack_uas.xml"),
        )
    });
}
#[test]
fn prack_uas_udp() {
    uas_against_sipp(
        "prack-uas-udp",
        Transport::Udp,
        false,
        Some("examples/sipp/prack_uac.xml"),
    );
}
#[test]
fn prack_uas_tcp() {
    uas_against_sipp(
        "prack-uas-tcp",
        Transport::Tcp,
        false,
        Some("examples/sipp/prack_uac.xml"),
    );
}
#[test]
fn prack_uas_udp_lost10() {
    lossy_once_more(|| {
        uas_against_sipp(
            "prack-uas-lost",
            Transport::Udp,
            true,
            Some("examples/sipp/prack_uac.xml"),
        )
    });
}

// ---------------------------------------------------------------------------------------------
// The stateful proxy
// ---------------------------------------------------------------------------------------------

/// Starts our proxy on 127.0.0.2 with `locations`.
async fn start_proxy(locations: Locations) -> ProxyEndpoint {
    let (p, events): (ProxyEndpoint, ProxyEvents) = ProxyEndpoint::bind(ua_config(PROXY_IP), true)
        .await
        .expect("bind proxy");
    let serve = p.clone();
    tokio::spawn(async move { serve.serve(events, locations).await });
    p
}

/// SIPp `uac` → our proxy → SIPp `uas`.
fn proxy_between_sipps(tag: &str, transport: Transport, lossy: bool) {
    let Some(sipp) = sipp() else { return };
    let _g = serial();
    let n = n_calls(lossy);
    let rt = runtime();
    rt.block_on(async {
        // the loss is on the UAC↔proxy hop: SIPp's own UAS mishandles a dropped initial INVITE
        // under -lost (it reports the retransmission as an unexpected message), see the notes
        let mut a = args(&["-sn", "uas", "-m", &n.to_string()]);
        a.extend(sipp_transport(transport, false));
        let uas = Sipp::start(&sipp, &format!("{tag}-uas"), &a);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut loc = Locations::default();
        loc.set_default(vec![Remote {
            transport,
            addr: uas.addr(),
        }]);
        let proxy = start_proxy(loc).await;
        let mut a = args(&["-sn", "uac", &proxy.local_addr().to_string()]);
        a.extend(args(&["-m", &n.to_string(), "-r", "10", "-l", "20"]));
        a.extend(sipp_transport(transport, lossy));
        a.extend(lossy_uac_pause(lossy));
        let uac = Sipp::start(&sipp, &format!("{tag}-uac"), &a);
        let uac_run = uac.finish().await;
        let uas_run = uas.finish().await;
        assert_all_ok(&[
            (&format!("{tag} (SIPp UAC)"), &uac_run, n as u64),
            (&format!("{tag} (SIPp UAS)"), &uas_run, n as u64),
        ]);
        proxy.shutdown();
    });
}

#[test]
fn proxy_udp() {
    proxy_between_sipps("proxy-udp", Transport::Udp, false);
}
#[test]
fn proxy_tcp() {
    proxy_between_sipps("proxy-tcp", Transport::Tcp, false);
}
#[test]
fn proxy_udp_lost10() {
    lossy_once_more(|| proxy_between_sipps("proxy-lost", Transport::Udp, true));
}

/// One INVITE forked by our proxy to SIPp `uas` (180, 200) and to
/// `fork_uas_ring_busy.xml` (180, then 486 after 3 s unless cancelled).
fn forking(tag: &str, transport: Transport) {
    let Some(sipp) = sipp() else { return };
    let _g = serial();
    let n = 5usize;
    let rt = runtime();
    rt.block_on(async {
        let mut a = args(&["-sn", "uas", "-m", &n.to_string()]);
        a.extend(sipp_transport(transport, false));
        let winner = Sipp::start(&sipp, &format!("{tag}-uas-ok"), &a);
        let mut a = args(&["-sf", &repo_file("examples/sipp/fork_uas_ring_busy.xml")]);
        a.extend(args(&["-m", &n.to_string()]));
        a.extend(sipp_transport(transport, false));
        let loser = Sipp::start(&sipp, &format!("{tag}-uas-busy"), &a);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut loc = Locations::default();
        loc.add(
            "fork",
            vec![
                Remote {
                    transport,
                    addr: winner.addr(),
                },
                Remote {
                    transport,
                    addr: loser.addr(),
                },
            ],
        );
        let proxy = start_proxy(loc).await;
        let mut a = args(&[
            "-sf",
            &repo_file("examples/sipp/fork_uac.xml"),
            "-s",
            "fork",
        ]);
        a.push(proxy.local_addr().to_string());
        a.extend(args(&["-m", &n.to_string(), "-r", "5", "-l", "10"]));
        a.extend(sipp_transport(transport, false));
        let uac = Sipp::start(&sipp, &format!("{tag}-uac"), &a);
        let uac_run = uac.finish().await;
        let winner_run = winner.finish().await;
        let loser_log_dir = loser.log("messages.log");
        let loser_run = loser.finish().await;
        // the UAC saw exactly one 200 per call (a second one would fail its scenario)
        assert_all_ok(&[
            (&format!("{tag} (SIPp UAC)"), &uac_run, n as u64),
            (&format!("{tag} (answering UAS)"), &winner_run, n as u64),
            (&format!("{tag} (cancelled UAS)"), &loser_run, n as u64),
        ]);
        // the losing branch was cancelled every time, before its 486
        let log = loser_log_dir;
        let cancels = log.matches("CANCEL sip:").count();
        let terminated = log.matches("SIP/2.0 487 Request Terminated").count();
        let busy = log.matches("SIP/2.0 486 Busy Here").count();
        eprintln!("{tag}: losing branch got {cancels} CANCEL, sent {terminated} 487, {busy} 486");
        assert!(
            cancels >= n,
            "{cancels} CANCEL for {n} calls\n{}",
            loser_run.diagnostics
        );
        assert!(
            terminated >= n,
            "{terminated} 487 for {n} calls\n{}",
            loser_run.diagnostics
        );
        assert_eq!(busy, 0, "{}", loser_run.diagnostics);
        proxy.shutdown();
    });
}

/// SIPp `uac` → our stateless proxy → SIPp `uas`.
fn stateless_proxy_between_sipps(tag: &str, transport: Transport, lossy: bool) {
    let Some(sipp) = sipp() else { return };
    let _g = serial();
    let n = n_calls(lossy);
    let rt = runtime();
    rt.block_on(async {
        let mut a = args(&["-sn", "uas", "-m", &n.to_string()]);
        a.extend(sipp_transport(transport, false));
        let uas = Sipp::start(&sipp, &format!("{tag}-uas"), &a);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut loc = Locations::default();
        loc.set_default(vec![Remote {
            transport,
            addr: uas.addr(),
        }]);
        let proxy = ProxyEndpoint::bind_stateless(ua_config(PROXY_IP), true, loc)
            .await
            .expect("bind stateless proxy");
        let mut a = args(&["-sn", "uac", &proxy.local_addr().to_string()]);
        a.extend(args(&["-m", &n.to_string(), "-r", "10", "-l", "20"]));
        a.extend(sipp_transport(transport, lossy));
        a.extend(lossy_uac_pause(lossy));
        let uac = Sipp::start(&sipp, &format!("{tag}-uac"), &a);
        let uac_run = uac.finish().await;
        let uas_run = uas.finish().await;
        assert_all_ok(&[
            (&format!("{tag} (SIPp UAC)"), &uac_run, n as u64),
            (&format!("{tag} (SIPp UAS)"), &uas_run, n as u64),
        ]);
        // stateless: nothing is kept per call
        assert_eq!(proxy.contexts().await.unwrap(), 0);
        // the last requests (ACK, BYE) crossed the proxy too: the UAS saw its §16.11 branch
        assert!(
            uas_run.diagnostics.contains("branch=z9hG4bKsl"),
            "no stateless-proxy Via at the UAS\n{}",
            uas_run.diagnostics
        );
        proxy.shutdown();
    });
}

#[test]
fn stateless_proxy_udp() {
    stateless_proxy_between_sipps("slproxy-udp", Transport::Udp, false);
}
#[test]
fn stateless_proxy_tcp() {
    stateless_proxy_between_sipps("slproxy-tcp", Transport::Tcp, false);
}
// No `-lost 10` run for the stateless proxy: it forwards every retransmission, so the peers'
// own retransmission handling decides, and SIPp's falls short of RFC 3261 §17.2.2: its UAS does
// not answer a BYE retransmitted after it ended the call (a UAC whose 200 to BYE was dropped by
// `-lost` times out on Timer F), and without `-d` its UAC ignores 200 retransmissions once it
// counts the call done (the UAS aborts on Timer H). Measured with `-d 4000`: one 20-call run in
// three still fails that way. The stateful proxy's transactions absorb both (`proxy_udp_lost10`);
// same-branch forwarding of retransmissions, CANCEL and non-2xx ACK by the stateless proxy is
// proven deterministically in tests/net_sip_endpoint.rs instead.

#[test]
fn proxy_forking_udp() {
    forking("fork-udp", Transport::Udp);
}
#[test]
fn proxy_forking_tcp() {
    forking("fork-tcp", Transport::Tcp);
}

// ---------------------------------------------------------------------------------------------
// Throughput of the stateful proxy (run once, by hand, in release)
// ---------------------------------------------------------------------------------------------

/// The proxy under measurement in [`proxy_rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnderTest {
    /// Our transaction-stateful [`ProxyEndpoint`].
    Ours,
    /// Our stateless proxy ([`ProxyEndpoint::bind_stateless`]).
    OursStateless,
    /// Kamailio with `examples/kamailio/proxy.cfg`, `tm` (`t_relay()`).
    KamailioTm,
    /// The same Kamailio configuration stateless (`forward()`).
    KamailioStateless,
}

impl UnderTest {
    fn name(self) -> &'static str {
        match self {
            UnderTest::Ours => "ims-rs stateful",
            UnderTest::OursStateless => "ims-rs stateless",
            UnderTest::KamailioTm => "Kamailio tm",
            UnderTest::KamailioStateless => "Kamailio stateless",
        }
    }
}

/// Kamailio worker processes per transport in the rate runs.
const KAMAILIO_CHILDREN: u32 = 4;

/// SIPp's socket buffers in `proxy_rate` (its default, 64 KB, overflows from a few hundred
/// calls/s on and turns the measurement into one of SIPp's retransmissions).
const SIPP_RATE_BUFFER: &str = "4194304";

/// SIPp `uac` → a proxy → SIPp `uas` over UDP at increasing call rates, 5 s per step; prints
/// calls/s, completed/attempted and the failure ratio of each step, and the highest rate with
/// fewer than 0.1 % failed calls. The proxies measured, one after the other in the same run
/// (`IMS_PROXY_RATE_UNDER`, comma-separated, default all): `ours` (stateful), `ours-sl`
/// (stateless), `kamailio-tm` and `kamailio-sl` (Kamailio with `examples/kamailio/proxy.cfg`,
/// [`KAMAILIO_CHILDREN`] workers; skipped when Kamailio is missing). Record-Route on in every
/// case. Rates: `IMS_PROXY_RATES` (default 100,250,500,750,1000,1500,2000,3000). Run:
/// `cargo test --release -p ims --test net_sip_sipp proxy_rate -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, minutes long; run by hand in release"]
fn proxy_rate() {
    let Some(sipp) = sipp() else { return };
    let _g = serial();
    let rt = runtime();
    let rates: Vec<u32> = std::env::var("IMS_PROXY_RATES")
        .ok()
        .map(|v| v.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 250, 500, 750, 1000, 1500, 2000, 3000]);
    let under: Vec<UnderTest> = std::env::var("IMS_PROXY_RATE_UNDER")
        .unwrap_or_else(|_| "ours,ours-sl,kamailio-tm,kamailio-sl".into())
        .split(',')
        .filter_map(|u| match u.trim() {
            "ours" => Some(UnderTest::Ours),
            "ours-sl" => Some(UnderTest::OursStateless),
            "kamailio-tm" => Some(UnderTest::KamailioTm),
            "kamailio-sl" => Some(UnderTest::KamailioStateless),
            _ => None,
        })
        .collect();
    let kamailio_bin = if under
        .iter()
        .any(|u| matches!(u, UnderTest::KamailioTm | UnderTest::KamailioStateless))
    {
        kamailio::kamailio()
    } else {
        None
    };
    let mut summary = Vec::new();
    for u in under {
        let kam_bin = match u {
            UnderTest::KamailioTm | UnderTest::KamailioStateless => match &kamailio_bin {
                Some(b) => Some(b.clone()),
                None => continue,
            },
            _ => None,
        };
        let mut best = (0u32, 0.0f64);
        for &rate in &rates {
            let n = rate * 5;
            let (ok, failed, secs) = rt.block_on(async {
                let uas = Sipp::start(
                    &sipp,
                    "rate-uas",
                    &args(&[
                        "-sn",
                        "uas",
                        "-m",
                        &n.to_string(),
                        "-nd",
                        "-buff_size",
                        SIPP_RATE_BUFFER,
                    ]),
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
                let mut loc = Locations::default();
                loc.set_default(vec![Remote::udp(uas.addr())]);
                let mut ours = None;
                let mut kam = None;
                let target = match u {
                    UnderTest::Ours => {
                        let p = start_proxy(loc).await;
                        let a = p.local_addr();
                        ours = Some(p);
                        a
                    }
                    UnderTest::OursStateless => {
                        let p = ProxyEndpoint::bind_stateless(ua_config(PROXY_IP), true, loc)
                            .await
                            .expect("bind stateless proxy");
                        let a = p.local_addr();
                        ours = Some(p);
                        a
                    }
                    UnderTest::KamailioTm | UnderTest::KamailioStateless => {
                        let bin = kam_bin.as_ref().expect("checked above");
                        let k = tokio::task::block_in_place(|| {
                            kamailio::Kamailio::start(
                                bin,
                                "rate",
                                u == UnderTest::KamailioTm,
                                PROXY_IP,
                                &format!("sip:{}", uas.addr()),
                                KAMAILIO_CHILDREN,
                            )
                        });
                        let a = k.addr;
                        kam = Some(k);
                        a
                    }
                };
                let uac = Sipp::start(
                    &sipp,
                    "rate-uac",
                    &args(&[
                        "-sn",
                        "uac",
                        &target.to_string(),
                        "-r",
                        &rate.to_string(),
                        "-m",
                        &n.to_string(),
                        "-l",
                        &(rate * 40).to_string(),
                        "-d",
                        "0",
                        "-nd",
                        "-buff_size",
                        SIPP_RATE_BUFFER,
                    ]),
                );
                let started = tokio::time::Instant::now();
                let run = uac.finish().await;
                let secs = started.elapsed().as_secs_f64();
                drop(uas);
                if let Some(p) = ours {
                    p.shutdown();
                }
                tokio::task::block_in_place(|| drop(kam));
                let stat = |k: &str| {
                    run.stats
                        .get(k)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                tokio::time::sleep(Duration::from_millis(500)).await;
                (stat("SuccessfulCall(C)"), stat("FailedCall(C)"), secs)
            });
            let ratio = failed as f64 / f64::from(n);
            let achieved = ok as f64 / secs;
            eprintln!(
                "{}: rate {rate} calls/s: completed {ok}/{n}, failed {failed} ({:.3} %), {secs:.1} s, {achieved:.0} calls/s achieved",
                u.name(),
                ratio * 100.0,
            );
            if ok == u64::from(n) && ratio < 0.001 {
                best = (rate, achieved);
            } else {
                break;
            }
        }
        eprintln!(
            "{}: highest rate with < 0.1 % failed calls: {} calls/s offered ({:.0} achieved)",
            u.name(),
            best.0,
            best.1
        );
        summary.push((u.name(), best));
    }
    eprintln!("summary (highest offered rate with every call completed, achieved calls/s):");
    for (name, (rate, achieved)) in summary {
        eprintln!("  {name}: {rate} offered, {achieved:.0} achieved");
    }
}
