//! The commands that change a simulated cluster: writes, keyring changes, crashes and
//! restarts, pauses, clock jumps, partitions and link models, new nodes, forged datagrams.
//! Each takes effect at the simulation's current time.

use super::*;

impl Simulation {
    // ----- commands (take effect now) -----

    /// Schedules `action` at virtual time `at` (at once if `at` has passed).
    pub fn schedule(&mut self, at: Duration, action: Action) {
        self.queue.push(at.max(self.now), Scheduled::Action(action));
    }

    /// Schedules every action of `scenario`.
    pub fn load(&mut self, scenario: &Scenario) {
        for (at, action) in scenario.actions() {
            self.schedule(*at, action.clone());
        }
    }

    /// Node `index` writes `key = value` now.
    pub fn set(&mut self, index: usize, key: &str, value: impl Into<Bytes>) -> Result<WriteId, SimError> {
        let value = value.into();
        let node = self.live_node(index)?;
        let version = node.set(key, value.clone())?;
        let id = self.record_write(index, key, Some(value), version);
        self.after_command(index)?;
        Ok(id)
    }

    /// Node `index` runs an application-message command now: a broadcast, a query, a
    /// write request, an answer ([`Node::broadcast`], [`Node::query`],
    /// [`Node::request_write`], [`Node::accept_write`], ...). A write it makes in its own
    /// table (an accepted request) is logged as any write.
    pub fn command<T>(
        &mut self,
        index: usize,
        command: impl FnOnce(&mut Node<ChaCha8Rng>) -> Result<T, crate::MessageError>,
    ) -> Result<T, SimError> {
        let result = command(self.live_node(index)?)?;
        self.record_own_writes(index);
        self.after_command(index)?;
        Ok(result)
    }

    /// Logs the writes node `index` made in its own table that the ledger lacks: the ones
    /// it made on its own, accepting a write request.
    pub(crate) fn record_own_writes(&mut self, index: usize) {
        let Some(node) = self.slots.get(index).and_then(|slot| slot.node.as_ref()) else { return };
        let generation = self.generations[index];
        let logged = self.ledger.log(index, generation).map_or(0, |log| log.max_version());
        let local = node.table.local();
        if local.max_version <= logged {
            return;
        }
        let writes: Vec<(String, Option<Bytes>, u64)> = local
            .entries_after(logged)
            .map(|(version, entry)| {
                (entry.key().to_owned(), (!entry.deleted).then(|| entry.shared_value()), version)
            })
            .collect();
        for (key, value, version) in writes {
            self.record_write(index, &key, value, version);
        }
    }

    /// Node `index` deletes `key` now; `None` when it did not hold the key.
    pub fn delete(&mut self, index: usize, key: &str) -> Result<Option<WriteId>, SimError> {
        let node = self.live_node(index)?;
        let Some(version) = node.delete(key)? else { return Ok(None) };
        let id = self.record_write(index, key, None, version);
        self.after_command(index)?;
        Ok(Some(id))
    }

    /// Node `index` installs `key` in its keyring now (see [`Node::install_key`]). A node
    /// restarted later starts with an empty keyring and encryption off.
    pub fn install_key(&mut self, index: usize, key: &SecretKey) -> Result<KeyFingerprint, SimError> {
        self.keyring_command(index, |node| node.install_key(key))
    }

    /// Node `index` makes an installed key its primary now (see [`Node::use_key`]).
    pub fn use_key(&mut self, index: usize, fingerprint: KeyFingerprint) -> Result<(), SimError> {
        self.keyring_command(index, |node| node.use_key(fingerprint))
    }

    /// Node `index` removes a key now (see [`Node::remove_key`]).
    pub fn remove_key(&mut self, index: usize, fingerprint: KeyFingerprint) -> Result<(), SimError> {
        self.keyring_command(index, |node| node.remove_key(fingerprint))
    }

    /// Node `index` moves to another encryption mode now (see [`Node::set_encryption`]).
    pub fn set_encryption(&mut self, index: usize, mode: EncryptionMode) -> Result<(), SimError> {
        self.keyring_command(index, |node| node.set_encryption(mode))
    }

