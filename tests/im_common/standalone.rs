//! For the tests that drive a stand-alone IM server or session anchor (no core in front):
//! a UE-side client sending straight to the IM server (as the S-CSCF would), third-party
//! REGISTERs, a scripted S-CSCF that answers INVITEs, Alice's INVITE with an MSRP offer, and a
//! look at what the IM server wrote to Redis; for `tests/im_failures.rs` and
//! `tests/im_crash.rs`, a scripted S-CSCF answering each Request-URI as told ([`scscf`]) and
//! the IM server configuration they share ([`im_config`]).

use super::{LO, WAIT};
use ims::net::sip::{Endpoint, EndpointConfig, Incoming};
use ims::nf::im_server::Numbering;
use ims::nf::im_server::{ImServer, ImServerConfig};
use ims::sip::{Method, OwnedMessage, RequestBuilder};
use ims::txn::ua::{Answer, InviteParams, UaEvent};
use ims::txn::Remote;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// The service centre address short messages are submitted to.
pub(crate) const SC: &str = "sip:+15550000@ims.example.org";

/// The final status (0 when it has none) of the request `m` that `ep` sends over UDP to `to`,
/// answered within [`WAIT`].
pub(crate) async fn final_status(ep: &Endpoint, m: OwnedMessage, to: SocketAddr) -> u16 {
    super::send(ep, to, m)
        .await
        .as_message()
        .status()
        .unwrap_or(0)
}

/// An endpoint bound on 127.0.0.1:`port` and what it gets; `what` names it in the panic when
/// the port is taken.
pub(crate) async fn bind_with_events(port: u16, what: &str) -> (Endpoint, Incoming) {
    Endpoint::bind(EndpointConfig {
        addr: SocketAddr::new(LO, port),
        ..EndpointConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{what} binds: {e}"))
}

/// An endpoint bound on 127.0.0.1:`port` (what it gets is dropped); `what` names it in the
/// panic when the port is taken.
pub(crate) async fn bind(port: u16, what: &str) -> Endpoint {
    bind_with_events(port, what).await.0
}

/// A runtime of its own (one worker) for an IM server that the test "crashes": tearing the
/// runtime down (`shutdown_background`) drops every task of the server (the store writer
/// included) wherever it stands, without any shutdown.
pub(crate) fn crash_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The IM server `cfg` describes, started on a [`crash_runtime`] (returned with it).
pub(crate) async fn start_crashable(cfg: &ImServerConfig) -> (Runtime, ImServer) {
    let rt = crash_runtime();
    let im = rt
        .spawn(ImServer::start(cfg.clone()))
        .await
        .expect("start task")
        .expect("IM server");
    (rt, im)
}

/// The next item on `rx` within [`WAIT`]; `what` names it when it does not come.
pub(crate) async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("waited in vain for {what}"))
        .expect("open")
}

/// A UE-side endpoint that sends requests straight to the IM server (as the S-CSCF would).
pub(crate) struct Client {
    ep: Endpoint,
    server: SocketAddr,
    seq: u32,
    label: &'static str,
}

impl Client {
    /// Bound on 127.0.0.1:`port`, sending to `server`; `label` starts its Call-IDs and From tags.
    pub(crate) async fn new(port: u16, server: SocketAddr, label: &'static str) -> Client {
        let ep = bind(port, "client").await;
        Client {
            ep,
            server,
            seq: 0,
            label,
        }
    }

    /// Sends the request `b` builds (with Max-Forwards and a fresh Call-ID): its final status.
    pub(crate) async fn send(&mut self, b: RequestBuilder) -> u16 {
        self.seq += 1;
        let m = b
            .header("Max-Forwards", 70)
            .header(
                "Call-ID",
                format!("{}-{}-{}", self.label, self.seq, self.ep.local_addr()),
            )
            .build()
            .expect("request");
        final_status(&self.ep, m, self.server).await
    }

    /// A MESSAGE from `from` (asserted) to `ruri` with a `ct` body: its final status.
    pub(crate) async fn message(&mut self, from: &str, ruri: &str, ct: &str, body: Vec<u8>) -> u16 {
        let (label, seq) = (self.label, self.seq);
        self.send(
            RequestBuilder::new(Method::Message, ruri)
                .header("From", format!("<{from}>;tag={label}{seq}"))
                .header("To", format!("<{ruri}>"))
                .header("CSeq", "1 MESSAGE")
                .header("P-Asserted-Identity", format!("<{from}>"))
                .body(ct, body),
        )
        .await
    }

    /// `from` sends the RP message `body` to the service centre: the MESSAGE gets 202.
    pub(crate) async fn sms(&mut self, from: &str, body: Vec<u8>) {
        assert_eq!(
            self.message(from, SC, "application/vnd.3gpp.sms", body)
                .await,
            202
        );
    }

