//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and crash regressions
//! (`fuzz/regressions/<target>/`) through the same `ims::fuzzing` oracles the cargo-fuzz targets
//! run, on stable Rust and without libFuzzer.
//!
//! Every file is run, and the test fails listing each file whose replay panicked. Each target must
//! find at least a minimum number of files, so an emptied or moved corpus cannot pass silently.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Files in `dir` (not recursive), sorted; none when the directory is absent.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(target: &str, min_corpus: usize, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files(&root.join("corpus").join(target));
    let regressions = files(&root.join("regressions").join(target));
    assert!(
        corpus.len() >= min_corpus,
        "fuzz/corpus/{target}: expected at least {min_corpus} files, found {}",
        corpus.len()
    );
    let mut failed = Vec::new();
    for p in corpus.iter().chain(&regressions) {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| f(&data))) {
            let msg = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            failed.push(format!("{}: {msg}", p.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs broke an oracle:\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
    eprintln!(
        "{target}: replayed {} corpus and {} regression inputs",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn sip_message_corpus() {
    // seeded: 75 files of tests/vectors/sip-torture (with INDEX.md), 6 bench and 3 IMS messages
    replay("sip_message", 80, ims::fuzzing::sip_message);
}

#[test]
fn sip_builder_corpus() {
    replay("sip_builder", 40, ims::fuzzing::sip_builder);
}

#[test]
fn sip_uri_corpus() {
    replay("sip_uri", 40, ims::fuzzing::sip_uri);
}

#[test]
fn sip_framer_corpus() {
    replay("sip_framer", 80, ims::fuzzing::sip_framer);
}

#[test]
fn digest_header_corpus() {
    // 21 seeds from tests/vectors/auth (RFC 2617/7616 examples, IMS, AKA, SIPp-style values)
    // and 115 files of a set-cover merge after 1.1 M cargo-fuzz executions
    replay(
        "digest_header",
        100,
        ims::fuzzing::digest_header::digest_header,
    );
}

#[test]
fn sms_rp_corpus() {
    // seeded from tests/vectors/sms (19 valid and 7 invalid RP messages) and built messages
    replay("sms_rp", 26, ims::fuzzing::sms::sms_rp);
}

#[test]
fn sms_tpdu_corpus() {
    // the TPDUs of tests/vectors/sms, each prefixed with its direction/carrier selector
    replay("sms_tpdu", 20, ims::fuzzing::sms::sms_tpdu);
}

#[test]
fn sdp_corpus() {
    // seeded: the descriptions of tests/vectors/sdp and the SDP bodies of the SIP vectors
    replay("sdp", 60, ims::fuzzing::sdp::session);
}

#[test]
fn msrp_framer_corpus() {
    // seeded: every tests/vectors/msrp/*.msrp behind four selector bytes (chunk size, threshold)
    replay("msrp_framer", 100, ims::fuzzing::msrp::msrp_framer);
}

#[test]
fn msrp_uri_corpus() {
    // seeded: the path, Byte-Range, Status, Content-Type and auth values of the MSRP vectors
    replay("msrp_uri", 20, ims::fuzzing::msrp::msrp_uri);
}

#[test]
fn diameter_message_corpus() {
    // seeded: the 41 vectors of tests/vectors/diameter (valid and invalid) and 6 SGd messages
    // (OFR/OFA/TFR/TFA)
    replay(
        "diameter_message",
        40,
        ims::fuzzing::diameter::diameter_message,
    );
}

#[test]
fn diameter_framer_corpus() {
    // seeded: 10 vectors alone and each followed by a DWA and a SAR
    replay(
        "diameter_framer",
        20,
        ims::fuzzing::diameter::diameter_framer,
    );
}

#[test]
fn diameter_cx_corpus() {
    // seeded: the 41 vectors of tests/vectors/diameter and the 6 SGd messages
    replay("diameter_cx", 40, ims::fuzzing::diameter::diameter_cx);
}

#[test]
fn txn_corpus() {
    // scripted exchanges: INVITE/ACK/CANCEL/BYE/PRACK/UPDATE, retransmissions, merged requests,
    // stray responses, RFC 2543 peers, proxy Route processing; plus the set-cover merge of a
    // 300 s libFuzzer run (191,296 executions, no finding)
    replay("txn", 400, ims::fuzzing::txn::txn);
}

#[test]
fn diameter_peer_corpus() {
    // seeded: scripts that open the peer both ways and exchange requests, watchdogs and DPR
    replay(
        "diameter_peer",
        8,
        ims::fuzzing::diameter_peer::diameter_peer,
    );
}

#[test]
fn msrp_session_corpus() {
    // scripts driving a sender (whole chunks or piece by piece, interrupts, aborts, its own
    // end-line pushed into the body) and a receiver: set-cover merge of 40 generated scripts and
    // three 300 s libFuzzer runs (2,419 executions, no finding)
    replay("msrp_session", 20, ims::fuzzing::msrp::msrp_session);
}

#[test]
fn msrp_session_rx_corpus() {
    // seeded: every tests/vectors/msrp/*.msrp behind selector bytes (split size, limits); set-cover
    // merge after a 300 s libFuzzer run (38,233 executions, no finding)
    replay("msrp_session_rx", 20, ims::fuzzing::msrp::msrp_session_rx);
}

#[test]
fn nf_xml_corpus() {
    // seeded: the Cx User-Data and RFC 3680 reginfo examples of the ims-nf unit tests, an iFC
    // with every trigger-point kind, a terminated contact, a nesting past the depth limit,
    // CDATA/comment/character references
    replay("nf_xml", 8, ims::fuzzing::nf::nf_xml);
    // the round-trip oracles only bite on documents that parse: the seeds must reach them
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/nf_xml");
    let docs: Vec<Vec<u8>> = files(&dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let profiles = docs
        .iter()
        .filter(|d| ims::nf::subscription::ImsSubscription::from_xml(d).is_ok())
        .count();
    let reginfos = docs
        .iter()
        .filter(|d| ims::nf::reginfo::RegInfo::parse(d).is_ok())
        .count();
    assert!(profiles >= 3, "{profiles} IMSSubscription seeds parse");
    assert!(reginfos >= 2, "{reginfos} reginfo seeds parse");
}

#[test]
fn nf_values_corpus() {
    // seeded: a stored registration record (the store.rs unit test's), the Security-Client,
    // -Server and -Verify values of tests/vectors/sip-bench and the SIPp sec-agree scenario, a
    // mechanism list, an AKA challenge with ck/ik, an Authorization with integrity-protected
    replay("nf_values", 8, ims::fuzzing::nf::nf_values);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/nf_values");
    let values: Vec<Vec<u8>> = files(&dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(
        values
            .iter()
            .any(|v| ims::nf::store::RegistrationRecord::decode(v).is_ok()),
        "no stored-record seed decodes"
    );
    let mechanisms = values
        .iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter(|t| ims::nf::sec_agree::parse_list(t.split(',')).is_ok_and(|l| !l.is_empty()))
        .count();
    assert!(mechanisms >= 3, "{mechanisms} mechanism seeds parse");
}
