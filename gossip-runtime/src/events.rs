//! The stream of a node's events.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// protocol, and the reader is told: right after the events that were kept comes an
/// [`Event::Lagged`] with the number lost (rebuild what you mirror from
/// [`crate::Handle::snapshot`], or use the watches, which never lose the latest state). The
/// stream ends when the node shuts down. Dropping it is fine: events are then discarded.
#[derive(Debug)]
pub struct Events {
    inner: Pin<Box<async_channel::Receiver<Event>>>,
    /// Events the driver dropped that no `Lagged` has reported yet (shared with the driver).
    lost: Arc<AtomicU64>,
}

impl Events {
    pub(crate) fn new(inner: async_channel::Receiver<Event>, lost: Arc<AtomicU64>) -> Self {
        Self { inner: Box::pin(inner), lost }
    }

    /// The next event if one is waiting, without waiting; `None` when none is waiting or the
    /// node has shut down.
    pub fn try_next(&mut self) -> Option<Event> {
        self.inner.try_recv().ok().or_else(|| self.lagged())
    }

    /// Once the kept events are read: the report of the lost ones, if any.
    fn lagged(&self) -> Option<Event> {
        let missed = self.lost.swap(0, Ordering::AcqRel);
        (missed > 0).then_some(Event::Lagged { missed })
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(event)),
            // Empty (or ended): the lost events come after the ones that were kept.
            other => match self.lagged() {
                Some(lagged) => Poll::Ready(Some(lagged)),
                None => other,
            },
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.inner.len(), None)
    }
}
