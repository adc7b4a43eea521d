//! MSRP framing throughput: the incremental [`ims::msrp::Framer`] over a stream of 2 KB chat
//! chunks and a stream of 1 MB file chunks, fed in 64 KiB reads as a socket would, against a
//! `memchr::memmem` scan for `CRLF "-------"` over the same bytes (the floor any end-line search
//! pays, with no header parsing, no copy, no framing: the ceiling).
//!
//! Ids: `msrp_2k/framer`, `msrp_2k/memchr_scan`, `msrp_1m/framer`, `msrp_1m/memchr_scan`.
//! Throughput is bytes per second; frames per second = MB/s ÷ frame size (printed at start).

#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ims::msrp::{Event, Flag, FrameBuilder, Framer};

const READ: usize = 64 * 1024;

fn stream(chunk: usize, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let total = (chunk * count) as u64;
    for i in 0..count {
        // printable pseudo-random body with line breaks, like text or base64
        let body: Vec<u8> = (0..chunk)
            .map(|j| {
                let x = (i * chunk + j) as u32;
                if x % 77 == 76 {
                    b'\n'
                } else {
                    b'A' + (x.wrapping_mul(2_654_435_761) >> 27) as u8
                }
            })
            .collect();
        let start = (i * chunk + 1) as u64;
        let f = FrameBuilder::request(&format!("tx{i:08}"), "SEND")
            .to_path("msrp://bob.example.com:8888/9di4eae923wzd;tcp")
            .from_path("msrp://alice.example.com:7777/iau39soe2843z;tcp")
            .header("Message-ID", "file0001")
            .header(
                "Byte-Range",
                &format!("{start}-{}/{total}", start + chunk as u64 - 1),
            )
            .body("application/octet-stream", Bytes::from(body))
            .flag(if i + 1 == count {
                Flag::End
            } else {
                Flag::Continue
            })
            .to_bytes();
        out.extend_from_slice(&f);
    }
    out
}

fn frame_all(data: &[u8]) -> (usize, usize) {
    let mut f = Framer::default();
    let (mut frames, mut body) = (0, 0);
    for r in data.chunks(READ) {
        f.push(r);
        while let Some(ev) = f.poll().expect("valid stream") {
            match ev {
                Event::Frame(fr) => {
                    frames += 1;
                    body += fr.body.len();
                }
                Event::Data(d) => body += d.len(),
                Event::End(_) => frames += 1,
                Event::Start(_) => {}
            }
        }
    }
    (frames, body)
}

fn scan_all(data: &[u8]) -> usize {
    memchr::memmem::find_iter(data, b"\r\n-------").count()
}

fn bench(c: &mut Criterion) {
    for (name, chunk, count) in [("msrp_2k", 2048, 4096), ("msrp_1m", 1 << 20, 8)] {
        let data = stream(chunk, count);
        let (frames, body) = frame_all(&data);
        assert_eq!((frames, body), (count, chunk * count));
        assert_eq!(scan_all(&data), count);
        eprintln!(
            "{name}: {count} frames of {} bytes each on the wire",
            data.len() / count
        );
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function("framer", |b| {
            b.iter(|| frame_all(std::hint::black_box(&data)))
        });
        g.bench_function("memchr_scan", |b| {
            b.iter(|| scan_all(std::hint::black_box(&data)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