    /// Runs a keyring command on a node and logs the write by which the node publishes its
    /// keyring, so that the ledger stays in step with the node's table.
    fn keyring_command<T>(
        &mut self,
        index: usize,
        command: impl FnOnce(&mut Node<ChaCha8Rng>) -> Result<T, KeyringError>,
    ) -> Result<T, SimError> {
        let node = self.live_node(index)?;
        let before = node.node(node.identity().name.as_str()).map_or(0, |view| view.max_version);
        let result = command(node)?;
        let name = node.identity().name.clone();
        let after = node.node(&name).map_or(0, |view| view.max_version);
        if after > before {
            let value = node.get_entry(&name, KEYRING_KEY).map(|(entry, _)| entry.shared_value());
            self.record_write(index, KEYRING_KEY, value, after);
        }
        self.after_command(index)?;
        Ok(result)
    }

    /// Node `index` crashes now: its process and state are gone.
    pub fn crash(&mut self, index: usize) -> Result<(), SimError> {
        let slot = self.slots.get_mut(index).ok_or(SimError::NoSuchNode(index))?;
        if slot.node.take().is_none() {
            return Err(SimError::NodeDown(index));
        }
        slot.inbox.clear();
        slot.paused = false;
        slot.epoch += 1;
        slot.armed = None;
        self.memory.forget(index);
        self.observer.node_down(index, self.now);
        self.trace.record(Record::Action, self.now, index, 1);
        Ok(())
    }

    /// Node `index` starts again now under its next generation, with an empty table, and
    /// joins the restart seeds. A node that is up is crashed first.
    pub fn restart(&mut self, index: usize) -> Result<(), SimError> {
        if index >= self.slots.len() {
            return Err(SimError::NoSuchNode(index));
        }
        if self.slots[index].node.is_some() {
            self.crash(index)?;
        }
        self.start_again(index)
    }

    /// As [`restart`](Self::restart), at a new address: the node keeps its name but listens
    /// at `address` from now on, and datagrams to its old address go nowhere. `address`
    /// must not be another node's, nor of the form of a default [`node_address`] other than
    /// the node's own (to move back).
    pub fn restart_at(&mut self, index: usize, address: SocketAddr) -> Result<(), SimError> {
        if index >= self.slots.len() {
            return Err(SimError::NoSuchNode(index));
        }
        let default = node_address(index);
        let taken = self.index_at(address).is_some_and(|other| other != index)
            || index_of_address(address, 1 << 24).is_some_and(|other| other != index);
        if taken {
            return Err(SimError::Setup(format!("node {index} cannot move to {address}: it is taken")));
        }
        if self.slots[index].node.is_some() {
            self.crash(index)?;
        }
        let old = std::mem::replace(&mut self.addresses[index], address);
        self.moved.remove(&old);
        if address != default {
            self.moved.insert(address, index);
        }
        self.trace.record(Record::Action, self.now, index, 11);
        self.start_again(index)
    }

    /// Starts crashed node `index` under its next generation and joins the restart seeds.
    fn start_again(&mut self, index: usize) -> Result<(), SimError> {
        let generation = self.generations[index] + 1;
        let mut node = self.start_node(index, generation)?;
        self.generations[index] = generation;
        self.restarted[index] = true;
        let seeds: Vec<usize> = if self.restart_seeds.is_empty() {
            vec![usize::from(index == 0)]
        } else {
            self.restart_seeds.clone()
        };
        let n = self.slots.len();
        let addresses = &self.addresses;
        node.join(seeds.into_iter().filter(|s| *s != index && *s < n).map(|s| addresses[s]));
        self.slots[index].node = Some(node);
        self.observer.node_up();
        self.trace.record(Record::Action, self.now, index, 2);
        self.drain(index);
        Ok(())
    }

    /// Pauses node `index`: datagrams to it wait, its timers do not fire.
    pub fn pause(&mut self, index: usize) -> Result<(), SimError> {
        self.live_node(index)?;
        let slot = &mut self.slots[index];
        slot.paused = true;
        slot.epoch += 1;
        slot.armed = None;
        self.trace.record(Record::Action, self.now, index, 3);
        Ok(())
    }

    /// Resumes node `index`: it handles what arrived meanwhile, then its overdue timers.
    pub fn resume(&mut self, index: usize) -> Result<(), SimError> {
        self.live_node(index)?;
        self.slots[index].paused = false;
        self.trace.record(Record::Action, self.now, index, 4);
        while let Some((from, payload)) = self.slots[index].inbox.pop_front() {
            self.handle(index, from, &payload);
        }
        self.drain(index);
        self.after_command(index)
    }

