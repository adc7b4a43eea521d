//! The all-in-one core with `CoreOptions::in_process` (what `examples/sipp/load_register.sh`
//! measures): the P-, I- and S-CSCF roles hand SIP datagrams to each other in memory. A SIPp UE
//! registers with IMS-AKA and de-registers (`examples/sipp/ims_register_aka.xml`) exactly as
//! over the sockets, and the counters show that the hops between the roles went in memory while
//! the UE's own traffic stayed on the socket.

mod common;
mod ims_core;

use ims::nf::runtime::CoreOptions;
use ims_core::{scenario, sipp_ue, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_located_roles_register_a_ue_in_memory() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let dir = common::TempDir::new("cscf", "in-process", "IMS_KEEP_SIPP");
    let cfg = ims_core::all_in_one(5700, [5760, 5761], None);
    let (pcscf, icscf) = (cfg.ports.pcscf, cfg.ports.icscf);
    let core = ims_core::start_with(cfg, CoreOptions::default().with_in_process(true)).await;
    let (ok, out) = sipp_ue(
        &bin,
        dir.path(),
        1,
        "127.0.0.1:5700",
        scenario("ims_register_aka.xml").to_str().unwrap(),
        "5790",
        &[],
    )
    .await;
    assert!(ok, "SIPp registration + de-registration failed:\n{out}");
    wait_for("the de-registration", || {
        core.scscf_state().map(|s| s.0) == Some(0)
    })
    .await;
    let stats = core.sip_transport_stats();
    let at = |port: u16| {
        stats
            .iter()
            .find(|(a, _)| a.port() == port)
            .map(|(_, s)| *s)
            .expect("a proxy on that port")
    };
    // the REGISTERs (the challenged one, the answer, the de-registration) went from the P-CSCF
    // to the I-CSCF, from there to the S-CSCF, and their responses came back, all in memory
    let (p, i) = (at(pcscf), at(icscf));
    assert!(p.in_process_sent >= 3, "P-CSCF: {p:?}");
    assert!(p.in_process_received >= 3, "P-CSCF: {p:?}");
    assert!(i.in_process_received >= 6, "I-CSCF, both ways: {i:?}");
    assert!(i.in_process_sent >= 6, "I-CSCF, both ways: {i:?}");
    core.shutdown();
}