    /// A third-party REGISTER (600 s) for `impu` from the scripted S-CSCF on `scscf`.
    pub(crate) async fn third_party_register(&mut self, impu: &str, scscf: u16) -> u16 {
        self.register_from(impu, &format!("sip:127.0.0.1:{scscf}"), 600)
            .await
    }

    /// A third-party REGISTER for `impu` from the S-CSCF `scscf` (From and Contact, TS 24.229
    /// §5.4.1.7).
    pub(crate) async fn register_from(&mut self, impu: &str, scscf: &str, expires: u32) -> u16 {
        self.send(
            RequestBuilder::new(Method::Register, &format!("sip:{}", self.server))
                .header("From", format!("<{scscf}>;tag=tp"))
                .header("To", format!("<{impu}>"))
                .header("CSeq", "1 REGISTER")
                .header("Contact", format!("<{scscf}>"))
                .header("Expires", expires),
        )
        .await
    }
}

/// Registration number `n` (From tag `tp<n>`, CSeq `n`, Call-ID `<call_id>-reg-<n>`) of `impu`
/// by the S-CSCF `scscf` (its URI in From and Contact, TS 24.229 §5.4.1.7) for `expires`
/// seconds, sent by `ep` to the IM server at `server`: its final status.
pub(crate) async fn register_with(
    ep: &Endpoint,
    server: SocketAddr,
    impu: &str,
    scscf: &str,
    expires: u32,
    n: u32,
    call_id: &str,
) -> u16 {
    let m = RequestBuilder::new(Method::Register, &format!("sip:{server}"))
        .header("Max-Forwards", 70)
        .header("From", format!("<{scscf}>;tag=tp{n}"))
        .header("To", format!("<{impu}>"))
        .header("Call-ID", format!("{call_id}-reg-{n}"))
        .header("CSeq", format!("{n} REGISTER"))
        .header("Contact", format!("<{scscf}>"))
        .header("Expires", expires)
        .build()
        .expect("REGISTER");
    final_status(ep, m, server).await
}

/// A scripted S-CSCF on 127.0.0.1:`port`: INVITEs are answered `code` and handed to the
/// returned channel, other requests answered 200.
pub(crate) async fn invite_answering_scscf(
    port: u16,
    code: u16,
) -> mpsc::UnboundedReceiver<OwnedMessage> {
    let (ep, mut incoming) = bind_with_events(port, "S-CSCF").await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = incoming.recv().await {
            match ev {
                UaEvent::IncomingInvite { txn, msg, .. } => {
                    let _ = ep.respond(txn, Answer::new(code)).await;
                    let _ = tx.send(msg);
                }
                UaEvent::IncomingRequest { txn, .. } => {
                    let _ = ep.respond(txn, Answer::new(200)).await;
                }
                _ => {}
            }
        }
    });
    rx
}

/// `from`'s INVITE to `to` (asserted) with the SDP offer `sdp`, sent by `ep` straight to the
/// anchor at `server` (no Route): its final status.
pub(crate) async fn invite(
    ep: &Endpoint,
    server: SocketAddr,
    from: &str,
    to: &str,
    sdp: &str,
) -> u16 {
    let mut t = ep
        .invite(InviteParams {
            request_uri: to.into(),
            from: format!("<{from}>"),
            to: format!("<{to}>"),
            remote: Remote::udp(server),
            headers: vec![("P-Asserted-Identity".into(), format!("<{from}>"))],
            body: Some(("application/sdp".into(), sdp.as_bytes().to_vec())),
        })
        .await
        .expect("INVITE sent");
    loop {
        let r = tokio::time::timeout(WAIT, t.next())
            .await
            .expect("an answer in time")
            .expect("a final answer")
            .expect("a response");
        let code = r.as_message().status().unwrap_or(0);
        if code >= 200 {
            return code;
        }
    }
}

/// An SDP offer of an MSRP session (text/plain) from `user` at
/// msrp://127.0.0.1:`port`/`session`;tcp.
pub(crate) fn msrp_offer(user: &str, port: u16, session: &str) -> String {
    format!(
        "v=0\r\no={user} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=message {port} TCP/MSRP *\r\na=accept-types:text/plain\r\n\
         a=path:msrp://127.0.0.1:{port}/{session};tcp\r\n"
    )
}

/// Redis commands over a fresh connection: an independent look at what the IM server wrote.
#[cfg(feature = "redis")]
pub(crate) mod redis {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// `HLEN key` on the Redis at 127.0.0.1:`port`.
    pub(crate) async fn hlen(port: u16, key: &str) -> Option<i64> {
        let line = command(port, &["HLEN", key]).await?;
        line.strip_prefix(':')?.trim_end().parse().ok()
    }