    /// Node `index`'s clock jumps now.
    pub fn jump_clock(&mut self, index: usize, jump: ClockJump) -> Result<(), SimError> {
        self.live_node(index)?;
        let slot = &mut self.slots[index];
        slot.clock.jump(jump);
        slot.armed = None;
        self.trace.record(Record::Action, self.now, index, 5);
        self.drain(index);
        Ok(())
    }

    /// From now on node `index` handles its datagrams and timers late (a slow, CPU-starved
    /// process; see [`ProcessingDelay`]). Datagrams already waiting keep their time; a
    /// restart keeps the delay (it is the machine that is slow).
    pub fn set_processing_delay(&mut self, index: usize, delay: ProcessingDelay) -> Result<(), SimError> {
        let slot = self.slots.get_mut(index).ok_or(SimError::NoSuchNode(index))?;
        slot.delay = delay;
        slot.armed = None;
        self.trace.record(Record::Action, self.now, index, 12);
        self.trace.bytes(&delay.datagrams.as_nanos().to_le_bytes());
        self.trace.bytes(&delay.timers.as_nanos().to_le_bytes());
        self.drain(index);
        Ok(())
    }

    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub fn partition(
        &mut self,
        a: impl IntoIterator<Item = usize>,
        b: impl IntoIterator<Item = usize>,
    ) -> CutId {
        let (a, b): (NodeSet, NodeSet) = (a.into_iter().collect(), b.into_iter().collect());
        let id = self.network.partition(a, b);
        self.trace.record(Record::Action, self.now, id.0 as usize, 6);
        id
    }

    /// Cuts the links from nodes of `from` to nodes of `to`; the other direction still works.
    pub fn cut_one_way(
        &mut self,
        from: impl IntoIterator<Item = usize>,
        to: impl IntoIterator<Item = usize>,
    ) -> CutId {
        let id = self.network.cut(from.into_iter().collect(), to.into_iter().collect());
        self.trace.record(Record::Action, self.now, id.0 as usize, 7);
        id
    }

    /// Heals one cut or partition; returns whether it was still there.
    pub fn heal(&mut self, id: CutId) -> bool {
        self.trace.record(Record::Action, self.now, id.0 as usize, 8);
        self.network.heal(id)
    }

    /// Heals every cut and partition.
    pub fn heal_all(&mut self) {
        self.trace.record(Record::Action, self.now, 0, 9);
        self.network.heal_all();
    }

    /// Sets the model of the directed link `from -> to`.
    pub fn set_link(&mut self, from: usize, to: usize, link: LinkModel) -> Result<(), SimError> {
        link.validate()?;
        self.network.set_link(from, to, link);
        Ok(())
    }

    /// Sets the model of every link that has none of its own.
    pub fn set_default_link(&mut self, link: LinkModel) -> Result<(), SimError> {
        link.validate()?;
        self.network.set_default(link);
        Ok(())
    }

    /// Adds a node (next index, generation 1, empty table) that joins `seeds` now; returns
    /// its index.
    pub fn add_node(&mut self, seeds: impl IntoIterator<Item = usize>) -> Result<usize, SimError> {
        let index = self.slots.len();
        self.names.push(Arc::from(node_name(index)));
        self.addresses.push(node_address(index));
        self.generations.push(1);
        self.restarted.push(false);
        let clock = NodeClock::default();
        let mut node = match self.start_node(index, 1) {
            Ok(node) => node,
            Err(e) => {
                self.names.pop();
                self.addresses.pop();
                self.generations.pop();
                self.restarted.pop();
                return Err(e);
            }
        };
        let addresses = &self.addresses;
        node.join(seeds.into_iter().filter(|s| *s < index).map(|s| addresses[s]));
        self.slots.push(Slot::running(node, clock));
        self.observer.add_node();
        self.drain(index);
        Ok(index)
    }

    /// Hands `datagram` to node `to` now, as if it came from `from`: for testing how nodes
    /// treat hostile or hand-crafted input (see [`forge`](Self::forge)).
    pub fn inject(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) -> Result<(), SimError> {
        let local = {
            let slot = self.slots.get_mut(to).ok_or(SimError::NoSuchNode(to))?;
            slot.clock.local(self.base, self.now)
        };
        let node = self.live_node(to)?;
        node.handle_input(local, from, datagram);
        self.trace.delivered(self.now, usize::MAX, to, datagram);
        self.drain(to);
        self.after_command(to)
    }

