//! The UDP socket and timer of [`async_io`], the reactor under smol and async-std.
//!
//! async-std is discontinued upstream in favour of smol, and both run their sockets and
//! timers on `async-io`; so both adapters use this one binding and differ only in how they
//! spawn the driver task.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer};

/// A UDP socket on the `async-io` reactor.
#[derive(Debug)]
pub struct AsyncIoSocket(Async<std::net::UdpSocket>);

impl AsyncIoSocket {
    /// Registers a bound standard socket with the reactor (it is made non-blocking).
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        Async::new(socket).map(Self)
    }
}

impl crate::UdpSocket for AsyncIoSocket {
    fn poll_send_to(&self, cx: &mut Context<'_>, buf: &[u8], target: SocketAddr) -> Poll<io::Result<usize>> {
        loop {
            match self.0.get_ref().send_to(buf, target) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => ready!(self.0.poll_writable(cx))?,
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            match self.0.get_ref().recv_from(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => ready!(self.0.poll_readable(cx))?,
                result => return Poll::Ready(result),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

/// A timer on the `async-io` reactor.
#[derive(Debug)]
pub struct AsyncIoTimer(Timer);

impl AsyncIoTimer {
    /// A timer that fires at `deadline`.
    pub fn at(deadline: Instant) -> Self {
        Self(Timer::at(deadline))
    }
}

impl crate::Timer for AsyncIoTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        std::future::Future::poll(std::pin::Pin::new(&mut self.0), cx).map(|_| ())
    }
}
