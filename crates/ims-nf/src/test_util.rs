//! Helpers shared by the unit tests of this crate.

/// Runs `f`, a future built over in-process requesters, which completes at its first poll.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("in-process futures complete at once"),
    }
}
