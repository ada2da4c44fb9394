//! The one driver loop, written once for every runtime.
//!
//! Each time the driver task is polled it works through, in this order, until nothing is
//! left to do:
//!
//! 1. the datagrams waiting to be sent (a busy socket keeps them queued, up to
//!    `max_pending_transmits`);
//! 2. the commands from the handles;
//! 3. **every datagram already queued on the socket**, each fed to `handle_input` and followed
//!    by a full drain of `poll()`;
//! 4. the core's deadline: only when it has passed, and only after step 3 found the socket
//!    empty, is `handle_timeout` called (so an ack that already arrived is seen before the
//!    probe it answers times out), followed by a full drain. The timer is re-armed only when
//!    the deadline changed.
//!
//! Errors from the socket are counted in [`DriverStats`] and logged with `tracing` (every one
//! at `debug`, the first and then every power-of-two-th at `warn`); none of them stops the
//! node. After [`BUDGET`] datagrams and commands in one poll the task yields,
//! so that one busy node cannot starve the others sharing its runtime.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_core::Stream;
use gossip_core::{Event, Node, Output, Transmit};
use rand_chacha::ChaCha8Rng;

use crate::error::Error;
use crate::handle::{Command, DriverStats, Member, NodeMetrics};
use crate::runtime::{Runtime, Timer, UdpSocket};
use crate::state::KeyValue;
use crate::watch::Publisher;

/// Datagrams and commands handled in one poll before the driver yields.
const BUDGET: usize = 256;

/// The largest UDP payload: a bigger buffer is never needed, and a smaller one would truncate
/// an oversized datagram instead of letting the core count it.
const RECV_BUFFER: usize = 65_536;

/// How long after the core's own `leave_timeout` a leave is reported as timed out.
const LEAVE_GRACE: Duration = Duration::from_secs(1);

/// The task that owns a node, its socket and its timer.
pub(crate) struct Driver<R: Runtime> {
    state: Option<State<R>>,
}

// The driver is never pinned structurally: its socket and timer are only used through `&mut`.
impl<R: Runtime> Unpin for Driver<R> {}

/// Everything the running driver owns; dropped as a whole on shutdown (closing the socket).
struct State<R: Runtime> {
    node: Node<ChaCha8Rng>,
    socket: R::Socket,
    timer: R::Timer,
    /// The deadline the timer is armed for; `None` after it fired.
    armed: Option<Instant>,
    commands: Pin<Box<async_channel::Receiver<Command>>>,
    events: async_channel::Sender<Event>,
    outbox: VecDeque<Transmit>,
    outbox_capacity: usize,
    buffer: Box<[u8]>,
    leaves: Vec<PendingLeave>,
    /// `join`s waiting for a seed to answer, or for the core to report the join failed.
    joins: Vec<oneshot::Sender<Result<(), Error>>>,
    stats: DriverStats,
    /// Events dropped from the stream and not yet reported by an `Event::Lagged` (shared
    /// with the stream, which reports them once it is empty, if the driver has not).
    lost: Arc<AtomicU64>,
    watches: Watches,
    #[cfg(feature = "metrics")]
    exporter: crate::export::Exporter,
}

/// The watches of the handles, and what may have changed since they were last refreshed.
#[derive(Default)]
struct Watches {
    members: Vec<Publisher<Vec<Member>>>,
    prefixes: Vec<(String, Publisher<Vec<KeyValue>>)>,
    /// The table summary at the last refresh: any change of a member's generation, state,
    /// incarnation or table version changes it.
    summary: Option<(u64, u32)>,
    /// Events since the last refresh that the summary does not cover.
    members_touched: bool,
    keys_touched: bool,
}

/// Most watches a node keeps (members and prefixes together).
const MAX_WATCHES: usize = 1_024;

/// A `leave` waiting for the core to report it complete.
struct PendingLeave {
    give_up: Instant,
    reply: oneshot::Sender<Result<(), Error>>,
}

