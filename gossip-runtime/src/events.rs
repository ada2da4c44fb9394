//! The stream of a node's events.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use gossip_core::Event;

/// The events of one node ([`gossip_core::Event`]: members discovered, suspected, failed,
/// left or restarted; keys changed; the join and the leave completing), as a
/// [`futures_core::Stream`].
///
/// The stream is bounded (`Options::event_capacity`). The driver never waits for a slow
/// reader: when the stream is full, new events are dropped and counted in
/// [`crate::DriverStats::events_dropped`], so that reading events late can never stall the
/// protocol. The stream ends when the node shuts down. Dropping it is fine: events are then
/// discarded.
#[derive(Debug)]
pub struct Events {
    inner: Pin<Box<async_channel::Receiver<Event>>>,
}

impl Events {
    pub(crate) fn new(inner: async_channel::Receiver<Event>) -> Self {
        Self { inner: Box::pin(inner) }
    }

    /// The next event if one is waiting, without waiting; `None` when none is waiting or the
    /// node has shut down.
    pub fn try_next(&mut self) -> Option<Event> {
        self.inner.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.inner.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.inner.len(), None)
    }
}
