//! The three things a runtime supplies: a UDP socket, a timer and a way to spawn a task.
//!
//! These are poll-based, as quinn's runtime traits are, so that the driver is one hand-written
//! [`Future`] that decides the order of its work itself: commands, then every datagram already
//! queued on the socket, then the timer.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A future the driver hands to [`Runtime::spawn`].
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// An async runtime as the driver sees it.
///
/// An adapter crate implements this for its runtime (about fifty lines) and calls
/// [`crate::start_on`]; everything else is shared.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// The runtime's UDP socket.
    type Socket: UdpSocket;
    /// The runtime's timer.
    type Timer: Timer;

    /// Registers a bound, non-blocking standard socket with the runtime's reactor.
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Self::Socket>;

    /// A timer that fires at `deadline`.
    fn new_timer(&self, deadline: Instant) -> Self::Timer;

    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture);
}

/// A UDP socket registered with a runtime's reactor.
///
/// Both polls follow the usual contract: `Poll::Pending` means the current task will be woken
/// when the operation may succeed.
pub trait UdpSocket: Send + Sync + Debug + 'static {
    /// Sends one datagram to `target`.
    fn poll_send_to(&self, cx: &mut Context<'_>, buf: &[u8], target: SocketAddr) -> Poll<io::Result<usize>>;

    /// Receives one datagram into `buf`, returning its length and its sender.
    fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>>;

    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A resettable one-shot timer.
pub trait Timer: Send + Debug + Unpin + 'static {
    /// Makes the timer fire at `deadline` instead.
    fn reset(&mut self, deadline: Instant);

    /// `Poll::Ready` once the deadline has passed; otherwise registers the task's waker.
    ///
    /// The driver checks the clock itself and resets the timer after it fired, so an
    /// implementation may return `Pending` when polled again after firing.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
