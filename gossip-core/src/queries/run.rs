//! How the node runs queries: a query is an application broadcast with a `Query` header
//! (filter, timeout, where answers go), spread like any other; the members it selects get
//! [`Event::Query`] and may answer once, straight to the asker, which collects the answers
//! until the timeout ([`Event::QueryResponse`], then [`Event::QueryFinished`]).

use std::time::Duration;

use bytes::Bytes;
use gossip_proto::v1::{self, envelope::Body};
use rand::RngExt;
use rand_core::Rng;

use crate::delta::valid_name;
use crate::error::MessageError;
use crate::event::Event;
use crate::identity::{Identity, address_from_wire, address_to_wire};
use crate::node::Node;

use super::{QueryFilter, QueryId};

/// Most names a query's filter may list.
pub(crate) const MAX_FILTER_NAMES: usize = 64;

impl<R: Rng> Node<R> {
    /// Asks the members `filter` selects: each gets [`Event::Query`] and may answer with
    /// [`respond`](Self::respond). Answers come back as [`Event::QueryResponse`] (one per
    /// member) until `timeout`, then [`Event::QueryFinished`] says how many came. The query
    /// spreads as a broadcast (see [`broadcast`](Self::broadcast)); this node does not get
    /// its own. Returns its id.
    pub fn query(
        &mut self,
        topic: &str,
        payload: impl Into<Bytes>,
        filter: QueryFilter,
        timeout: Duration,
    ) -> Result<u64, MessageError> {
        let payload = payload.into();
        self.check_topic(topic)?;
        let max = self.config.messages.max_query_timeout;
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        if timeout_ms == 0 || timeout > max {
            return Err(MessageError::InvalidTimeout { timeout, max });
        }
        let mut query = v1::Query {
            reply_to: Some(address_to_wire(self.identity.address)),
            timeout_ms,
            ..Default::default()
        };
        match filter {
            QueryFilter::All => {}
            QueryFilter::Names(names) => {
                if names.len() > MAX_FILTER_NAMES || !names.iter().all(|name| valid_name(name, &self.config))
                {
                    return Err(MessageError::InvalidFilter);
                }
                query.names = names;
            }
            QueryFilter::Key { key, value } => {
                if key.is_empty() || key.len() > self.config.max_key_size {
                    return Err(MessageError::InvalidFilter);
                }
                if value.as_ref().is_some_and(|value| value.len() > self.config.max_value_size) {
                    return Err(MessageError::InvalidFilter);
                }
                (query.key, query.value) = (key, value);
            }
        }
        self.check_message(topic, &payload, Some(&query))?;
        if !self.queries.has_room() {
            return Err(MessageError::TooManyQueries { max: self.config.messages.max_outstanding_queries });
        }
        let (name, generation, now) = (&self.identity.name, self.identity.generation, self.now);
        let id =
            self.messages.originate(name, generation, topic.to_owned(), payload, false, Some(query), now);
        self.queries.ask(id, now + timeout);
        Ok(id)
    }

    /// Answers `query` ([`Event::Query`]) with `payload`, in one datagram straight to the
    /// asker (best effort), and in copies through `messages.query_relays` random members,
    /// each after a random delay (`messages.query_relay_delay`). A query is answered once,
    /// within its timeout.
    pub fn respond(&mut self, query: &QueryId, payload: impl Into<Bytes>) -> Result<(), MessageError> {
        let payload = payload.into();
        self.check_message("", &payload, None)?;
        let (address, deadline) = self
            .queries
            .answer(query, self.now)
            .ok_or_else(|| MessageError::UnknownQuery { query: query.clone() })?;
        let response =
            v1::QueryResponse { generation: query.generation, id: query.id, payload, ..Default::default() };
        // The copies through relays go later, each at its own random time (see
        // `MessageConfig::query_relay_delay`): not in the burst of everyone's answers.
        let longest = self.config.messages.query_relay_delay.min((deadline - self.now) / 2);
        let relays = self.random_live_members(self.config.messages.query_relays, &[query.origin.as_str()]);
        for relay in relays {
            let relayed = v1::QueryResponse { relay_to: query.origin.clone(), ..response.clone() };
            let due = self.now + longest.mul_f64(self.rng.random::<f64>());
            if let Some((relay, relayed)) = self.queries.delay_relayed(due, relay, relayed) {
                self.send(relay, Body::QueryResponse(relayed));
            }
        }
        self.send(address, Body::QueryResponse(response));
        self.send_due_relayed();
        Ok(())
    }

