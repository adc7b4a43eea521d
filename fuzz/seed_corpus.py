#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the test vectors (re-runnable, idempotent).

    python3 fuzz/seed_corpus.py        # from the repository root

sip_message: every file of tests/vectors/sip-torture (with subdirectories), tests/vectors/sip-bench/*.sip
             and tests/vectors/ims/*.sip, as is.
sip_framer:  the same files behind a selector byte (chunk size / client side / LF mode, see
             ims::fuzzing::sip_framer),
             plus a few multi-message streams with keep-alives.
sip_uri:     the URIs found in those messages plus hand-written ones, named by SHA-1.
"""
import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
VEC = ROOT / "tests" / "vectors"
CORPUS = ROOT / "fuzz" / "corpus"


def vectors():
    out = []
    tort = VEC / "sip-torture"
    for p in sorted(tort.rglob("*")):
        if p.is_file():
            rel = p.relative_to(tort).as_posix().replace("/", "-")
            out.append(("torture-" + rel, p.read_bytes(), "rfc5118-archive" in p.as_posix()))
    for d in ("sip-bench", "ims"):
        for p in sorted((VEC / d).glob("*.sip")):
            out.append((f"{d}-{p.name}", p.read_bytes(), False))
    return out


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


HAND_URIS = [
    "sip:alice@atlanta.example.com",
    "sips:bob@biloxi.example.com:5061;transport=tls",
    "sip:+447700900123@ims.example.com;user=phone",
    "sip:alice:secret@[2001:db8::10]:5071;transport=tcp;lr;gr;ob?Route=%3Csip:x%3E",
    "sip:[::1]",
    "sip:user@[2001:db8:0:0:1:0:0:1]:5060",
    "sip:user@[::ffff:192.0.2.128]",
    "sip:user@[2001:db8:::192.0.2.1]",
    "sip:user@192.0.2.1:5060;maddr=239.255.255.1;ttl=15",
    "sip:%61lice@atlanta.com;transport=TCP",
    "sip:user;par=u%40example.net@example.com",
    "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
    "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:carol@chicago.com;security=on;newparam=5",
    "SIP:ALICE@AtLanTa.CoM;Transport=udp",
    "sip:example.com.",
    "sip:a@b.com:70000",
    "sip:a@b.com;%zz",
    "sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
    "sip:pcscf.ims.example.com:5060;lr;transport=udp",
    "sip:scscf.ims.example.com;lr;orig",
    "sip:user@host;user=ip;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    "tel:+15551234567",
    "tel:+1-201-555-0123",
    "tel:7042;phone-context=example.com",
    "tel:863-1234;phone-context=+1-914-555",
    "tel:+358-555-1234567;postd=pp22",
    "tel:+1-212-555-1234;ext=1234;isub=5678",
    "tel:1234",
    "tel:+49-(0)89-1234*#AB",
    "urn:service:sos",
    "urn:service:sos.police",
    "urn:gsma:imei:35209900-176148-0",
    "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    "im:alice@example.com",
    "pres:alice@example.com",
    "mailto:alice@example.com?subject=hi%20there",
    "http://www.example.com/path/to/resource?x=1#frag",
    "cid:part1@example.com",
    "sip:[2001:db8::10",
    "sip:user@2001:db8::10",
    "sip:",
    "sip:@example.com",
    "sips:user@host:0",
    "sip:host:65535",
    "sip:user%20name@host;param=%22q%22?h=%3C%3E",
    "tel:+",
    "x:y",
]

URI_RE = re.compile(rb"<((?:sips?|tel|urn|im|pres|mailto|http|cid):[^>\r\n]*)>", re.I)
RURI_RE = re.compile(rb"^[A-Za-z]+ (\S+) SIP/", re.M)


def main():
    uris = set(u.encode() for u in HAND_URIS)
    for i, (name, data, lf) in enumerate(vectors()):
        write("sip_message", name, data)
        sel = (int(hashlib.sha1(name.encode()).hexdigest(), 16) % 128) | (0x80 if lf else 0)
        write("sip_framer", name, bytes([sel]) + data)
        for m in URI_RE.finditer(data):
            uris.add(m.group(1))
        for m in RURI_RE.finditer(data):
            uris.add(m.group(1))
    # multi-message streams with keep-alives, at a few chunk sizes
    bench = [p.read_bytes() for p in sorted((VEC / "sip-bench").glob("*.sip"))]
    ims = [p.read_bytes() for p in sorted((VEC / "ims").glob("*.sip"))]
    stream = b"\r\n\r\n".join(bench) + b"\r\n"
    for sel in (0x00, 0x0c, 0x3f, 0x45):
        side = "client" if sel & 0x40 else "server"
        write("sip_framer", f"stream-bench-{side}-chunk{(sel & 0x3f) + 1}", bytes([sel]) + stream)
    write("sip_framer", "stream-ims-pong", bytes([0x1f]) + b"\r\n".join(ims))
    write("sip_framer", "stream-lf-pong", bytes([0x83]) + b"\n" + ims[0].replace(b"\r\n", b"\n"))
    for u in sorted(uris):
        if len(u) <= 512:
            write("sip_uri", "uri-" + hashlib.sha1(u).hexdigest()[:16], u)


if __name__ == "__main__":
    main()