/// What one pass of the loop ended with.
enum Flow {
    /// Waiting for the socket, a command or the timer (wakers registered).
    Idle,
    /// Stop: drop everything, then send these replies.
    Stop(Vec<oneshot::Sender<()>>),
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(
        node: Node<ChaCha8Rng>,
        socket: R::Socket,
        timer: R::Timer,
        armed: Instant,
        commands: async_channel::Receiver<Command>,
        events: async_channel::Sender<Event>,
        lost: Arc<AtomicU64>,
    ) -> Self {
        let outbox_capacity = node.config().max_pending_transmits;
        #[cfg(feature = "metrics")]
        let exporter = crate::export::Exporter::new(&node.identity().name, Instant::now());
        Self {
            state: Some(State {
                node,
                socket,
                timer,
                armed: Some(armed),
                commands: Box::pin(commands),
                events,
                outbox: VecDeque::new(),
                outbox_capacity,
                buffer: vec![0; RECV_BUFFER].into_boxed_slice(),
                leaves: Vec::new(),
                joins: Vec::new(),
                stats: DriverStats::default(),
                lost,
                watches: Watches::default(),
                #[cfg(feature = "metrics")]
                exporter,
            }),
        }
    }
}

impl<R: Runtime> Future for Driver<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(state) = this.state.as_mut() else { return Poll::Ready(()) };
        match state.drive(cx) {
            Flow::Idle => Poll::Pending,
            Flow::Stop(replies) => {
                if let Some(state) = this.state.take() {
                    tracing::debug!(node = %state.node.identity().name, "shut down");
                    // Closes the socket and ends the event stream; pending leaves get `Closed`.
                    drop(state);
                }
                for reply in replies {
                    let _ = reply.send(());
                }
                Poll::Ready(())
            }
        }
    }
}

impl<R: Runtime> State<R> {
    fn drive(&mut self, cx: &mut Context<'_>) -> Flow {
        let mut work = 0;
        loop {
            self.flush(cx);

            // Commands from the handles.
            loop {
                match self.commands.as_mut().poll_next(cx) {
                    Poll::Ready(Some(command)) => {
                        if let Some(reply) = self.command(command) {
                            return Flow::Stop(vec![reply]);
                        }
                    }
                    // Every handle was dropped: nobody can use the node any more.
                    Poll::Ready(None) => return Flow::Stop(Vec::new()),
                    Poll::Pending => break,
                }
                work += 1;
                if work >= BUDGET {
                    return yield_now(cx);
                }
            }

            // Every datagram already queued, before any timeout.
            loop {
                match self.socket.poll_recv_from(cx, &mut self.buffer) {
                    Poll::Ready(Ok((len, from))) => {
                        self.stats.datagrams_received += 1;
                        self.stats.bytes_received += len as u64;
                        self.node.handle_input(Instant::now(), from, &self.buffer[..len]);
                        self.drain();
                        self.flush(cx);
                    }
                    Poll::Ready(Err(error)) => {
                        self.stats.recv_errors += 1;
                        let (node, count) = (&self.node.identity().name, self.stats.recv_errors);
                        if count.is_power_of_two() {
                            tracing::warn!(%node, %error, count, "receive failed");
                        } else {
                            tracing::debug!(%node, %error, count, "receive failed");
                        }
                    }
                    Poll::Pending => break,
                }
                work += 1;
                if work >= BUDGET {
                    return yield_now(cx);
                }
            }

            // The core's deadline (and the driver's own: leaves, metrics).
            let deadline = self.deadline();
            let now = Instant::now();
            if deadline <= now {
                self.armed = None;
                if self.node.poll_timeout() <= now {
                    self.stats.timeouts += 1;
                    self.node.handle_timeout(now);
                    self.drain();
                }
                self.expire_leaves(now);
                #[cfg(feature = "metrics")]
                self.exporter.publish_if_due(now, &self.node, &self.stats);
                work += 1;
                if work >= BUDGET {
                    self.flush(cx);
                    return yield_now(cx);
                }
                continue;
            }
            if self.armed != Some(deadline) {
                self.timer.reset(deadline);
                self.armed = Some(deadline);
                self.stats.timer_resets += 1;
            }
            match self.timer.poll_elapsed(cx) {
                Poll::Ready(()) => continue,
                Poll::Pending => return Flow::Idle,
            }
        }
    }

