//! Running the cluster: one step pops the earliest item of the event queue (a datagram
//! arriving, a node's timer, a scheduled action), feeds it to the node, drains the node's
//! outputs into the network by the drain rule, re-arms its timer, and checks invariants.

use std::time::Duration;

use crate::event::{Event, Output};
use crate::sim::app_events::{KeyEvent, Seen};
use crate::sim::cluster::{Scheduled, Simulation, index_at, index_of_name};
use crate::sim::invariants::{self, ViolationKind};
use crate::sim::kind::body_kind;
use crate::sim::network::Fate;
use crate::sim::trace::Record;
use crate::sim::watch::MemberRecord;
use crate::sim::{SimError, Violation};

impl Simulation {
    /// Runs the earliest item of the event queue. Returns `false` when the queue is empty.
    /// After an invariant failed, every call returns that failure.
    pub fn step(&mut self) -> Result<bool, SimError> {
        if let Some(violation) = &self.failure {
            return Err(SimError::Invariant(violation.clone()));
        }
        let Some((at, item)) = self.queue.pop() else { return Ok(false) };
        self.now = self.now.max(at);
        self.steps += 1;
        let touched = match item {
            Scheduled::Deliver { from, to, payload } => self.deliver(from as usize, to as usize, payload),
            Scheduled::Handle { from, to, generation, payload } => {
                let to = to as usize;
                if self.generations[to] != generation || self.slots[to].node.is_none() {
                    self.observer.stats.to_down_nodes += 1;
                    None
                } else {
                    self.receive(from as usize, to, payload)
                }
            }
            Scheduled::Timer { node, epoch } => self.fire(node as usize, epoch)?,
            Scheduled::Action(action) => {
                self.trace.record(Record::Action, self.now, 0, 0);
                self.apply(action)?
            }
        };
        if let Some(node) = touched {
            self.check_if_due(node)?;
        }
        Ok(true)
    }

    /// Runs every item due up to `deadline`, then sets the clock to `deadline`.
    pub fn run_until(&mut self, deadline: Duration) -> Result<(), SimError> {
        while self.queue.next_time().is_some_and(|at| at <= deadline) {
            self.step()?;
        }
        self.now = self.now.max(deadline);
        Ok(())
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        self.run_until(self.now + duration)
    }

