//! Diameter codec throughput: ims-diameter against the `diameter` crate (0.7, the Rust
//! incumbent), in the same run, on the same octets.
//!
//! Groups (ids `<group>/ims` and `<group>/diameter_crate`):
//! - `cer_decode` / `cer_encode`: the CER vector (tests/vectors/diameter/base_cer.bin);
//! - `aar_decode` / `aar_encode`: an Rx AAR with two media components (audio + video, each with
//!   RTP and RTCP sub-components, two Flow-Descriptions each, Codec-Data) as a P-CSCF sends it;
//! - `aaa_decode` / `aaa_encode`: its AAA.
//!
//! (The AAR and AAA are built by `ims::diameter::testing::{rx_aar, rx_aaa}`, which
//! `crates/ims-diameter/examples/perf.rs` uses too.)
//!
//! Decode = parse the octets and read the fields a node needs. Both sides decode EVERY AVP:
//! - ims: `Command::decode_message_into` (header checks, then the typed decoder walks the AVP
//!   chain once, checking each AVP's length, padding and flags as it reaches it — the same
//!   checks and errors as `Message::parse` + `Command::decode`) into a fresh `Default` value
//!   built and dropped in each iteration. The typed decode visits every AVP, opens and checks
//!   every Grouped AVP, decodes each value into its Rust type (text validated as UTF-8,
//!   Flow-Description included) and checks the command and group grammars (required, fixed
//!   position, max occurrences, unknown M-bit). Values borrow from the input; repeated AVPs fill
//!   `Repeated` fields inline up to the field's capacity (1–4), so nothing allocates.
//! - diameter crate: `DiameterMessage::decode_from` (header, every AVP looked up in its dictionary
//!   and decoded into an owned value, Grouped recursively; no grammar check; Flow-Description is an
//!   OctetString there, it has no IPFilterRule type) + `get_avp` lookups of the same fields.
//!
//! Encode = serialize a message already in memory into a reused `Vec<u8>`: ims from the typed
//! struct (`encode_into`: the `Writer` fills a zeroed window sized by the last message of the
//! command, so padding is already there; each AVP header is one store with the dictionary's
//! code, flags and Vendor-Id folded in, a Grouped AVP's header written after its members, one
//! bounds test per AVP); diameter crate from its decoded AVP tree (`encode_to`, lengths stored
//! in the tree).
//!
//! Build + encode (`aar_build_encode`, `aaa_build_encode`) = what a node does to answer or
//! send: produce the wire octets of the message from its values, in each iteration:
//! - ims: the typed struct built by `ims::diameter::testing::{rx_aar_with, rx_aaa_with}` from
//!   texts made outside the loop (`RxText`: Session-Id, Flow-Descriptions, …) and borrowed,
//!   `encode_into` a reused `Vec`, the struct dropped;
//! - diameter crate: `DiameterMessage::new` + `add_avp` of every AVP, each value made with the
//!   crate's constructors (`UTF8String::new`, `Grouped::new`, …) from values kept outside the
//!   loop (the same AVPs as its decode of our octets; its constructors copy the texts, its API
//!   has no borrowed values), `encode_to` a reused `Vec`, dropped.
//!
//! Both outputs are checked equal to the same octets before measuring.
//!
//! The diameter crate cannot decode Cx (its `ApplicationId` has no 16777216), so the Cx groups
//! `cx_maa_decode`, `cx_saa_decode`, `cx_maa_encode`, `cx_saa_encode` (SAA with 1.2 kB of
//! User-Data) run on our side alone, reported in elements (messages) and bytes per second.
//!
//! ```text
//! cargo bench --bench diameter -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Instruction counts (the machine is too noisy for wall-clock ratios): `icount <group>/<lib> N`
//! runs one group's work N times and nothing else (`icount none N`: the setup alone), so
//! (Ir(N=2000) − Ir(N=1000)) / 1000 is the count per message:
//!
//! ```text
//! cargo bench --bench diameter --no-run
//! B=$(ls -t target/release/deps/diameter-* | grep -v '\.d$' | head -1)
//! for n in 1000 2000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null $B icount aar_decode/ims $n 2>&1 | grep Collected
//! done
//! ```

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{black_box, criterion_group, Criterion, Throughput};
use diameter::dictionary::{self, Dictionary};
use diameter::DiameterMessage;
use ims::diameter::base::Cer;
use ims::diameter::cx::{Maa, Saa};
use ims::diameter::dict::{self, AvpType};
use ims::diameter::rx::{Aaa, Aar};
use ims::diameter::{testing, Command, Limits, Message};
use std::borrow::Cow;
use std::io::Cursor;
use std::sync::Arc;

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/vectors/diameter/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("vector")
}

