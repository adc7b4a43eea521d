//! Building frames: requests, responses and REPORTs (RFC 4975 §7, §7.1.2, §7.2).

use crate::headers::name;
use crate::message::{status_comment, Flag};
use bytes::{BufMut, Bytes, BytesMut};

/// A frame under construction. Headers are written in the order they are added, after To-Path
/// and From-Path; Content-Type goes last, right before the body, as RFC 4975 §9 orders it.
///
/// ```
/// use ims_msrp::{Flag, FrameBuilder};
/// let f = FrameBuilder::request("a786hjs2", "SEND")
///     .to_path("msrp://bob.example.com:8888/9di4eae923wzd;tcp")
///     .from_path("msrp://alice.example.com:7777/iau39soe2843z;tcp")
///     .header("Message-ID", "87652491")
///     .header("Byte-Range", "1-5/5")
///     .body("text/plain", "Hello")
///     .flag(Flag::End)
///     .to_bytes();
/// assert!(f.ends_with(b"\r\nHello\r\n-------a786hjs2$\r\n"));
/// ```
#[derive(Debug, Clone)]
pub struct FrameBuilder {
    tid: String,
    start: String,
    to_path: String,
    from_path: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
    flag: Flag,
}

impl FrameBuilder {
    /// A request `MSRP tid METHOD`.
    pub fn request(tid: &str, method: &str) -> FrameBuilder {
        FrameBuilder::new(tid, method.to_owned())
    }
    /// A response `MSRP tid code comment` (the RFC comment when `comment` is `None`).
    pub fn response(tid: &str, code: u16, comment: Option<&str>) -> FrameBuilder {
        let c = comment.unwrap_or_else(|| status_comment(code));
        let start = if c.is_empty() {
            format!("{code:03}")
        } else {
            format!("{code:03} {c}")
        };
        FrameBuilder::new(tid, start)
    }
    fn new(tid: &str, start: String) -> FrameBuilder {
        FrameBuilder {
            tid: tid.to_owned(),
            start,
            to_path: String::new(),
            from_path: String::new(),
            headers: Vec::new(),
            body: None,
            flag: Flag::End,
        }
    }
    /// Sets To-Path.
    pub fn to_path(mut self, v: &str) -> FrameBuilder {
        v.clone_into(&mut self.to_path);
        self
    }
    /// Sets From-Path.
    pub fn from_path(mut self, v: &str) -> FrameBuilder {
        v.clone_into(&mut self.from_path);
        self
    }
    /// Adds a header.
    pub fn header(mut self, n: &str, v: &str) -> FrameBuilder {
        self.headers.push((n.to_owned(), v.to_owned()));
        self
    }
    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> FrameBuilder {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }
    /// Sets the end-line flag (default `$`).
    pub fn flag(mut self, f: Flag) -> FrameBuilder {
        self.flag = f;
        self
    }
    /// The start line and headers, through the empty line when there is a body.
    pub fn head_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(256);
        b.put_slice(b"MSRP ");
        b.put_slice(self.tid.as_bytes());
        b.put_u8(b' ');
        b.put_slice(self.start.as_bytes());
        b.put_slice(b"\r\n");
        let mut h = |n: &str, v: &str| {
            b.put_slice(n.as_bytes());
            b.put_slice(b": ");
            b.put_slice(v.as_bytes());
            b.put_slice(b"\r\n");
        };
        h(name::TO_PATH, &self.to_path);
        h(name::FROM_PATH, &self.from_path);
        for (n, v) in &self.headers {
            h(n, v);
        }
        if let Some((ct, _)) = &self.body {
            h(name::CONTENT_TYPE, ct);
            b.put_slice(b"\r\n");
        }
        b.freeze()
    }
    /// What follows the body: `CRLF end-line` with a body, the end-line alone without.
    pub fn tail_bytes(&self) -> Bytes {
        end_line(&self.tid, self.flag, self.body.is_some())
    }
    /// The whole frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = self.head_bytes();
        let tail = self.tail_bytes();
        let body = self.body.as_ref().map(|(_, b)| &b[..]).unwrap_or(&[]);
        let mut v = Vec::with_capacity(head.len() + body.len() + tail.len());
        v.extend_from_slice(&head);
        v.extend_from_slice(body);
        v.extend_from_slice(&tail);
        v
    }
}

/// `[CRLF] "-------" tid flag CRLF`.
pub fn end_line(tid: &str, flag: Flag, after_body: bool) -> Bytes {
    let mut b = BytesMut::with_capacity(tid.len() + 12);
    if after_body {
        b.put_slice(b"\r\n");
    }
    b.put_slice(b"-------");
    b.put_slice(tid.as_bytes());
    b.put_u8(flag.as_byte());
    b.put_slice(b"\r\n");
    b.freeze()
}

/// True when `body` contains `-------tid` followed by a flag: RFC 4975 §7.1 says the sender must
/// then pick another transaction id.
pub fn body_contains_end_line(body: &[u8], tid: &str) -> bool {
    let mut pat = Vec::with_capacity(7 + tid.len());
    pat.extend_from_slice(b"-------");
    pat.extend_from_slice(tid.as_bytes());
    memchr::memmem::find_iter(body, &pat).any(|i| {
        body.get(i + pat.len())
            .is_some_and(|&b| Flag::from_byte(b).is_some())
    })
}
