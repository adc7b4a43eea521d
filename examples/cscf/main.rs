//! `cscf`: an all-in-one IMS core on 127.0.0.1 — P-, I- and S-CSCF, an embedded HSS and PCRF
//! speaking real Diameter (Cx, Rx) over loopback, an ENUM table, and the demo subscribers of
//! `examples/cscf/ims.toml`.
//!
//! ```text
//! cargo run --release --example cscf                      # everything, embedded HSS and PCRF
//! cargo run --release --example cscf -- --role s --hss hss.example.net@192.0.2.10:3868
//! cargo run --release --example cscf -- --config my.toml --role p --pcrf pcrf.example.net@192.0.2.11:3868
//! ```
//!
//! Options: `--config FILE` (default `examples/cscf/ims.toml`), `--role p|i|s|im|all` (repeatable,
//! default `all`), `--hss HOST@IP:PORT` and `--pcrf HOST@IP:PORT` (external Diameter peers instead
//! of the embedded ones), `--admin IP:PORT` (the embedded HSS's HTTP/JSON admin interface, see
//! `ims::nf::admin`; overrides `[hss] admin`), `--redis HOST:PORT` (keep the S-CSCF's
//! registrations in Redis, shared by several S-CSCF processes; needs `--features redis`), `--threads N`
//! (the tokio runtime: 1 = everything on one thread; N > 1 = a multi-threaded runtime with N
//! workers; `split` = two single-threaded runtimes, one for the P-CSCF and its Rx client, one
//! for the I/S-CSCF, the HSS, the PCRF and the rest; `IMS_THREADS` sets the same; default: one
//! worker per core), `--msrp-relay URI` with `--msrp-relay-auth USER:PASSWORD` (the IM server's
//! own MSRP relay, RFC 4976: the session anchor authenticates to it at start and reaches every
//! party through it, and so do the IM server's large-mode deliveries; an `msrp://` URI, its host
//! an IP literal or a name), `--check` (load the configuration, print a summary and exit).
//!
//! The roles pass every message through several tasks (the SIP transports, each role's loop,
//! the Diameter peers, the embedded HSS and PCRF). With two or more workers many of those
//! hand-offs wake a parked worker thread (a futex or eventfd write and a context switch each):
//! `--threads 1` saves that CPU (≈10-20 % per call measured on a 2-core machine) but gives the
//! core a single core; it suits a machine shared with other work, not one dedicated to the core.
//! `--threads split` keeps the single-thread hand-offs inside each of two role groups and gives
//! the core two threads: only the P-CSCF's SIP hops to the I/S-CSCF and its Rx connection to the
//! PCRF cross between them.

mod config;

use ims::nf::im_session::AnchorRelay;
use ims::nf::runtime::{CoreStore, ImsCore, Peer, Roles};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: the core allocates short-lived buffers on two
/// worker threads, where glibc's malloc cost ≈11 % of the instructions per call and more in time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cscf [--config FILE] [--role p|i|s|im|all]... [--hss HOST@IP:PORT] [--pcrf HOST@IP:PORT] [--admin IP:PORT] [--redis HOST:PORT] [--threads N|split] [--msrp-relay URI --msrp-relay-auth USER:PASSWORD] [--check]"
    );
    ExitCode::from(2)
}

/// `--threads` / `IMS_THREADS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threads {
    /// One runtime: 1 = current-thread, more = that many workers.
    Workers(usize),
    /// Two current-thread runtimes: the P-CSCF's and the rest's.
    Split,
}

impl Threads {
    fn parse(v: &str) -> Option<Threads> {
        match v {
            "split" => Some(Threads::Split),
            n => n.parse().ok().filter(|n| *n > 0).map(Threads::Workers),
        }
    }
}

/// The P-CSCF's runtime thread: stopped and joined when dropped (after the core shut down).
struct PcscfThread(
    Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
);

