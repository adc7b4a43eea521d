//! SMS over IP codec costs (ims-sms): decode + text of a 3-part concatenated GSM 7 bit message
//! (the `rp_data_mo_submit_concat_part*` vectors) and of a UCS2 one, and encode/split of a
//! 1000-character text into SMS-SUBMITs inside RP-DATA.
//!
//! `cargo bench --bench sms -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented pub fn
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ims::sms::{
    self, Address, DataCodingScheme, Direction, ProtocolIdentifier, SplitOptions, Submit, Tpdu,
};

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vector(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/vectors/sms/{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    unhex(&std::fs::read_to_string(p).unwrap())
}

/// Decodes every RP message and joins the texts of its parts.
fn decode_text(parts: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for p in parts {
        let m = sms::decode(p, Direction::MsToNetwork).unwrap();
        n += m.tpdu.unwrap().text().unwrap().len();
    }
    n
}

/// Splits `text` and encodes each part as an SMS-SUBMIT in an RP-DATA.
fn encode_split(text: &str) -> usize {
    let split = sms::split(
        text,
        &SplitOptions {
            reference: 9,
            ..SplitOptions::default()
        },
    )
    .unwrap();
    let sc = Address::international("447700900000");
    let mut total = 0;
    for (i, ud) in split.parts.into_iter().enumerate() {
        let t = Tpdu::Submit(Submit {
            reject_duplicates: false,
            reply_path: false,
            status_report_request: false,
            message_reference: i as u8,
            destination: Address::international("447700900456"),
            pid: ProtocolIdentifier::DEFAULT,
            dcs: split.dcs,
            validity_period: None,
            user_data: ud,
        });
        total += sms::encode_rp(i as u8, &sc, &t, None).unwrap().len();
    }
    total
}

fn bench(c: &mut Criterion) {
    let gsm: Vec<Vec<u8>> = (1..=3)
        .map(|i| vector(&format!("rp_data_mo_submit_concat_part{i}of3")))
        .collect();
    // a 3-part UCS2 message made by our own encoder
    let ucs2_text = "Привет, мир! Καλημέρα κόσμε! 你好，世界！ ".repeat(5);
    let split = sms::split(&ucs2_text, &SplitOptions::default()).unwrap();
    assert_eq!(split.dcs, DataCodingScheme::UCS2);
    let sc = Address::international("447700900000");
    let ucs2: Vec<Vec<u8>> = split
        .parts
        .iter()
        .enumerate()
        .map(|(i, ud)| {
            let t = Tpdu::Submit(Submit {
                reject_duplicates: false,
                reply_path: false,
                status_report_request: false,
                message_reference: i as u8,
                destination: Address::international("447700900456"),
                pid: ProtocolIdentifier::DEFAULT,
                dcs: split.dcs,
                validity_period: None,
                user_data: ud.clone(),
            });
            sms::encode_rp(i as u8, &sc, &t, None).unwrap()
        })
        .collect();
    let long_gsm: String = "The quick brown fox jumps over the lazy dog; 0123456789! "
        .chars()
        .cycle()
        .take(1000)
        .collect();
    let long_ucs2: String = "Ünïcödé 😀 текст ".chars().cycle().take(1000).collect();

    let mut g = c.benchmark_group("sms");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("decode+text gsm7 {} parts", gsm.len()), |b| {
        b.iter(|| decode_text(black_box(&gsm)))
    });
    g.bench_function(format!("decode+text ucs2 {} parts", ucs2.len()), |b| {
        b.iter(|| decode_text(black_box(&ucs2)))
    });
    g.bench_function("split+encode 1000 chars gsm7", |b| {
        b.iter(|| encode_split(black_box(&long_gsm)))
    });
    g.bench_function("split+encode 1000 chars ucs2", |b| {
        b.iter(|| encode_split(black_box(&long_ucs2)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