    /// Runs until `done` holds (tested before the first step and after each one) or
    /// `deadline` passes; returns whether it holds. Keep `done` cheap: it runs every step.
    pub fn run_until_true(
        &mut self,
        deadline: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, SimError> {
        if done(self) {
            return Ok(true);
        }
        while self.queue.next_time().is_some_and(|at| at <= deadline) {
            self.step()?;
            if done(self) {
                return Ok(true);
            }
        }
        self.now = self.now.max(deadline);
        Ok(done(self))
    }

    /// Checks every invariant on every live node, comparing every replica with the ledger
    /// (O(total replica size)): for the end of a run, or at chosen moments of a large one.
    pub fn check_all(&mut self) -> Result<(), SimError> {
        for index in 0..self.slots.len() {
            self.check(index, true)?;
        }
        Ok(())
    }

    /// Checks node `index` if the check policy says this step is due.
    pub(crate) fn check_if_due(&mut self, index: usize) -> Result<(), SimError> {
        if self.checks.due(self.steps) { self.check(index, false) } else { Ok(()) }
    }

    fn check(&mut self, index: usize, full: bool) -> Result<(), SimError> {
        let Some(node) = self.slots.get(index).and_then(|slot| slot.node.as_ref()) else { return Ok(()) };
        let len = self.names.len();
        let owner_of = |name: &str| index_of_name(name, len);
        match invariants::check_node(index, node, &self.ledger, &mut self.memory, owner_of, full) {
            Ok(()) => Ok(()),
            Err(kind) => Err(self.fail(index, kind)),
        }
    }

    /// Stops the run with a violation.
    pub(crate) fn fail(&mut self, index: usize, kind: ViolationKind) -> SimError {
        let violation = Box::new(Violation {
            at: self.now,
            node: index,
            node_name: self.names.get(index).map_or_else(String::new, |n| n.to_string()),
            kind,
            seed: self.seed,
            replay: self.replay.clone(),
        });
        self.failure = Some(violation.clone());
        SimError::Invariant(violation)
    }

    /// A datagram reaches node `to`; returns the node if it handled it.
    fn deliver(&mut self, from: usize, to: usize, payload: bytes::Bytes) -> Option<usize> {
        if self.network.blocked(from, to) {
            self.observer.stats.blocked += 1;
            self.trace.record(Record::Blocked, self.now, from, to);
            return None;
        }
        let slot = &mut self.slots[to];
        if slot.node.is_none() {
            self.observer.stats.to_down_nodes += 1;
            return None;
        }
        if !slot.delay.datagrams.is_zero() {
            // A slow node: the datagram waits, behind those that arrived before it.
            let at = (self.now + slot.delay.datagrams).max(slot.last_handle);
            slot.last_handle = at;
            self.observer.stats.held_by_slow_nodes += 1;
            let (from, to, generation) = (from as u32, to as u32, self.generations[to]);
            self.queue.push(at, Scheduled::Handle { from, to, generation, payload });
            return None;
        }
        self.receive(from, to, payload)
    }

    /// Node `to` takes a datagram from its socket: it handles it now unless it is paused.
    fn receive(&mut self, from: usize, to: usize, payload: bytes::Bytes) -> Option<usize> {
        let slot = &mut self.slots[to];
        if slot.paused {
            if slot.inbox.len() >= self.paused_buffer {
                self.observer.stats.dropped_while_paused += 1;
            } else {
                self.observer.stats.held_while_paused += 1;
                slot.inbox.push_back((from, payload));
            }
            return None;
        }
        self.handle(to, from, &payload);
        self.drain(to);
        Some(to)
    }

    /// Node `to` handles a datagram from node `from` (without draining it).
    pub(crate) fn handle(&mut self, to: usize, from: usize, payload: &[u8]) {
        let slot = &mut self.slots[to];
        let Some(node) = slot.node.as_mut() else { return };
        let local = slot.clock.local(self.base, self.now);
        self.observer.stats.delivered.add(payload.len());
        self.trace.delivered(self.now, from, to, payload);
        node.handle_input(local, self.addresses[from], payload);
        if self.own_writes {
            self.record_own_writes(to);
        }
    }

    /// A timer event pops; returns the node if the timer was current and fired.
    fn fire(&mut self, index: usize, epoch: u64) -> Result<Option<usize>, SimError> {
        let slot = &mut self.slots[index];
        if slot.epoch != epoch || slot.paused {
            return Ok(None);
        }
        let Some(node) = slot.node.as_mut() else { return Ok(None) };
        slot.armed = None;
        let local = slot.clock.local(self.base, self.now);
        node.handle_timeout(local);
        let next = node.poll_timeout();
        self.trace.record(Record::Timer, self.now, index, 0);
        if next <= local {
            let deadline = self.slots[index].clock.virtual_time_of(self.base, next);
            return Err(self.fail(index, ViolationKind::TimerStuck { deadline }));
        }
        self.drain(index);
        Ok(Some(index))
    }

    /// Drains node `index`'s outputs by the drain rule: datagrams into the network, events
    /// into the observer; then re-arms its timer.
    pub(crate) fn drain(&mut self, index: usize) {
        let now = self.now;
        let len = self.slots.len();
        let Self {
            slots,
            observer,
            network,
            rng,
            queue,
            trace,
            events,
            membership,
            generations,
            restarted,
            addresses,
            moved,
            app_events,
            ledger,
            answer_queries,
            ..
        } = self;
        let mut violation = None;
        // Key events of this drain, and the restarts among them: a key event drained before
        // its owner's restart (one datagram can carry both) is of the old generation.
        let mut key_events = Vec::new();
        let mut restarts: Vec<(usize, usize, u64)> = Vec::new();
        // Members (re)discovered: after a member is forgotten, its table is learned anew.
        let mut discoveries: Vec<(usize, usize)> = Vec::new();
        // Queries to answer once the node's outputs are drained.
        let mut queries = Vec::new();
        let Some(node) = slots[index].node.as_mut() else { return };
        while let Some(output) = node.poll() {
            match output {
                Output::Transmit(transmit) => {
                    let kind = body_kind(&transmit.payload);
                    observer.sent(index, transmit.payload.len(), kind);
                    let Some(to) = index_at(addresses, moved, transmit.to) else {
                        observer.stats.undeliverable += 1;
                        continue;
                    };
                    observer.sent_to(now, index, to, kind);
                    match network.send(index, to, rng) {
                        Fate::Lost => {
                            observer.stats.lost += 1;
                            trace.record(Record::Lost, now, index, to);
                        }
                        Fate::Arrives(latency, duplicate) => {
                            let (from, to32) = (index as u32, to as u32);
                            if let Some(second) = duplicate {
                                observer.stats.duplicated += 1;
                                let payload = transmit.payload.clone();
                                queue.push(now + second, Scheduled::Deliver { from, to: to32, payload });
                            }
                            let payload = transmit.payload;
                            queue.push(now + latency, Scheduled::Deliver { from, to: to32, payload });
                        }
                    }
                }
                Output::Event(event) => {
                    trace.event(now, index, &event);
                    if let (true, Event::Query { query, .. }) = (*answer_queries, &event) {
                        queries.push(query.clone());
                    }
                    if let Event::KeysChanged { node: owner, changes } = &event {
                        if let Some(owner_index) = index_of_name(owner, len) {
                            // Replicas can hold an older generation only of nodes that restarted.
                            let generation = if restarted[owner_index] {
                                node.node(owner).map_or(generations[owner_index], |view| view.generation)
                            } else {
                                generations[owner_index]
                            };
                            for change in changes {
                                observer.learned(
                                    index,
                                    owner_index,
                                    generation,
                                    change.key(),
                                    change.version(),
                                    now,
                                );
                            }
                            if app_events.is_some() {
                                let changes = changes.iter().map(|change| KeyEvent::of(owner, change));
                                key_events.extend(changes.map(|change| (owner_index, generation, change)));
                            }
                        }
                    }
                    if let (Some(_), Event::MemberRestarted { name, old_generation, .. }) =
                        (&app_events, &event)
                    {
                        if let Some(owner_index) = index_of_name(name, len) {
                            restarts.push((key_events.len(), owner_index, *old_generation));
                        }
                    }
                    if let (Some(_), Event::MemberDiscovered { name, .. }) = (&app_events, &event) {
                        if let Some(owner_index) = index_of_name(name, len) {
                            discoveries.push((key_events.len(), owner_index));
                        }
                    }
                    if let Some(log) = membership.as_mut() {
                        let index_of = |name: &str| index_of_name(name, len);
                        let lookup = |name: &str| node.node(name).map(|view| view.incarnation);
                        if let Some(record) = MemberRecord::from_event(now, index, &event, index_of, lookup) {
                            log.push(record);
                        }
                    }
                    if let Some(log) = events.as_mut() {
                        log.push((now, index, event));
                    }
                }
            }
        }
        if let Some(app_events) = app_events.as_mut() {
            for (at, (owner, generation, event)) in key_events.iter().enumerate() {
                for (_, found) in discoveries.iter().filter(|(before, _)| *before == at) {
                    app_events.forget(index, *found);
                }
                let owner_generation = restarts
                    .iter()
                    .filter(|(before, restarted, _)| *restarted == *owner && at < *before)
                    .map(|(_, _, old)| *old)
                    .min()
                    .unwrap_or(*generation);
                let seen = Seen {
                    observer: index,
                    observer_generation: generations[index],
                    owner: *owner,
                    owner_generation,
                };
                if let Some(kind) = app_events.check(seen, event, ledger) {
                    violation.get_or_insert(kind);
                }
            }
            // Discoveries after the last key event of the drain: its table comes in later
            // drains, learned anew all the same.
            for (_, found) in discoveries.iter().filter(|(before, _)| *before == key_events.len()) {
                app_events.forget(index, *found);
            }
        }
        if let Some(kind) = violation {
            // The next step reports it.
            let _ = self.fail(index, kind);
        }
        if !queries.is_empty() {
            if let Some(node) = self.slots[index].node.as_mut() {
                let answer = bytes::Bytes::from(node.identity().name.clone());
                for query in &queries {
                    // Refused only past its timeout or when answered already: nothing to do.
                    let _ = node.respond(query, answer.clone());
                }
            }
            self.drain(index);
            return;
        }
        self.rearm(index);
    }

    /// Puts node `index`'s next deadline on the queue, unless it is already there.
    fn rearm(&mut self, index: usize) {
        let now = self.now;
        let slot = &mut self.slots[index];
        let Some(node) = slot.node.as_ref() else { return };
        if slot.paused {
            return;
        }
        let deadline = node.poll_timeout();
        let at = (slot.clock.virtual_time_of(self.base, deadline) + slot.delay.timers).max(now);
        if slot.armed != Some(at) {
            slot.epoch += 1;
            slot.armed = Some(at);
            self.queue.push(at, Scheduled::Timer { node: index as u32, epoch: slot.epoch });
        }
    }
}
