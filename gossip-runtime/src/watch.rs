//! Watches: values the driver keeps up to date (the membership, the entries under a key
//! prefix) that an application awaits without ever losing the latest state, whatever it
//! misses in between (latest-value semantics, like `tokio::sync::watch`, runtime-neutral).

use std::sync::{Arc, Mutex, PoisonError};

use event_listener::Event as Notify;

use crate::error::Error;

/// A value kept up to date by a running node; see [`crate::Handle::watch_members`] and
/// [`crate::Handle::watch_prefix`].
///
/// [`changed`](Self::changed) waits for the next value different from the last one this
/// watch returned; values in between are skipped, never the latest one. Cloning a watch gives
/// an independent reader. Dropping it unregisters it.
#[derive(Debug)]
pub struct Watch<T> {
    shared: Arc<Shared<T>>,
    /// The version this reader last returned.
    seen: u64,
}

impl<T> Clone for Watch<T> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), seen: self.seen }
    }
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<Slot<T>>,
    notify: Notify,
}

#[derive(Debug)]
struct Slot<T> {
    /// Raised on every new value.
    version: u64,
    value: T,
    /// The node shut down: no value will follow.
    closed: bool,
}

impl<T: Clone> Watch<T> {
    /// The latest value.
    pub fn get(&self) -> T {
        self.shared.lock().value.clone()
    }

    /// Waits until the value differs from the one this watch last returned (or, the first
    /// time, from the one it started with), and returns the latest. [`Error::Closed`] once the
    /// node has shut down and this watch has returned its last value.
    pub async fn changed(&mut self) -> Result<T, Error> {
        loop {
            {
                let slot = self.shared.lock();
                if slot.version != self.seen {
                    self.seen = slot.version;
                    return Ok(slot.value.clone());
                }
                if slot.closed {
                    return Err(Error::Closed);
                }
            }
            let listener = self.shared.notify.listen();
            // A value published between the check above and `listen` is seen here.
            {
                let slot = self.shared.lock();
                if slot.version != self.seen || slot.closed {
                    continue;
                }
            }
            listener.await;
        }
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        // A panic while holding this lock cannot leave the slot half-written (every write is
        // one assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The driver's side of a watch.
#[derive(Debug)]
pub(crate) struct Publisher<T> {
    shared: Arc<Shared<T>>,
}

impl<T: Clone + PartialEq> Publisher<T> {
    /// A watch starting at `value`, and its publisher.
    pub(crate) fn new(value: T) -> (Self, Watch<T>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(Slot { version: 0, value, closed: false }),
            notify: Notify::new(),
        });
        (Self { shared: shared.clone() }, Watch { shared, seen: 0 })
    }

    /// Whether some reader still holds the watch.
    pub(crate) fn is_watched(&self) -> bool {
        Arc::strong_count(&self.shared) > 1
    }

    /// Publishes `value` if it differs from the current one, waking the readers.
    pub(crate) fn publish(&self, value: T) {
        {
            let mut slot = self.shared.lock();
            if slot.value == value {
                return;
            }
            slot.value = value;
            slot.version += 1;
        }
        self.shared.notify.notify(usize::MAX);
    }
}

impl<T> Drop for Publisher<T> {
    /// The node shut down: readers get [`Error::Closed`] once they have the last value.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.notify.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_gets_the_latest_value_and_never_a_stale_one() {
        futures_lite::future::block_on(async {
            let (publisher, mut watch) = Publisher::new(0);
            assert_eq!(watch.get(), 0);
            publisher.publish(1);
            publisher.publish(2);
            publisher.publish(2); // unchanged: no wake-up, no new version
            assert_eq!(watch.changed().await.unwrap(), 2, "the values in between are skipped");
            let mut late = watch.clone();
            publisher.publish(3);
            assert_eq!(late.changed().await.unwrap(), 3);
            assert_eq!(watch.changed().await.unwrap(), 3, "each clone reads on its own");
            assert!(publisher.is_watched());
            drop(publisher);
            assert!(matches!(watch.changed().await, Err(Error::Closed)));
            assert_eq!(watch.get(), 3, "the last value stays readable");
        });
    }

    #[test]
    fn a_dropped_watch_is_no_longer_watched() {
        let (publisher, watch) = Publisher::new(String::new());
        drop(watch);
        assert!(!publisher.is_watched());
    }
}
