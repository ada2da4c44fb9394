//! With the `metrics` feature: the node's counters and gauges published through the
//! [`metrics`] facade, to whatever recorder the application installed
//! (`metrics-exporter-prometheus`, StatsD, OpenTelemetry, ...).
//!
//! Every series carries a `node` label with the node's name, so that several nodes in one
//! process stay apart. Published at most once per [`PUBLISH_INTERVAL`], on the driver's own
//! timer, and once when the node starts:
//!
//! - counters `gossip_<field>_total` for every field of [`gossip_core::Metrics`] and
//!   `gossip_driver_<field>_total` for every field of [`crate::DriverStats`];
//! - gauges `gossip_members{state="alive"|"suspect"|"dead"|"left"}` (members known here, this
//!   node included), `gossip_keys` (keys held, every member's, tombstones included) and
//!   `gossip_local_health` (Lifeguard's score: above 0, this node thinks itself slow).

use std::time::{Duration, Instant};

use gossip_core::{MemberState, Metrics, Node};
use metrics::{Counter, Gauge, Unit};
use rand_core::Rng;

use crate::handle::DriverStats;

/// How often the driver publishes: often enough for a scrape every few seconds, rarely enough
/// that a busy node does not spend its time on it.
pub(crate) const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The member states, with the label each is published under.
const STATES: [(MemberState, &str); 4] = [
    (MemberState::Alive, "alive"),
    (MemberState::Suspect, "suspect"),
    (MemberState::Dead, "dead"),
    (MemberState::Left, "left"),
];

/// The registered series of one node, and when they are next due.
pub(crate) struct Exporter {
    core: Vec<Counter>,
    driver: Vec<Counter>,
    members: [Gauge; 4],
    keys: Gauge,
    local_health: Gauge,
    due: Instant,
}

impl Exporter {
    /// Registers the node's series with the installed recorder (none installed: every
    /// publication is a no-op).
    pub(crate) fn new(name: &str, now: Instant) -> Self {
        let label = || [("node", name.to_owned())];
        let core = Metrics::default()
            .counters()
            .iter()
            .map(|(field, _)| metrics::counter!(format!("gossip_{field}_total"), &label()))
            .collect();
        let driver = DriverStats::default()
            .counters()
            .iter()
            .map(|(field, _)| metrics::counter!(format!("gossip_driver_{field}_total"), &label()))
            .collect();
        let members = STATES.map(|(_, state)| {
            metrics::gauge!("gossip_members", &[("node", name.to_owned()), ("state", state.to_owned())])
        });
        metrics::describe_gauge!(
            "gossip_members",
            Unit::Count,
            "Members known, by state, this node included"
        );
        metrics::describe_gauge!(
            "gossip_keys",
            Unit::Count,
            "Keys held, every member's, tombstones included"
        );
        metrics::describe_gauge!(
            "gossip_local_health",
            Unit::Count,
            "Lifeguard's local-health score: above 0, this node stretches its probe timeouts"
        );
        Self {
            core,
            driver,
            members,
            keys: metrics::gauge!("gossip_keys", &label()),
            local_health: metrics::gauge!("gossip_local_health", &label()),
            due: now,
        }
    }

    /// When the next publication is due.
    pub(crate) fn due(&self) -> Instant {
        self.due
    }

    /// Publishes every series if due.
    pub(crate) fn publish_if_due<R: Rng>(&mut self, now: Instant, node: &Node<R>, driver: &DriverStats) {
        if now < self.due {
            return;
        }
        self.due = now + PUBLISH_INTERVAL;
        for (counter, (_, value)) in self.core.iter().zip(node.metrics().counters()) {
            counter.absolute(value);
        }
        for (counter, (_, value)) in self.driver.iter().zip(driver.counters()) {
            counter.absolute(value);
        }
        let mut by_state = [0usize; 4];
        let mut keys = 0usize;
        for member in node.nodes() {
            if let Some(slot) = STATES.iter().position(|(state, _)| *state == member.state) {
                by_state[slot] += 1;
            }
            keys += member.keys;
        }
        for (gauge, count) in self.members.iter().zip(by_state) {
            gauge.set(count as f64);
        }
        self.keys.set(keys as f64);
        self.local_health.set(f64::from(node.local_health()));
    }
}
