//! The CSCF's registration work in one process, without sockets: the I-CSCF's UAR and the
//! S-CSCF's MAR, 401 challenge, AKA verification, SAR and 200, every Cx request and answer
//! really encoded and decoded (a requester hands the octets to the embedded HSS's Diameter
//! server), the registration stored in the memory store.
//!
//! ```text
//! cargo bench --bench cscf_register -- --warm-up-time 1 --measurement-time 3
//! CSCF_RSS_USERS=100000 cargo bench --bench cscf_register   # memory per registered user
//! ```
//!
//! `cscf_register/full_aka` is one full IMS-AKA registration (two REGISTERs: UAR+MAR → 401,
//! UAR+SAR → 200) including the UE's own Milenage/MD5 answer, which `ue_answer_aka` measures
//! alone. With `CSCF_RSS_USERS=N` it instead provisions N subscribers, registers each once and
//! prints the process's RSS growth per registered user (the S-CSCF's registration records and
//! the HSS's registration state; provisioning is measured before), then adds one reg event
//! subscription per user at the S-CSCF's notifier (the P-CSCF's, as in a running core) and
//! prints that growth too.

#![allow(missing_docs)] // criterion_group! makes an undocumented pub fn

use criterion::{criterion_group, Criterion};
use ims::auth::aka::{self, Usim};
use ims::auth::digest::{self, Challenge, Request};
use ims::auth::milenage::{Milenage, OperatorKey};
use ims::nf::cscf::{Decision, Icscf, IcscfConfig};
use ims::nf::cx::LocalHss;
use ims::nf::cx_wire::{DiameterCx, DiameterRequester, HssCxServer};
use ims::nf::enum_dns::EnumTable;
use ims::nf::hss::{AkaCredentials, Credentials, Hss, Subscriber};
use ims::nf::reginfo::Notifier;
use ims::nf::registrar::RegistrarConfig;
use ims::nf::scscf::{Scscf, ScscfConfig};
use ims::nf::store::{BindingStore, MemoryStore};
use ims::nf::subscription::{ImsSubscription, PublicIdentity, ServiceProfile};
use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

const K: [u8; 16] = *b"ims-rs-demo-K-01";
const OP: [u8; 16] = *b"ims-rs-demo-OP-1";
const NOW: u64 = 1_700_000_000;

/// Hands the request octets to the HSS's Cx server and returns its answer's octets.
struct Loopback(HssCxServer);

impl DiameterRequester for Loopback {
    async fn request(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0
            .answer(&request)
            .await
            .ok_or_else(|| "no answer".to_string())
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    // the in-process HSS and the memory store never pend
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("in-process futures complete at once"),
    }
}

fn impi(i: u32) -> String {
    format!("0010100{i:08}@ims.example.org")
}

struct Core {
    icscf: Icscf<DiameterCx<Loopback>>,
    scscf: Scscf<DiameterCx<Loopback>, MemoryStore>,
    salt: u64,
    cseq: u32,
}

fn core(users: u32) -> Core {
    let mut hss = Hss::new(Some("sip:127.0.0.1:5064".into()));
    for i in 1..=users {
        let id = impi(i);
        hss.add_subscriber(Subscriber {
            subscription: ImsSubscription {
                service_profiles: vec![ServiceProfile {
                    public_identities: vec![PublicIdentity::new(format!("sip:{id}"))],
                    ..ServiceProfile::default()
                }],
                private_id: id,
            },
            credentials: Credentials {
                aka: Some(AkaCredentials::new(K, OperatorKey::Op(OP), *b"AM", 0)),
                password: None,
            },
        });
    }
    let mut n = 0u64;
    let local = LocalHss::new(Arc::new(Mutex::new(hss)), "ims.example.org", move || {
        n += 1;
        let mut r = [0x5a; 16];
        r[..8].copy_from_slice(&n.to_be_bytes());
        r
    });
    let server = HssCxServer::new("hss.ims.example.org", "ims.example.org", local);
    let cx = |host: &str| {
        DiameterCx::new(
            Loopback(server.clone()),
            host,
            "ims.example.org",
            "ims.example.org",
        )
    };
    Core {
        icscf: Icscf::new(
            IcscfConfig {
                scscfs: vec!["sip:127.0.0.1:5064".into()],
            },
            cx("icscf.ims.example.org"),
            EnumTable::default(),
        ),
        scscf: Scscf::new(
            ScscfConfig {
                server_name: "sip:127.0.0.1:5064".into(),
                realm: "ims.example.org".into(),
                service_route: "sip:orig@127.0.0.1:5065;lr".into(),
                registrar: RegistrarConfig::default(),
                nonce_secret: b"0123456789abcdef0123456789abcdef".to_vec(),
            },
            cx("scscf.ims.example.org"),
            MemoryStore::new(),
        ),
        salt: 0,
        cseq: 0,
    }
}

