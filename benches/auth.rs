//! ims-auth: MILENAGE authentication vector generation (what an HSS does per MAR), the USIM's
//! AUTN check, and a Digest MD5 / AKAv1-MD5 verification at the registrar (what an S-CSCF does
//! per authenticated REGISTER). No incumbent to compare with in the same run: the figures are
//! absolute (one vector = 6 AES-128 block encryptions plus the key schedule done once).

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ims::auth::aka::{AuthVector, Sqn, SqnMs, Usim};
use ims::auth::digest::{self, aka_password, Request};
use ims::auth::milenage::{Milenage, OperatorKey};
use ims::auth::{Algorithm, Credentials, DigestServer, Secret};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let k = [0x46; 16];
    let m = Milenage::new(&k, OperatorKey::Op([0xcd; 16]));
    let mut g = c.benchmark_group("milenage");
    g.throughput(Throughput::Elements(1));
    g.bench_function("new_with_op", |b| {
        b.iter(|| Milenage::new(black_box(&k), OperatorKey::Op([0xcd; 16])))
    });
    let mut seq = 0u64;
    g.bench_function("auth_vector", |b| {
        b.iter(|| {
            seq += 1;
            AuthVector::generate(&m, [seq as u8; 16], Sqn::from_parts(seq, 0, 5), [0x80, 0])
        })
    });
    let av = AuthVector::generate(&m, [1; 16], Sqn::from_parts(1, 0, 5), [0x80, 0]);
    g.bench_function("usim_authenticate", |b| {
        b.iter(|| {
            let mut usim = Usim::with_sqn(m.clone(), SqnMs::new(5));
            usim.authenticate(black_box(&av.rand), black_box(&av.autn))
        })
    });
    g.finish();

    let server = DigestServer::new(&[7; 32]);
    let now = Duration::from_secs(1000);
    let req = Request {
        method: "REGISTER",
        uri: "sip:ims.example.com",
        body: b"",
        cnonce: "0a4f113b",
        nc: 1,
    };
    let mut g = c.benchmark_group("digest");
    g.throughput(Throughput::Elements(1));
    let ch = server
        .challenge("ims.example.com", Algorithm::Md5, now, &[3; 16])
        .expect("challenge");
    let text = digest::answer(&ch, "alice", b"pw", &req)
        .expect("answer")
        .to_string();
    g.bench_function("md5_parse_verify", |b| {
        b.iter(|| {
            let c = Credentials::parse(black_box(&text)).expect("parse");
            server.verify(&c, "REGISTER", b"", Secret::Password(b"pw"), now, None)
        })
    });
    let ch = server
        .aka_challenge("ims.example.com", Algorithm::AkaV1Md5, &av, now)
        .expect("challenge");
    let pw = aka_password(Algorithm::AkaV1Md5, &av).expect("AKA");
    let text = digest::answer(&ch, "imsi@ims.example.com", &pw, &req)
        .expect("answer")
        .to_string();
    g.bench_function("akav1_parse_verify", |b| {
        b.iter(|| {
            let c = Credentials::parse(black_box(&text)).expect("parse");
            server.verify(&c, "REGISTER", b"", Secret::Password(&pw), now, None)
        })
    });
    g.bench_function("challenge_md5", |b| {
        b.iter(|| server.challenge("ims.example.com", Algorithm::Md5, now, &[3; 16]))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