    /// The earliest of the core's deadline, the pending leaves' limits and the next metrics
    /// publication.
    fn deadline(&self) -> Instant {
        let leave = self.leaves.iter().map(|leave| leave.give_up).min();
        let core = self.node.poll_timeout();
        #[cfg(feature = "metrics")]
        let core = core.min(self.exporter.due());
        leave.map_or(core, |leave| core.min(leave))
    }

    /// The drain rule: take every output of the core.
    fn drain(&mut self) {
        while let Some(output) = self.node.poll() {
            match output {
                Output::Transmit(transmit) => {
                    if self.outbox.len() >= self.outbox_capacity {
                        self.stats.transmits_dropped += 1;
                        tracing::debug!(node = %self.node.identity().name, "outgoing queue full");
                    } else {
                        self.outbox.push_back(transmit);
                    }
                }
                Output::Event(event) => self.emit(event),
            }
        }
        self.refresh_watches();
        if !self.leaves.is_empty() && self.node.has_left() {
            for leave in self.leaves.drain(..) {
                let _ = leave.reply.send(Ok(()));
            }
        }
    }

    fn emit(&mut self, event: Event) {
        crate::log::event(&self.node.identity().name, &event);
        match &event {
            Event::Joined { .. } => {
                for join in self.joins.drain(..) {
                    let _ = join.send(Ok(()));
                }
            }
            Event::JoinFailed { seeds } => {
                for join in self.joins.drain(..) {
                    let _ = join.send(Err(Error::JoinFailed(seeds.clone())));
                }
            }
            Event::KeysChanged { .. } => self.watches.keys_touched = true,
            Event::Lagged { .. } => {
                self.watches.keys_touched = true;
                self.watches.members_touched = true;
            }
            _ => self.watches.members_touched = true,
        }
        // After a loss, the next event that finds room is preceded by the count of the lost
        // (unless the stream, found empty, reported them first).
        let event = match event {
            Event::Lagged { missed } => {
                Event::Lagged { missed: missed + self.lost.swap(0, Ordering::AcqRel) }
            }
            event if self.events.is_full() => {
                self.drop_event(&event);
                return;
            }
            event => {
                let missed = self.lost.swap(0, Ordering::AcqRel);
                if missed > 0 && self.events.try_send(Event::Lagged { missed }).is_err() {
                    // Full again, or closed: still to report.
                    self.lost.fetch_add(missed, Ordering::AcqRel);
                    self.drop_event(&event);
                    return;
                }
                event
            }
        };
        if let Err(async_channel::TrySendError::Full(event)) = self.events.try_send(event) {
            self.drop_event(&event);
        }
    }

    /// Counts an event the full stream could not take.
    fn drop_event(&mut self, event: &Event) {
        let (dropped, lost) = match event {
            // A lost `Lagged` carries its count over to the next one.
            Event::Lagged { missed } => (1, *missed),
            // As the core counts it: each change of the batch.
            Event::KeysChanged { changes, .. } => (changes.len() as u64, changes.len() as u64),
            _ => (1, 1),
        };
        let before = self.stats.events_dropped;
        self.stats.events_dropped += dropped;
        self.lost.fetch_add(lost, Ordering::AcqRel);
        // Said when the count reaches or passes a power of two.
        if (before + 1).next_power_of_two() <= self.stats.events_dropped {
            tracing::warn!(
                node = %self.node.identity().name,
                dropped = self.stats.events_dropped,
                "event stream full; events dropped (the stream says so with Event::Lagged)"
            );
        }
    }