/// The diameter crate needs every AVP in its dictionary: its default XML has base and credit
/// control; the Rx and TS 29.212 AVPs of these messages are added from ours.
fn incumbent_dict() -> Arc<Dictionary> {
    let mut xml = String::from("<diameter><application id=\"16777236\" name=\"Rx\">");
    for d in dict::ALL.iter() {
        let rx = d.vendor == dict::VENDOR_3GPP
            && ((500..=560).contains(&d.code) || d.code == 1027 || d.code == 1032);
        let framed_ip = d.vendor == 0 && d.code == 8;
        if !(rx || framed_ip) {
            continue;
        }
        let ty = match d.ty {
            AvpType::IPFilterRule => "OctetString",
            AvpType::DiameterIdentity => "DiameterIdentity",
            AvpType::DiameterURI => "DiameterURI",
            AvpType::UTF8String => "UTF8String",
            AvpType::OctetString => "OctetString",
            AvpType::Integer32 => "Integer32",
            AvpType::Integer64 => "Integer64",
            AvpType::Unsigned32 => "Unsigned32",
            AvpType::Unsigned64 => "Unsigned64",
            AvpType::Float32 => "Float32",
            AvpType::Float64 => "Float64",
            AvpType::Grouped => "Grouped",
            AvpType::Address => "Address",
            AvpType::Time => "Time",
            AvpType::Enumerated => "Enumerated",
        };
        let vendor = if d.vendor != 0 {
            format!(" vendor-id=\"{}\"", d.vendor)
        } else {
            String::new()
        };
        xml.push_str(&format!(
            "<avp name=\"{}\" code=\"{}\" must=\"M\"{vendor}><data type=\"{ty}\"/></avp>",
            d.name, d.code
        ));
    }
    xml.push_str("</application></diameter>");
    Arc::new(Dictionary::new(&[&dictionary::DEFAULT_DICT_XML, &xml]))
}

fn incumbent_decode(bytes: &[u8], d: &Arc<Dictionary>) -> DiameterMessage {
    let mut c = Cursor::new(bytes);
    DiameterMessage::decode_from(&mut c, Arc::clone(d)).expect("the diameter crate decodes it")
}

/// One AVP's value as the incumbent's builder takes it (kept outside the measured loop).
enum PlanValue {
    U32(u32),
    I32(i32),
    Enumerated(i32),
    Utf8(String),
    Identity(String),
    Octets(Vec<u8>),
    Address(diameter::avp::Address),
    Grouped(Vec<PlanAvp>),
}

/// One AVP to add with the incumbent's `add_avp` / `Avp::new`.
struct PlanAvp {
    code: u32,
    vendor: Option<u32>,
    flags: u8,
    value: PlanValue,
}

