//! `CoreOptions::pcscf_runtime` (what `examples/cscf --threads split` sets): the P-CSCF with its
//! Rx client runs on a current-thread runtime of its own, on another thread, and the I/S-CSCF,
//! the embedded HSS and PCRF on the caller's current-thread runtime. The P-CSCF's tasks are on
//! its runtime, and a UE registers (IMS-AKA) and calls another through the split core, Rx
//! included: the roles' SIP hops (in memory, `CoreOptions::in_process`) and the Rx connection
//! cross between the two threads.

mod common;
mod ims_core;

use ims::nf::runtime::CoreOptions;
use ims_core::{scenario, sipp, sipp_ue, wait_for};
use std::time::Duration;

#[test]
fn a_call_through_a_core_split_in_two_runtimes() {
    let Some(bin) = common::interop_tool("sipp", "apt-get install sip-tester") else {
        return;
    };
    let current = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    // the P-CSCF's runtime, run on a thread of its own until the test ends
    let prt = current();
    let pcscf_rt = prt.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        prt.block_on(async {
            let _ = stopped.await;
        })
    });
    current().block_on(async {
        let dir = common::TempDir::new("cscf", "split", "IMS_KEEP_SIPP");
        let cfg = ims_core::all_in_one(6400, [6440, 6441], None);
        assert_eq!(pcscf_rt.metrics().num_alive_tasks(), 0);
        let options = CoreOptions::default()
            .with_in_process(true)
            .with_pcscf_runtime(pcscf_rt.clone());
        let core = ims_core::start_with(cfg, options).await;
        // the P-CSCF's proxy transport and loop, its UAC, its reg-event SUBSCRIBE loop and its
        // Rx peer connection run there
        let on_pcscf_rt = pcscf_rt.metrics().num_alive_tasks();
        assert!(
            on_pcscf_rt >= 4,
            "{on_pcscf_rt} tasks on the P-CSCF's runtime"
        );
        // the most Rx sessions the PCRF held at once during the call
        let pcrf = core.pcrf().expect("the embedded PCRF").clone();
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let watch = {
            let (pcrf, most) = (pcrf.clone(), most.clone());
            tokio::spawn(async move {
                loop {
                    let n = pcrf.lock().expect("PCRF lock").len();
                    most.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        };
        let pcscf = "127.0.0.1:6400";
        let (ok, out) = sipp_ue(
            &bin,
            dir.path(),
            2,
            pcscf,
            scenario("ims_register.xml").to_str().unwrap(),
            "6492",
            &[],
        )
        .await;
        assert!(ok, "callee registration failed:\n{out}");
        let uas_bin = bin.clone();
        let uas_dir = dir.path().to_path_buf();
        let uas = tokio::spawn(async move {
            sipp(
                &uas_bin,
                &uas_dir,
                &[
                    "-sf",
                    scenario("ims_call_uas.xml").to_str().unwrap(),
                    "-i",
                    "127.0.0.1",
                    "-p",
                    "6492",
                    "-m",
                    "1",
                ],
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (ok, out) = sipp_ue(
            &bin,
            dir.path(),
            1,
            pcscf,
            scenario("ims_call_uac.xml").to_str().unwrap(),
            "6491",
            &["-key", "callee", "tel:+15550002"],
        )
        .await;
        assert!(ok, "caller failed:\n{out}");
        let (ok, out) = uas.await.expect("uas task");
        assert!(ok, "callee failed:\n{out}");
        // both sides' Rx sessions were opened (AAR) and ended (STR) across the threads
        wait_for("the STRs", || pcrf.lock().expect("PCRF lock").is_empty()).await;
        watch.abort();
        assert_eq!(most.load(std::sync::atomic::Ordering::Relaxed), 2);
        core.shutdown();
    });
    let _ = stop.send(());
    thread.join().expect("the P-CSCF's thread");
}