    /// Brings the watches up to date with the node, when something they show may have
    /// changed (cheap otherwise: one summary comparison).
    fn refresh_watches(&mut self) {
        let watches = &mut self.watches;
        if watches.members.is_empty() && watches.prefixes.is_empty() {
            return;
        }
        let summary = self.node.digest_summary();
        let summary = Some((summary.hash, summary.nodes));
        let table_changed = watches.summary != summary;
        watches.summary = summary;
        if table_changed || watches.members_touched {
            watches.members.retain(Publisher::is_watched);
            if !watches.members.is_empty() {
                let members = crate::state::members(&self.node);
                for watch in &watches.members {
                    watch.publish(members.clone());
                }
            }
        }
        if table_changed || watches.keys_touched {
            watches.prefixes.retain(|(_, watch)| watch.is_watched());
            for (prefix, watch) in &watches.prefixes {
                watch.publish(crate::state::with_prefix(&self.node, prefix));
            }
        }
        watches.members_touched = false;
        watches.keys_touched = false;
    }

    /// Room for one more watch, after dropping the ones nobody reads.
    fn watch_room(&mut self) -> Result<(), Error> {
        let watches = &mut self.watches;
        watches.members.retain(Publisher::is_watched);
        watches.prefixes.retain(|(_, watch)| watch.is_watched());
        let count = watches.members.len() + watches.prefixes.len();
        if count >= MAX_WATCHES { Err(Error::TooManyWatches(count)) } else { Ok(()) }
    }

    /// Sends queued datagrams until the socket is busy.
    fn flush(&mut self, cx: &mut Context<'_>) {
        while let Some(transmit) = self.outbox.front() {
            match self.socket.poll_send_to(cx, &transmit.payload, transmit.to) {
                Poll::Ready(Ok(len)) => {
                    self.stats.datagrams_sent += 1;
                    self.stats.bytes_sent += len as u64;
                    self.stats.max_datagram_sent = self.stats.max_datagram_sent.max(len as u64);
                }
                Poll::Ready(Err(error)) => {
                    self.stats.send_errors += 1;
                    // Every failure is counted; the log is thinned to powers of two at `warn`.
                    let (node, to, count) = (&self.node.identity().name, transmit.to, self.stats.send_errors);
                    if count.is_power_of_two() {
                        tracing::warn!(%node, %to, %error, count, "send failed; datagram dropped");
                    } else {
                        tracing::debug!(%node, %to, %error, count, "send failed; datagram dropped");
                    }
                }
                Poll::Pending => return,
            }
            self.outbox.pop_front();
        }
    }