    /// One command to the Redis at 127.0.0.1:`port`; the first reply line.
    pub(crate) async fn command(port: u16, args: &[&str]) -> Option<String> {
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        c.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).await.ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        Some(text.lines().next()?.to_string())
    }
}

/// How the scripted S-CSCF ([`scscf`]) treats the requests for one Request-URI.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Treat {
    /// This final status at once.
    Answer(u16),
    /// This final status after the delay.
    Late(u16, Duration),
    /// No answer at all (the request is "in flight" for as long as the test likes).
    Hold,
}

/// What each Request-URI gets (200 at once when not listed).
pub(crate) type Script = Arc<Mutex<HashMap<&'static str, Treat>>>;

/// A request the S-CSCF got: the status it answers (`None`: held) and the request.
pub(crate) type Seen = mpsc::UnboundedReceiver<(Option<u16>, OwnedMessage)>;

/// The scripted S-CSCF on `port`: each request is treated as the script says and handed to
/// the returned channel (as it arrives) with the status it gets.
pub(crate) async fn scscf(port: u16) -> (Script, Seen) {
    let (ep, mut incoming) = bind_with_events(port, "S-CSCF").await;
    let script: Script = Arc::default();
    let (tx, rx) = mpsc::unbounded_channel();
    let s = script.clone();
    tokio::spawn(async move {
        while let Some(ev) = incoming.recv().await {
            let UaEvent::IncomingRequest { txn, msg, .. } = ev else {
                continue;
            };
            let ruri = msg
                .as_message()
                .request_uri_str()
                .unwrap_or_default()
                .to_string();
            let treat = s
                .lock()
                .unwrap()
                .iter()
                .find(|(u, _)| ruri == **u)
                .map_or(Treat::Answer(200), |(_, t)| *t);
            match treat {
                Treat::Answer(code) => {
                    let _ = ep.respond(txn, Answer::new(code)).await;
                    let _ = tx.send((Some(code), msg));
                }
                Treat::Late(code, after) => {
                    let _ = tx.send((Some(code), msg));
                    let ep = ep.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = ep.respond(txn, Answer::new(code)).await;
                    });
                }
                Treat::Hold => {
                    let _ = tx.send((None, msg));
                }
            }
        }
    });
    (script, rx)
}

/// From now on, the requests for `who` get `t`.
pub(crate) fn set(script: &Script, who: &'static str, t: Treat) {
    script.lock().unwrap().insert(who, t);
}

/// An IM server on `port` toward the S-CSCF on `scscf` with `users` (number, SIP URI) in its
/// numbering plan, network IMDNs, a 200 ms tick and a back-off of 2 s after the first attempt.
pub(crate) fn im_config(port: u16, scscf: u16, users: &[(&str, &str)]) -> ImServerConfig {
    let mut c = ImServerConfig::new(
        SocketAddr::new(LO, port),
        "ims.example.org",
        &format!("sip:term@127.0.0.1:{scscf}"),
    );
    let mut n = Numbering::new();
    for (number, uri) in users {
        n.add(number, [*uri]);
    }
    c.numbering = n;
    c.network_imdn = true;
    c.tick = Duration::from_millis(200);
    c.ipsmgw.retry_interval = 1;
    c
}

/// The next request to `to`: anything else first is a failure.
pub(crate) async fn next_to(rx: &mut Seen, to: &str, what: &str) -> (Option<u16>, OwnedMessage) {
    let (code, m) = next(rx, what).await;
    assert_eq!(m.as_message().request_uri_str(), Some(to), "{what}");
    (code, m)
}

/// Nothing reaches the S-CSCF for `quiet`.
pub(crate) async fn assert_quiet(rx: &mut Seen, quiet: Duration, why: &str) {
    if let Ok(Some((code, m))) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("{why}: got {code:?} {:?}", m.as_message().request_uri_str());
    }
}

/// An example binary started by a test; killed (and reaped) when the test ends, whichever way
/// it ends.
pub(crate) struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin` with `args` as a user starts it and reads its standard output until a line
/// containing `until` (or the end of the output), within 20 s; afterwards the output is drained
/// on a thread so the binary never blocks on a full pipe. Answers the running binary and what it
/// printed up to that line.
pub(crate) async fn start_binary<I, S>(
    bin: &std::path::Path,
    args: I,
    until: &'static str,
) -> (Running, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::process::{Command, Stdio};
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(stdout);
        let mut text = String::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                return text;
            }
            text.push_str(&l);
            if l.contains(until) {
                std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
                return text;
            }
        }
    });
    let text = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .unwrap_or_else(|_| panic!("{} prints {until:?} within 20 s", bin.display()))
        .expect("stdout reader");
    (running, text)
}