/// The values of the incumbent's decoded message, to build it again from them.
fn plan(avps: &[diameter::avp::Avp]) -> Vec<PlanAvp> {
    use diameter::avp::{flags, AvpValue as V};
    avps.iter()
        .map(|a| {
            let f = a.get_flags();
            let value = match a.get_value() {
                V::Unsigned32(v) => PlanValue::U32(v.value()),
                V::Integer32(v) => PlanValue::I32(v.value()),
                V::Enumerated(v) => PlanValue::Enumerated(v.value()),
                V::UTF8String(v) => PlanValue::Utf8(v.value().to_owned()),
                V::Identity(v) => PlanValue::Identity(v.value().to_owned()),
                V::OctetString(v) => PlanValue::Octets(v.value().to_vec()),
                V::Address(v) => PlanValue::Address(v.clone()),
                V::Grouped(g) => PlanValue::Grouped(plan(g.avps())),
                other => panic!("no plan for {}", other.get_type_name()),
            };
            PlanAvp {
                code: a.get_code(),
                vendor: a.get_vendor_id(),
                flags: if f.mandatory { flags::M } else { 0 }
                    | if f.private { flags::P } else { 0 },
                value,
            }
        })
        .collect()
}

/// An incumbent AVP value made with the crate's constructors.
fn build_value(v: &PlanValue, d: &Arc<Dictionary>) -> diameter::avp::AvpValue {
    use diameter::avp::{self as a, AvpValue as V};
    match v {
        PlanValue::U32(x) => V::Unsigned32(a::Unsigned32::new(*x)),
        PlanValue::I32(x) => V::Integer32(a::Integer32::new(*x)),
        PlanValue::Enumerated(x) => V::Enumerated(a::Enumerated::new(*x)),
        PlanValue::Utf8(x) => V::UTF8String(a::UTF8String::new(x)),
        PlanValue::Identity(x) => V::Identity(a::Identity::new(x)),
        PlanValue::Octets(x) => V::OctetString(a::OctetString::new(x.clone())),
        PlanValue::Address(x) => V::Address(x.clone()),
        PlanValue::Grouped(items) => V::Grouped(a::Grouped::new(
            items
                .iter()
                .map(|i| {
                    a::Avp::new(
                        i.code,
                        i.vendor,
                        i.flags,
                        build_value(&i.value, d),
                        Arc::clone(d),
                    )
                })
                .collect(),
            Arc::clone(d),
        )),
    }
}

/// The incumbent's message built from `plan` with the header of `like`.
fn incumbent_build(
    like: &DiameterMessage,
    plan: &[PlanAvp],
    d: &Arc<Dictionary>,
) -> DiameterMessage {
    let mut m = DiameterMessage::new(
        like.get_command_code(),
        like.get_application_id(),
        like.get_flags(),
        like.get_hop_by_hop_id(),
        like.get_end_to_end_id(),
        Arc::clone(d),
    );
    for i in plan {
        m.add_avp(i.code, i.vendor, i.flags, build_value(&i.value, d));
    }
    m
}

/// Our side of a build + encode group: the typed message built from the texts and encoded
/// into `buf`.
type BuildEncode = fn(&testing::RxText, &ims::diameter::Header, &mut Vec<u8>) -> usize;

fn ims_build_encode(group: &str) -> BuildEncode {
    match group {
        "aar_build_encode" => {
            |t, h, buf| testing::rx_aar_with(t, Cow::Borrowed).encode_into(h, buf)
        }
        "aaa_build_encode" => {
            |t, h, buf| testing::rx_aaa_with(t, Cow::Borrowed).encode_into(h, buf)
        }
        g => panic!("unknown group {g}"),
    }
}

/// The messages of every group, decoded once on each side (the encode groups' inputs).
struct Work {
    d: Arc<Dictionary>,
    cer: Vec<u8>,
    aar: Vec<u8>,
    aaa: Vec<u8>,
    maa: Vec<u8>,
    saa: Vec<u8>,
}

impl Work {
    fn new() -> Work {
        let aar = testing::rx_aar().encode(0x101, 0x6d30_0101);
        let aaa = testing::rx_aaa().encode_answer(Message::parse(&aar).unwrap().header());
        Work {
            d: incumbent_dict(),
            cer: vector("base_cer"),
            aar,
            aaa,
            maa: vector("cx_maa"),
            saa: vector("cx_saa"),
        }
    }