fn register(id: &str, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth.map_or_else(
        || format!("Authorization: Digest username=\"{id}\",realm=\"ims.example.org\",nonce=\"\",uri=\"sip:ims.example.org\",response=\"\",algorithm=AKAv1-MD5\r\n"),
        |a| format!("Authorization: {a}\r\n"),
    );
    let user = id.split('@').next().unwrap_or(id);
    format!(
        "REGISTER sip:ims.example.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-i{cseq}\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-p{cseq}\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-u{cseq};rport=5090\r\n\
Max-Forwards: 68\r\nFrom: <sip:{id}>;tag=f{cseq}\r\nTo: <sip:{id}>\r\n\
Call-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\n\
Contact: <sip:{user}@127.0.0.1:5090>;expires=3600\r\nSupported: path\r\n\
Path: <sip:term@127.0.0.1:5060;lr>\r\nP-Visited-Network-ID: ims.example.org\r\n\
P-Charging-Vector: icid-value=0123456789abcdef\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

const REQ: Request<'static> = Request {
    method: "REGISTER",
    uri: "sip:ims.example.org",
    body: b"",
    cnonce: "",
    nc: 0,
};

fn www_authenticate(resp: &[u8]) -> String {
    ims::sip::parse_datagram(resp)
        .expect("the 401 parses")
        .header_str("WWW-Authenticate")
        .expect("a 401 has WWW-Authenticate")
        .to_string()
}

impl Core {
    fn salt(&mut self) -> [u8; 16] {
        self.salt += 1;
        let mut s = [0; 16];
        s[..8].copy_from_slice(&self.salt.to_be_bytes());
        s
    }

    /// I-CSCF then S-CSCF for one REGISTER; returns the S-CSCF's status and response.
    fn hop(&mut self, req: &[u8]) -> (u16, Vec<u8>) {
        let m = ims::sip::parse_datagram(req).expect("the REGISTER parses");
        match block_on(self.icscf.route(&m)) {
            Decision::Forward(_) => {}
            Decision::Reply(s) | Decision::ReplyWith(s, _) => return (s, Vec::new()),
            Decision::Discard => return (0, Vec::new()),
        }
        let salt = self.salt();
        let o = block_on(self.scscf.register(&m, NOW, salt));
        (o.status, o.response.bytes().to_vec())
    }

    /// A full IMS-AKA registration of `id`: REGISTER → 401 → REGISTER with RES → 200.
    fn full_registration(&mut self, id: &str, usim: &mut Usim) {
        // a re-registration keeps the Call-ID, so its CSeq must grow (RFC 3261 §10.3)
        self.cseq += 2;
        let (s, resp) = self.hop(&register(id, self.cseq - 1, None));
        assert_eq!(s, 401, "{}", String::from_utf8_lossy(&resp));
        let www = www_authenticate(&resp);
        let ch = Challenge::parse(&www).expect("the challenge parses");
        let (creds, _) = digest::answer_aka(&ch, usim, id, &REQ).expect("the USIM answers");
        let (s, resp) = self.hop(&register(id, self.cseq, Some(&creds.to_string())));
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&resp));
    }
}

fn usim() -> Usim {
    Usim::new(
        Milenage::new(&K, OperatorKey::Op(OP)),
        aka::DEFAULT_IND_BITS,
    )
}

