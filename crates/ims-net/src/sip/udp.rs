//! Batched UDP sends: the datagrams one turn of the endpoint loop produces for its socket leave
//! in one `sendmmsg` system call on Linux (rustix's safe wrapper), in the order they were queued;
//! elsewhere, and for a lone datagram, one `send_to` each.

use bytes::Bytes;
use ims_txn::TxnId;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// Datagrams handed to the kernel in one system call at most (Linux caps `vlen` at 1024).
const MAX_BATCH: usize = 64;

/// One datagram waiting for the end of the loop's turn.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) txn: Option<TxnId>,
    pub(crate) to: SocketAddr,
    pub(crate) bytes: Bytes,
}

/// The datagrams queued for one socket during a turn of the loop.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    queued: Vec<Datagram>,
}

/// What a flush did: datagrams sent and system calls made (each counted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub(crate) datagrams: u64,
    pub(crate) calls: u64,
}

impl SendQueue {
    pub(crate) fn push(&mut self, d: Datagram) {
        self.queued.push(d);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Sends every queued datagram on `socket`, in queue order; the transactions of the ones the
    /// kernel refused go to `failed` (with no socket: all of them).
    pub(crate) async fn flush(
        &mut self,
        socket: Option<&UdpSocket>,
        failed: &mut Vec<TxnId>,
    ) -> Flushed {
        let mut done = Flushed::default();
        if self.queued.is_empty() {
            return done;
        }
        let Some(s) = socket else {
            failed.extend(self.queued.drain(..).filter_map(|d| d.txn));
            return done;
        };
        let mut at = 0;
        while at < self.queued.len() {
            let rest = &self.queued[at..];
            done.calls += 1;
            match send_some(s, rest).await {
                Ok(n) if n > 0 => {
                    let n = n.min(rest.len());
                    done.datagrams += n as u64;
                    at += n;
                }
                // the first datagram of `rest` was refused: the ones after it are tried again
                _ => {
                    failed.extend(rest[0].txn);
                    at += 1;
                }
            }
        }
        self.queued.clear();
        done
    }
}

/// Sends a prefix of `ds` (at least the first datagram, or an error for it), waiting for the
/// socket to be writable.
async fn send_some(s: &UdpSocket, ds: &[Datagram]) -> std::io::Result<usize> {
    if ds.len() == 1 {
        return s.send_to(&ds[0].bytes, ds[0].to).await.map(|_| 1);
    }
    #[cfg(target_os = "linux")]
    {
        let ds = &ds[..ds.len().min(MAX_BATCH)];
        loop {
            s.writable().await?;
            match s.try_io(tokio::io::Interest::WRITABLE, || sendmmsg(s, ds)) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = MAX_BATCH;
        s.send_to(&ds[0].bytes, ds[0].to).await.map(|_| 1)
    }
}

/// One `sendmmsg(2)`: the number of datagrams of `ds` the kernel took, from the first.
#[cfg(target_os = "linux")]
fn sendmmsg(s: &UdpSocket, ds: &[Datagram]) -> std::io::Result<usize> {
    use rustix::net::addr::SocketAddrArg;
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    use std::io::IoSlice;
    let addrs: Vec<SocketAddrAny> = ds.iter().map(|d| d.to.as_any()).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = ds.iter().map(|d| [IoSlice::new(&d.bytes)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
        ds.iter().map(|_| SendAncillaryBuffer::default()).collect();
    let mut msgs: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&iovs)
        .zip(controls.iter_mut())
        .map(|((a, iov), c)| MMsgHdr::new_with_addr(a, iov, c))
        .collect();
    rustix::net::sendmmsg(s, &mut msgs, SendFlags::empty()).map_err(std::io::Error::from)
}