impl Drop for PcscfThread {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.0.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// `--msrp-relay URI` and `--msrp-relay-auth USER:PASSWORD`: the IM server's MSRP relay
/// (`msrp://HOST:PORT;tcp`; `msrps:` needs a TLS trust the library takes, not this example).
fn msrp_relay(uri: Option<String>, auth: Option<String>) -> Result<Option<AnchorRelay>, String> {
    let (uri, auth) = match (uri, auth) {
        (None, None) => return Ok(None),
        (Some(u), Some(a)) => (u, a),
        (Some(_), None) => return Err("--msrp-relay needs --msrp-relay-auth".into()),
        (None, Some(_)) => return Err("--msrp-relay-auth without --msrp-relay".into()),
    };
    let u = ims::msrp::Uri::parse(&uri).map_err(|e| format!("--msrp-relay {uri}: {e}"))?;
    if u.is_secure() {
        return Err(format!(
            "--msrp-relay {uri}: msrps relays need a TLS trust (library only)"
        ));
    }
    let (user, password) = auth
        .split_once(':')
        .ok_or("--msrp-relay-auth: USER:PASSWORD")?;
    // (the default fills the TLS trust when the `tls` feature adds that field)
    #[allow(clippy::needless_update)]
    let relay = AnchorRelay {
        uri,
        user: user.to_string(),
        password: password.to_string(),
        ..AnchorRelay::default()
    };
    Ok(Some(relay))
}

fn external(v: &str) -> Option<Peer> {
    let (host, addr) = v.split_once('@')?;
    Some(Peer::External {
        host: host.to_string(),
        addr: addr.parse().ok()?,
    })
}

fn main() -> ExitCode {
    let mut config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/cscf/ims.toml");
    let mut roles: Option<Roles> = None;
    let (mut hss, mut pcrf, mut check) = (None, None, false);
    let mut admin: Option<std::net::SocketAddr> = None;
    let mut redis: Option<String> = None;
    let mut threads: Option<Threads> = None;
    let (mut relay_uri, mut relay_auth): (Option<String>, Option<String>) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => match args.next() {
                Some(v) => config = v.into(),
                None => return usage(),
            },
            "--role" => {
                let r = roles.get_or_insert(Roles {
                    p: false,
                    i: false,
                    s: false,
                    im: false,
                });
                match args.next().as_deref() {
                    Some("p") => r.p = true,
                    Some("i") => r.i = true,
                    Some("s") => r.s = true,
                    Some("im") => r.im = true,
                    Some("all") => *r = Roles::ALL,
                    _ => return usage(),
                }
            }
            "--hss" => match args.next().as_deref().and_then(external) {
                Some(p) => hss = Some(p),
                None => return usage(),
            },
            "--pcrf" => match args.next().as_deref().and_then(external) {
                Some(p) => pcrf = Some(p),
                None => return usage(),
            },
            "--admin" => match args.next().and_then(|v| v.parse().ok()) {
                Some(a) => admin = Some(a),
                None => return usage(),
            },
            "--redis" => match args.next() {
                Some(v) => redis = Some(v),
                None => return usage(),
            },
            "--threads" => match args.next().as_deref().and_then(Threads::parse) {
                Some(t) => threads = Some(t),
                None => return usage(),
            },
            "--msrp-relay" => match args.next() {
                Some(v) => relay_uri = Some(v),
                None => return usage(),
            },
            "--msrp-relay-auth" => match args.next() {
                Some(v) => relay_auth = Some(v),
                None => return usage(),
            },
            "--check" => check = true,
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let file = match config::File::load(&config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cscf: {e}");
            return ExitCode::FAILURE;
        }
    };
    let relay = match msrp_relay(relay_uri, relay_auth) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cscf: {e}");
            return usage();
        }
    };
    let mut options = file.core_options();
    if let Some(r) = relay.clone() {
        options = options.with_im_msrp_relay(r);
    }
    let mut cfg = match file.core_config(roles.unwrap_or(Roles::ALL)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cscf: {}: {e}", config.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(h) = hss {
        cfg.hss = h;
    }
    if let Some(p) = pcrf {
        cfg.pcrf = p;
    }
    if admin.is_some() {
        cfg.admin = admin;
    }
    println!(
        "cscf: domain {} on {}; P-CSCF :{}, I-CSCF :{}, S-CSCF :{}/:{}; HSS {:?}; PCRF {:?}; {} subscribers",
        cfg.domain,
        cfg.ip,
        cfg.ports.pcscf,
        cfg.ports.icscf,
        cfg.ports.scscf_term,
        cfg.ports.scscf_orig,
        cfg.hss,
        cfg.pcrf,
        cfg.subscribers.len()
    );
    if check {
        let o = file.core_options();
        println!(
            "cscf: sec-agree {}; the S-CSCF challenges REGISTERs over the SAs: {}",
            o.sec_agree.as_ref().map_or("off".to_string(), |s| format!(
                "port-c {} port-s {}",
                s.port_c, s.port_s
            )),
            o.reauthenticate_protected
        );
        println!(
            "cscf: IM server MSRP relay: {}",
            relay
                .as_ref()
                .map_or("none".to_string(), |r| format!("{} as {}", r.uri, r.user))
        );
        return ExitCode::SUCCESS;
    }
    // the parsed configuration (every subscriber's TOML table) is not needed any more: the core
    // gets `cfg`; without this it stayed until main returned (≈0.65 KB per subscriber)
    drop(file);
    let threads = match threads {
        Some(t) => Some(t),
        None => match std::env::var("IMS_THREADS") {
            Ok(v) => match Threads::parse(&v) {
                Some(t) => Some(t),
                None => return usage(),
            },
            Err(_) => None,
        },
    };
    let current = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match threads {
        Some(Threads::Workers(1) | Threads::Split) => current(),
        Some(Threads::Workers(n)) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cscf: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    // --threads split: the P-CSCF's runtime on a thread of its own, run until main returns
    let _pcscf_thread = if threads == Some(Threads::Split) {
        let prt = match current() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("cscf: tokio: {e}");
                return ExitCode::FAILURE;
            }
        };
        options = options.with_pcscf_runtime(prt.handle().clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cscf-pcscf".into())
            .spawn(move || {
                prt.block_on(async {
                    let _ = stopped.await;
                })
            });
        match thread {
            Ok(t) => Some(PcscfThread(Some((stop, t)))),
            Err(e) => {
                eprintln!("cscf: thread: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    rt.block_on(async {
        let store = match redis {
            None => CoreStore::Memory(Default::default()),
            #[cfg(feature = "redis")]
            Some(addr) => match ims::nf::redis::RedisStore::connect(&addr, "ims:reg:").await {
                Ok(r) => CoreStore::Redis(std::sync::Arc::new(r)),
                Err(e) => {
                    eprintln!("cscf: redis {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            },
            #[cfg(not(feature = "redis"))]
            Some(_) => {
                eprintln!(
                    "cscf: --redis needs the `redis` feature (cargo run --features redis ...)"
                );
                return ExitCode::FAILURE;
            }
        };
        let core = match ImsCore::start_with_options(cfg, store, options).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cscf: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(a) = core.admin_addr() {
            println!("cscf: HSS admin on http://{a}");
        }
        println!("cscf: running; Ctrl-C stops");
        let _ = tokio::signal::ctrl_c().await;
        core.shutdown();
        ExitCode::SUCCESS
    })
}