fn bench(c: &mut Criterion) {
    let users = 1000;
    let mut core = core(users);
    let ids: Vec<String> = (1..=users).map(impi).collect();
    let mut usims: Vec<Usim> = (1..=users).map(|_| usim()).collect();
    let mut g = c.benchmark_group("cscf_register");
    let mut i = 0usize;
    g.bench_function("full_aka", |b| {
        b.iter(|| {
            let n = i % ids.len();
            i += 1;
            core.full_registration(&ids[n], &mut usims[n]);
        })
    });
    // the UE's part of the above, to subtract: Milenage f1..f5 on the challenge, AKAv1-MD5
    let (_, resp) = core.hop(&register(&ids[0], 1, None));
    let www = www_authenticate(&resp);
    let ch = Challenge::parse(&www).expect("the challenge parses");
    g.bench_function("ue_answer_aka", |b| {
        b.iter(|| {
            // a fresh USIM each time: the same RAND/AUTN twice would be a replay
            let mut u = usim();
            black_box(digest::answer_aka(&ch, &mut u, &ids[0], &REQ).is_ok())
        })
    });
    g.finish();
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Registers `users` subscribers and prints the RSS growth per registered user.
fn rss(users: u32) {
    let before_provisioning = rss_kib();
    let mut core = core(users);
    let provisioned = rss_kib();
    #[allow(clippy::disallowed_methods)] // a bench measures wall time
    let t = std::time::Instant::now();
    for i in 1..=users {
        let id = impi(i);
        core.full_registration(&id, &mut usim());
    }
    let elapsed = t.elapsed();
    let registered = rss_kib();
    assert_eq!(core.scscf.registrations(), users as usize);
    // the S-CSCF's other per-user state in a running core: the reg event subscription of the
    // UE's P-CSCF (TS 24.229 §5.2.3), one dialog per registered user
    let mut notifier = Notifier::new("sip:orig@127.0.0.1:5065");
    for i in 1..=users {
        let id = impi(i);
        let record = block_on(core.scscf.store().load_shared(&format!("sip:{id}")))
            .expect("the store answers")
            .expect("registered above");
        let sub = reg_subscribe(&id, i);
        let m = ims::sip::parse_datagram(&sub).expect("the SUBSCRIBE parses");
        let o = notifier.subscribe(&m, Some(&record), NOW, &format!("n{i:x}"));
        assert_eq!(o.status, 200);
    }
    assert_eq!(notifier.len(), users as usize);
    let subscribed = rss_kib();
    println!(
        "cscf_register rss: {users} subscribers provisioned: +{} KiB ({:.3} KiB each); \
         {users} registered: +{} KiB = {:.3} KiB per registered user; \
         {:.0} full registrations/s in one thread (I-CSCF UAR + S-CSCF MAR/SAR, UE included)",
        provisioned - before_provisioning,
        (provisioned - before_provisioning) as f64 / f64::from(users),
        registered - provisioned,
        (registered - provisioned) as f64 / f64::from(users),
        f64::from(users) / elapsed.as_secs_f64()
    );
    println!(
        "cscf_register rss: {users} reg event subscriptions (P-CSCF's, one per user): +{} KiB = \
         {:.3} KiB per registered user; S-CSCF + HSS state with them: {:.3} KiB per registered user",
        subscribed - registered,
        (subscribed - registered) as f64 / f64::from(users),
        (subscribed - provisioned) as f64 / f64::from(users),
    );
}

/// The SUBSCRIBE to reg a P-CSCF sends after a 200 REGISTER (as `Pcscf::reg_subscriptions_due`
/// writes it), as it reaches the S-CSCF.
fn reg_subscribe(id: &str, n: u32) -> Vec<u8> {
    format!(
        "SUBSCRIBE sip:{id} SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-s{n}\r\n\
Max-Forwards: 69\r\nFrom: <sip:term@127.0.0.1:5060>;tag=s{n}\r\nTo: <sip:{id}>\r\n\
Call-ID: sub-{n}@127.0.0.1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:reg@127.0.0.1:5060>\r\n\
P-Asserted-Identity: <sip:term@127.0.0.1:5060>\r\nEvent: reg\r\nExpires: 600000\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

criterion_group!(benches, bench);

fn main() {
    if let Some(n) = std::env::var("CSCF_RSS_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rss(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