    /// Encodes an envelope carrying `body` as node `from` would send it (its current
    /// identity, the cluster's name): a datagram to [`inject`](Self::inject).
    pub fn forge(&self, from: usize, body: v1::envelope::Body) -> Bytes {
        let address = self.address(from).unwrap_or_else(|| node_address(from));
        let ip = match address.ip() {
            IpAddr::V4(ip) => Bytes::copy_from_slice(&ip.octets()),
            IpAddr::V6(ip) => Bytes::copy_from_slice(&ip.octets()),
        };
        let envelope = v1::Envelope {
            protocol_version: gossip_proto::PROTOCOL_VERSION,
            cluster: self.node_config.cluster.clone(),
            sender: Some(v1::NodeIdentity {
                name: self.name(from).map_or_else(|| node_name(from), str::to_owned),
                generation: self.generation(from).unwrap_or(1),
                address: Some(v1::Address { ip, port: u32::from(address.port()) }),
            }),
            body: Some(body),
            membership: Vec::new(),
            broadcasts: Vec::new(),
        };
        envelope.encode_to_vec().into()
    }

    // ----- internals of the commands -----

    /// The node at `index`, if it exists and is up.
    fn live_node(&mut self, index: usize) -> Result<&mut Node<ChaCha8Rng>, SimError> {
        self.slots
            .get_mut(index)
            .ok_or(SimError::NoSuchNode(index))?
            .node
            .as_mut()
            .ok_or(SimError::NodeDown(index))
    }

    fn record_write(&mut self, index: usize, key: &str, value: Option<Bytes>, version: u64) -> WriteId {
        let generation = self.generations[index];
        let deleted = value.is_none();
        let logged = self.ledger.record(index, generation, key, value);
        debug_assert_eq!(logged, version, "the ledger is out of step with node {index}");
        self.trace.record(Record::Action, self.now, index, 10);
        self.trace.bytes(key.as_bytes());
        self.observer.track(index, generation, Arc::from(key), version, deleted, self.now)
    }

    /// Counts a command as a step and checks the node it touched.
    fn after_command(&mut self, index: usize) -> Result<(), SimError> {
        self.steps += 1;
        self.check_if_due(index)
    }

    /// Runs a scheduled action; returns the node it touched, if one.
    pub(crate) fn apply(&mut self, action: Action) -> Result<Option<usize>, SimError> {
        let result = match action {
            Action::Set { node, key, value } => self.set(node, &key, value).map(|_| ()),
            Action::Delete { node, key } => self.delete(node, &key).map(|_| ()),
            Action::AggregateSet { node, name, value } => self.aggregate_set(node, &name, value),
            Action::Crash(node) => self.crash(node),
            Action::Restart(node) => self.restart(node),
            Action::RestartAt { node, address } => self.restart_at(node, address),
            Action::SetProcessingDelay { node, delay } => self.set_processing_delay(node, delay),
            Action::Pause(node) => self.pause(node),
            Action::Resume(node) => self.resume(node),
            Action::ClockJump { node, jump } => self.jump_clock(node, jump),
            Action::Partition { a, b, heal_after } => {
                let id = self.partition(a, b);
                self.heal_later(id, heal_after);
                Ok(())
            }
            Action::CutOneWay { from, to, heal_after } => {
                let id = self.cut_one_way(from, to);
                self.heal_later(id, heal_after);
                Ok(())
            }
            Action::Heal(id) => {
                self.heal(id);
                Ok(())
            }
            Action::HealAll => {
                self.heal_all();
                Ok(())
            }
            Action::SetLink { from, to, link } => self.set_link(from, to, link),
            Action::SetDefaultLink(link) => self.set_default_link(link),
        };
        match result {
            Ok(()) => Ok(None),
            Err(SimError::NodeDown(_) | SimError::NoSuchNode(_) | SimError::Write(_)) => {
                self.skipped_actions += 1;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn heal_later(&mut self, id: CutId, after: Option<Duration>) {
        if let Some(after) = after {
            self.schedule(self.now + after, Action::Heal(id));
        }
    }
}