    /// Sends the answers whose relay delay is up.
    fn send_due_relayed(&mut self) {
        for (relay, relayed) in self.queries.take_due_relayed(self.now) {
            self.send(relay, Body::QueryResponse(relayed));
        }
    }

    /// A query (a new broadcast with a `Query` header, checked): delivered if its filter
    /// selects this node.
    pub(crate) fn deliver_query(&mut self, broadcast: v1::UserBroadcast) {
        let v1::UserBroadcast { origin, generation, id, topic, payload, query, .. } = broadcast;
        let Some(query) = query else { return };
        if !self.selected_by(&query) {
            return;
        }
        // Answers go to the asker's address as this node knows it, else where the query says.
        let known = self
            .table
            .by_name(&origin)
            .filter(|replica| replica.generation == generation && replica.state.is_live())
            .map(|replica| replica.address);
        let Some(reply_to) = known.or_else(|| address_from_wire(query.reply_to.as_ref())) else { return };
        let timeout =
            Duration::from_millis(u64::from(query.timeout_ms)).min(self.config.messages.max_query_timeout);
        let query = QueryId { origin, generation, id };
        self.queries.receive(query.clone(), reply_to, self.now + timeout);
        self.out.metrics.queries_delivered += 1;
        self.out.events.emit(Event::Query { query, topic, payload });
    }

    /// Whether `query`'s filter selects this node.
    fn selected_by(&self, query: &v1::Query) -> bool {
        let named = query.names.is_empty() || query.names.contains(&self.identity.name);
        let holds = query.key.is_empty()
            || self.table.local().get(&query.key).is_some_and(|(entry, _)| {
                query.value.as_ref().is_none_or(|value| value[..] == *entry.value())
            });
        named && holds
    }

    /// An answer (checked) from `sender`: to one of this node's queries, or to pass on once
    /// to the asker.
    pub(crate) fn on_query_response(&mut self, sender: &Identity, response: v1::QueryResponse) {
        if !response.relay_to.is_empty() {
            self.relay_query_response(sender, response);
            return;
        }
        let responder = if response.responder.is_empty() { &sender.name } else { &response.responder };
        let current = response.generation == self.identity.generation;
        if !current || !self.queries.take_answer(response.id, responder) {
            self.out.metrics.query_responses_dropped += 1;
            return;
        }
        self.out.metrics.query_responses += 1;
        self.out.events.emit(Event::QueryResponse {
            query: response.id,
            from: responder.clone(),
            payload: response.payload,
        });
    }

    /// Passes an answer of `sender` on to the asker it names, once (as a relay).
    fn relay_query_response(&mut self, sender: &Identity, response: v1::QueryResponse) {
        if !self.messages.allow_message(&sender.name, self.now) {
            self.out.metrics.messages_rate_limited += 1;
            return;
        }
        let Some(asker) = self.live_peer_address(&response.relay_to) else {
            self.out.metrics.query_responses_dropped += 1;
            return;
        };
        let relayed =
            v1::QueryResponse { relay_to: String::new(), responder: sender.name.clone(), ..response };
        self.send(asker, Body::QueryResponse(relayed));
    }

    /// Ends this node's queries whose timeout is up.
    pub(crate) fn drive_queries(&mut self) {
        if self.queries.deadline().is_none_or(|due| self.now < due) {
            return;
        }
        self.send_due_relayed();
        for (query, responses) in self.queries.expire(self.now) {
            self.out.events.emit(Event::QueryFinished { query, responses });
        }
    }
}