    /// Carries out a command; a shutdown's reply is returned for the loop to stop with.
    fn command(&mut self, command: Command) -> Option<oneshot::Sender<()>> {
        match command {
            Command::Set { key, value, reply } => {
                let _ = reply.send(self.node.set(key, value));
            }
            Command::SetWithTtl { key, value, ttl, reply } => {
                let _ = reply.send(self.node.set_with_ttl(key, value, ttl));
            }
            Command::Delete { key, reply } => {
                let _ = reply.send(self.node.delete(&key));
            }
            Command::SendTo { member, payload, reply } => {
                let _ = reply.send(self.node.send_to(&member, payload));
            }
            Command::Query { topic, payload, filter, timeout, reply } => {
                let _ = reply.send(self.node.query(&topic, payload, filter, timeout));
            }
            Command::Respond { query, payload, reply } => {
                let _ = reply.send(self.node.respond(&query, payload));
            }
            Command::RequestWrite { owner, key, value, reply } => {
                let sent = match value {
                    Some(value) => self.node.request_write(&owner, key, value),
                    None => self.node.request_delete(&owner, key),
                };
                let _ = reply.send(sent);
            }
            Command::AnswerWrite { request, refusal, reply } => {
                let answered = match refusal {
                    None => self.node.accept_write(&request).map(Some),
                    Some(reason) => self.node.refuse_write(&request, &reason).map(|()| None),
                };
                let _ = reply.send(answered);
            }
            Command::Broadcast { topic, payload, latest, reply } => {
                let sent = if latest {
                    self.node.broadcast_latest(&topic, payload)
                } else {
                    self.node.broadcast(&topic, payload)
                };
                let _ = reply.send(sent);
            }
            Command::Get { node, key, reply } => {
                let value =
                    self.node.get_entry(&node, &key).map(|(entry, version)| (entry.shared_value(), version));
                let _ = reply.send(value);
            }
            Command::Members { reply } => {
                let _ = reply.send(self.node.nodes().map(Member::from).collect());
            }
            Command::Entries { node, reply } => {
                let _ = reply.send(crate::state::entries(&self.node, &node));
            }
            Command::WithPrefix { prefix, reply } => {
                let _ = reply.send(crate::state::with_prefix(&self.node, &prefix));
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(crate::state::snapshot(&self.node));
            }
            Command::WatchMembers { reply } => {
                let watch = self.watch_room().map(|()| {
                    let (publisher, watch) = Publisher::new(crate::state::members(&self.node));
                    self.watches.members.push(publisher);
                    watch
                });
                let _ = reply.send(watch);
            }
            Command::WatchPrefix { prefix, reply } => {
                let watch = self.watch_room().map(|()| {
                    let (publisher, watch) = Publisher::new(crate::state::with_prefix(&self.node, &prefix));
                    self.watches.prefixes.push((prefix, publisher));
                    watch
                });
                let _ = reply.send(watch);
            }
            Command::AggregateSet { name, value, reply } => {
                let _ = reply.send(self.node.aggregate_set(&name, value));
            }
            Command::Aggregate { name, running, reply } => {
                let estimate =
                    if running { self.node.aggregate_running(&name) } else { self.node.aggregate(&name) };
                let _ = reply.send(estimate);
            }
            Command::Join { seeds, reply } => {
                self.node.join(seeds);
                if self.node.has_joined() {
                    let _ = reply.send(Ok(()));
                } else {
                    self.joins.push(reply);
                }
            }
            Command::Metrics { reply } => {
                let _ = reply.send(NodeMetrics {
                    core: self.node.metrics(),
                    driver: self.stats,
                    local_health: self.node.local_health(),
                });
            }
            Command::InstallKey { key, reply } => {
                let _ = reply.send(self.node.install_key(&key));
            }
            Command::UseKey { fingerprint, reply } => {
                let _ = reply.send(self.node.use_key(fingerprint));
            }
            Command::RemoveKey { fingerprint, reply } => {
                let _ = reply.send(self.node.remove_key(fingerprint));
            }
            Command::Keys { reply } => {
                let _ = reply.send(self.node.keys());
            }
            Command::SetEncryption { mode, reply } => {
                let _ = reply.send(self.node.set_encryption(mode));
            }
            Command::Encryption { reply } => {
                let _ = reply.send(self.node.encryption());
            }
            Command::KeyringStatus { reply } => {
                let _ = reply.send(self.node.keyring_status());
            }
            Command::Leave { reply } => {
                let give_up = Instant::now() + self.node.config().swim.leave_timeout + LEAVE_GRACE;
                self.node.leave();
                self.leaves.push(PendingLeave { give_up, reply });
            }
            Command::Shutdown { reply } => return Some(reply),
        }
        self.drain();
        None
    }

    /// Answers the leaves the core has not completed in time.
    fn expire_leaves(&mut self, now: Instant) {
        let timeout = self.node.config().swim.leave_timeout + LEAVE_GRACE;
        let (due, waiting) = self.leaves.drain(..).partition(|leave| leave.give_up <= now);
        self.leaves = waiting;
        for leave in due {
            let _ = leave.reply.send(Err(Error::LeaveTimedOut(timeout)));
        }
    }
}

/// Yields to the runtime, asking to be polled again at once.
fn yield_now(cx: &mut Context<'_>) -> Flow {
    cx.waker().wake_by_ref();
    Flow::Idle
}