    fn bytes(&self, group: &str) -> &[u8] {
        match group.split('_').next().unwrap() {
            "cer" => &self.cer,
            "aar" => &self.aar,
            "aaa" => &self.aaa,
            _ if group.starts_with("cx_maa") => &self.maa,
            _ => &self.saa,
        }
    }
}

/// One decode on our side: parse, typed decode, read a few fields. The group is resolved to a
/// function once, outside the measured loop (same for the diameter crate below).
fn ims_decoder(group: &str) -> fn(&[u8]) -> usize {
    match group {
        "cer_decode" => |bytes| {
            let mut cer = Cer::default();
            let m =
                Cer::decode_message_into(black_box(bytes), &Limits::default(), &mut cer).unwrap();
            black_box((
                cer.origin_host.len(),
                cer.vendor_specific_application_id.len(),
                cer.host_ip_address[0],
            ));
            m.len()
        },
        "aar_decode" => |bytes| {
            let mut a = Aar::default();
            let m = Aar::decode_message_into(black_box(bytes), &Limits::default(), &mut a).unwrap();
            let mcd = &a.media_component_description;
            black_box((
                a.session_id.len(),
                mcd.len(),
                mcd[1].media_sub_component[0].flow_description[0].len(),
                mcd[0].max_requested_bandwidth_ul,
            ));
            m.len()
        },
        "aaa_decode" => |bytes| {
            let mut a = Aaa::default();
            let m = Aaa::decode_message_into(black_box(bytes), &Limits::default(), &mut a).unwrap();
            black_box((
                a.outcome(),
                a.access_network_charging_identifier.len(),
                a.rat_type,
            ));
            m.len()
        },
        "cx_maa_decode" => |bytes| {
            let mut a = Maa::default();
            let m = Maa::decode_message_into(black_box(bytes), &Limits::default(), &mut a).unwrap();
            black_box((
                a.outcome(),
                a.sip_auth_data_item[0]
                    .sip_authenticate
                    .as_ref()
                    .map(|x| x.len()),
            ));
            m.len()
        },
        "cx_saa_decode" => |bytes| {
            let mut a = Saa::default();
            let m = Saa::decode_message_into(black_box(bytes), &Limits::default(), &mut a).unwrap();
            black_box((a.outcome(), a.user_data.as_ref().map(|x| x.len())));
            m.len()
        },
        g => panic!("unknown group {g}"),
    }
}

/// One decode with the diameter crate: decode, then read the same fields.
fn incumbent_decoder(group: &str) -> fn(&[u8], &Arc<Dictionary>) -> usize {
    match group {
        "cer_decode" => |bytes, d| {
            let m = incumbent_decode(black_box(bytes), d);
            let oh = m
                .get_avp(264)
                .and_then(|a| a.get_identity())
                .map(|i| i.value().len());
            black_box((
                oh,
                m.get_avps().iter().filter(|a| a.get_code() == 260).count(),
                m.get_avp(257).map(|a| a.get_code()),
            ));
            bytes.len()
        },
        "aar_decode" => |bytes, d| {
            let m = incumbent_decode(black_box(bytes), d);
            let sid = m
                .get_avp(263)
                .and_then(|a| a.get_utf8string())
                .map(|s| s.value().len());
            let mcds: Vec<_> = m
                .get_avps()
                .iter()
                .filter(|a| a.get_code() == 517)
                .collect();
            let g1 = mcds[1].get_grouped().unwrap();
            let msc = g1
                .avps()
                .iter()
                .find(|a| a.get_code() == 519)
                .unwrap()
                .get_grouped()
                .unwrap();
            let fd = msc
                .avps()
                .iter()
                .find(|a| a.get_code() == 507)
                .map(|a| a.get_length());
            let bw = mcds[0]
                .get_grouped()
                .unwrap()
                .avps()
                .iter()
                .find(|a| a.get_code() == 516)
                .and_then(|a| a.get_unsigned32());
            black_box((sid, mcds.len(), fd, bw));
            bytes.len()
        },
        "aaa_decode" => |bytes, d| {
            let m = incumbent_decode(black_box(bytes), d);
            let rc = m.get_avp(268).and_then(|a| a.get_unsigned32());
            let anci = m.get_avps().iter().filter(|a| a.get_code() == 502).count();
            let rat = m
                .get_avp(1032)
                .and_then(|a| a.get_enumerated())
                .map(|e| e.value());
            black_box((rc, anci, rat));
            bytes.len()
        },
        g => panic!("the diameter crate has no group {g}"),
    }
}

