//! The discrete-event queue: items ordered by virtual time, ties broken by insertion order so
//! that a run never depends on how the heap happens to order equal keys.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

/// A priority queue of `T` keyed by `(time, sequence)`, earliest first.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    sequence: u64,
}

#[derive(Debug)]
struct Entry<T> {
    at: Duration,
    sequence: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so that the max-heap pops the earliest entry.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.sequence).cmp(&(self.at, self.sequence))
    }
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self { heap: BinaryHeap::new(), sequence: 0 }
    }

    /// Schedules `item` at `at`; among items at the same time, the first pushed pops first.
    pub(crate) fn push(&mut self, at: Duration, item: T) {
        self.sequence += 1;
        self.heap.push(Entry { at, sequence: self.sequence, item });
    }

    /// The time of the earliest item.
    pub(crate) fn next_time(&self) -> Option<Duration> {
        self.heap.peek().map(|entry| entry.at)
    }

    /// Removes and returns the earliest item.
    pub(crate) fn pop(&mut self) -> Option<(Duration, T)> {
        self.heap.pop().map(|entry| (entry.at, entry.item))
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_by_insertion_order() {
        let mut queue = EventQueue::new();
        let ms = Duration::from_millis;
        queue.push(ms(5), "late");
        queue.push(ms(1), "first");
        queue.push(ms(1), "second");
        queue.push(ms(3), "middle");
        assert_eq!(queue.next_time(), Some(ms(1)));
        let order: Vec<_> = std::iter::from_fn(|| queue.pop().map(|(_, item)| item)).collect();
        assert_eq!(order, ["first", "second", "middle", "late"]);
        assert_eq!(queue.len(), 0);
    }
}