/// A typed value of our side, ready to encode (built once, outside the measured loop: the
/// variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
enum Typed<'a> {
    Cer(Cer<'a>),
    Aar(Aar<'a>),
    Aaa(Aaa<'a>),
    Maa(Maa<'a>),
    Saa(Saa<'a>),
}

impl<'a> Typed<'a> {
    fn decode(group: &str, m: &Message<'a>) -> Typed<'a> {
        match group.split('_').next().unwrap() {
            "cer" => Typed::Cer(Cer::decode(m).unwrap()),
            "aar" => Typed::Aar(Aar::decode(m).unwrap()),
            "aaa" => Typed::Aaa(Aaa::decode(m).unwrap()),
            _ if group.starts_with("cx_maa") => Typed::Maa(Maa::decode(m).unwrap()),
            _ => Typed::Saa(Saa::decode(m).unwrap()),
        }
    }

    fn encode_into(&self, h: &ims::diameter::Header, buf: &mut Vec<u8>) -> usize {
        match self {
            Typed::Cer(v) => v.encode_into(h, buf),
            Typed::Aar(v) => v.encode_into(h, buf),
            Typed::Aaa(v) => v.encode_into(h, buf),
            Typed::Maa(v) => v.encode_into(h, buf),
            Typed::Saa(v) => v.encode_into(h, buf),
        }
    }
}

fn bench_group(c: &mut Criterion, w: &Work, group: &str, incumbent: bool) {
    let bytes = w.bytes(group);
    let mut g = c.benchmark_group(group);
    g.throughput(if group.starts_with("cx_") && group.ends_with("_encode") {
        Throughput::Bytes(bytes.len() as u64)
    } else {
        Throughput::Elements(1)
    });
    if group.ends_with("_build_encode") {
        let m = Message::parse(bytes).unwrap();
        let header = *m.header();
        let ours = ims_build_encode(group);
        let text = testing::RxText::new();
        let mut buf = Vec::with_capacity(2048);
        ours(&text, &header, &mut buf);
        assert_eq!(buf, bytes, "{group}: our build + encode gives the octets");
        g.bench_function("ims", |b| {
            b.iter(|| {
                buf.clear();
                black_box(ours(black_box(&text), black_box(&header), &mut buf))
            })
        });
        let theirs = incumbent_decode(bytes, &w.d);
        let p = plan(theirs.get_avps());
        let mut buf2 = Vec::with_capacity(2048);
        incumbent_build(&theirs, &p, &w.d)
            .encode_to(&mut buf2)
            .unwrap();
        assert_eq!(
            buf2, bytes,
            "{group}: the diameter crate's build + encode gives the octets"
        );
        g.bench_function("diameter_crate", |b| {
            b.iter(|| {
                buf2.clear();
                incumbent_build(&theirs, &p, &w.d)
                    .encode_to(&mut buf2)
                    .unwrap();
                black_box(buf2.len())
            })
        });
    } else if group.ends_with("_decode") {
        let ours = ims_decoder(group);
        g.bench_function("ims", |b| b.iter(|| ours(bytes)));
        if incumbent {
            let theirs = incumbent_decoder(group);
            g.bench_function("diameter_crate", |b| b.iter(|| theirs(bytes, &w.d)));
        }
    } else {
        let m = Message::parse(bytes).unwrap();
        let header = *m.header();
        let v = Typed::decode(group, &m);
        let mut buf = Vec::with_capacity(2048);
        g.bench_function("ims", |b| {
            b.iter(|| {
                buf.clear();
                black_box(v.encode_into(&header, &mut buf))
            })
        });
        if incumbent {
            let theirs = incumbent_decode(bytes, &w.d);
            let mut check = Vec::new();
            theirs.encode_to(&mut check).unwrap();
            assert_eq!(
                check, bytes,
                "the diameter crate re-encodes {group} identically"
            );
            let mut buf2 = Vec::with_capacity(2048);
            g.bench_function("diameter_crate", |b| {
                b.iter(|| {
                    buf2.clear();
                    theirs.encode_to(&mut buf2).unwrap();
                    black_box(buf2.len())
                })
            });
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let w = Work::new();
    for group in [
        "cer_decode",
        "cer_encode",
        "aar_decode",
        "aar_encode",
        "aaa_decode",
        "aaa_encode",
        "aar_build_encode",
        "aaa_build_encode",
    ] {
        bench_group(c, &w, group, true);
    }
    for group in [
        "cx_maa_decode",
        "cx_saa_decode",
        "cx_maa_encode",
        "cx_saa_encode",
    ] {
        bench_group(c, &w, group, false);
    }
    for name in ["cx_maa", "cx_saa"] {
        let bytes = w.bytes(name);
        let mut g = c.benchmark_group(format!("{name}_decode_bytes"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("ims", |b| {
            b.iter(|| {
                let m = Message::parse(black_box(bytes)).unwrap();
                black_box(ims::diameter::answer::validate(&m).is_ok())
            })
        });
        g.finish();
    }
}

/// `icount <group>/<ims|diameter_crate> <n>`: the group's work `n` times and nothing else, for
/// instruction counts under callgrind; `icount none <n>` does only the setup.
fn icount(mode: &str, n: usize) {
    let w = Work::new();
    if mode == "none" {
        return;
    }
    let (group, lib) = mode.split_once('/').expect("<group>/<ims|diameter_crate>");
    let bytes = w.bytes(group);
    let mut buf = Vec::with_capacity(2048);
    if group.ends_with("_build_encode") {
        let header = *Message::parse(bytes).unwrap().header();
        match lib {
            "ims" => {
                let ours = ims_build_encode(group);
                let text = testing::RxText::new();
                for _ in 0..n {
                    buf.clear();
                    black_box(ours(black_box(&text), black_box(&header), &mut buf));
                }
            }
            "diameter_crate" => {
                let theirs = incumbent_decode(bytes, &w.d);
                let p = plan(theirs.get_avps());
                for _ in 0..n {
                    buf.clear();
                    incumbent_build(black_box(&theirs), &p, &w.d)
                        .encode_to(&mut buf)
                        .unwrap();
                }
            }
            _ => panic!("unknown library {lib}"),
        }
        assert_eq!(buf, bytes);
        return;
    }
    match (group.ends_with("_decode"), lib) {
        (true, "ims") => {
            let ours = ims_decoder(group);
            (0..n).for_each(|_| {
                black_box(ours(bytes));
            })
        }
        (true, "diameter_crate") => {
            let theirs = incumbent_decoder(group);
            (0..n).for_each(|_| {
                black_box(theirs(bytes, &w.d));
            })
        }
        (false, "ims") => {
            let m = Message::parse(bytes).unwrap();
            let header = *m.header();
            let v = Typed::decode(group, &m);
            for _ in 0..n {
                buf.clear();
                black_box(v.encode_into(black_box(&header), &mut buf));
            }
            assert_eq!(buf, bytes);
        }
        (false, "diameter_crate") => {
            let theirs = incumbent_decode(bytes, &w.d);
            for _ in 0..n {
                buf.clear();
                black_box(&theirs).encode_to(&mut buf).unwrap();
            }
            assert_eq!(buf, bytes);
        }
        _ => panic!("unknown library {lib}"),
    }
}

criterion_group!(diameter_benches, benches);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [first, mode, n] = args.as_slice() {
        if first == "icount" {
            return icount(mode, n.parse().expect("a repetition count"));
        }
    }
    diameter_benches();
    Criterion::default().configure_from_args().final_summary();
}
