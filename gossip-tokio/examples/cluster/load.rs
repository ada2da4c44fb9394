//! The steady-load phase: every node updates its [`LOAD_KEY`] every `period` (a load report,
//! as Cassandra's nodes gossip theirs), each at its own phase of the period. The updates
//! written during the measured window are timed from the write until the last other node
//! has them; the window's traffic is counted. One period of load runs before the window and
//! one after it, so that every measured update spreads under the same load.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gossip_tokio::Handle;

/// The key every node updates.
pub(crate) const LOAD_KEY: &str = "load";

/// The value of update `sequence`: its number, then a made-up load figure.
fn value(sequence: u64, node: usize) -> String {
    format!("{sequence} {:.2}", ((sequence as usize * 7 + node * 13) % 400) as f64 / 100.0)
}

/// The update number a value carries.
fn sequence_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.split(' ').next()?.parse().ok()
}

/// When each update was written and when the other nodes got it; shared by every observer.
#[derive(Debug, Default)]
pub(crate) struct LoadLog {
    updates: Mutex<HashMap<(String, u64), Update>>,
}

#[derive(Debug)]
struct Update {
    written: Instant,
    /// Other nodes that have it (or a later update of the same owner).
    received: usize,
    last: Instant,
}

impl LoadLog {
    fn written(&self, owner: &str, sequence: u64, at: Instant) {
        let update = Update { written: at, received: 0, last: at };
        self.updates.lock().expect("lock").insert((owner.to_owned(), sequence), update);
    }

    fn arrived(&self, owner: &str, sequence: u64, at: Instant) {
        if let Some(update) = self.updates.lock().expect("lock").get_mut(&(owner.to_owned(), sequence)) {
            update.received += 1;
            update.last = update.last.max(at);
        }
    }

    /// For the updates written in `window`: how long each took to reach `receivers` nodes,
    /// sorted, and how many did not.
    fn spread_times(&self, window: std::ops::Range<Instant>, receivers: usize) -> (Vec<Duration>, usize) {
        let updates = self.updates.lock().expect("lock");
        let measured = updates.values().filter(|u| window.contains(&u.written));
        let (mut times, mut incomplete) = (Vec::new(), 0);
        for update in measured {
            if update.received >= receivers {
                times.push(update.last - update.written);
            } else {
                incomplete += 1;
            }
        }
        times.sort_unstable();
        (times, incomplete)
    }
}

/// What one observer has seen of the other nodes' updates: a node may skip an update (a
/// later one supersedes it before it arrives), which then counts as arrived with the later.
#[derive(Debug, Default)]
pub(crate) struct LoadSeen {
    last: HashMap<String, u64>,
}

impl LoadSeen {
    /// A change of [`LOAD_KEY`] from `owner` with `value` arrived now.
    pub(crate) fn arrived(&mut self, owner: &str, value: &[u8], log: &LoadLog) {
        let Some(sequence) = sequence_of(value) else { return };
        let now = Instant::now();
        let next = self.last.get(owner).map_or(0, |last| last + 1);
        for skipped_or_new in next..=sequence {
            log.arrived(owner, skipped_or_new, now);
        }
        if sequence >= next {
            self.last.insert(owner.to_owned(), sequence);
        }
    }
}

/// The phase's plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadPlan {
    /// Each node updates its key this often.
    pub(crate) period: Duration,
    /// The measured window.
    pub(crate) measure: Duration,
}

/// What the phase measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct LoadFigures {
    /// Spread time of every measured update that reached every other node, sorted.
    pub(crate) times: Vec<Duration>,
    /// Measured updates that did not.
    pub(crate) incomplete: usize,
    /// Bytes and datagrams per node per second in the window.
    pub(crate) bytes: f64,
    pub(crate) datagrams: f64,
}

impl LoadFigures {
    /// The `q` quantile of the spread times (nearest rank).
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        let rank = ((self.times.len() as f64 * q).ceil() as usize).clamp(1, self.times.len().max(1));
        self.times.get(rank - 1).copied()
    }
}

/// Runs the load on `handles` (node `i` at phase `i / n` of the period), with `sent` giving
/// the cluster's bytes and datagrams sent so far, and measures it.
pub(crate) async fn run_load<F, Fut>(
    handles: Vec<Handle>,
    plan: LoadPlan,
    log: &std::sync::Arc<LoadLog>,
    sent: F,
) -> Result<LoadFigures, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u64, u64)>,
{
    let n = handles.len();
    let start = Instant::now();
    let window = start + plan.period..start + plan.period + plan.measure;
    let end = window.end + plan.period;
    let writers: Vec<_> = handles
        .into_iter()
        .enumerate()
        .map(|(node, handle)| {
            let log = log.clone();
            let offset = plan.period.mul_f64(node as f64 / n as f64);
            tokio::spawn(async move {
                let mut at = start + offset;
                let mut sequence = 0;
                while at < end {
                    tokio::time::sleep_until(at.into()).await;
                    log.written(handle.name(), sequence, Instant::now());
                    handle.set(LOAD_KEY, value(sequence, node)).await.map_err(|e| e.to_string())?;
                    sequence += 1;
                    at += plan.period;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    tokio::time::sleep_until(window.start.into()).await;
    let before = sent().await;
    tokio::time::sleep_until(window.end.into()).await;
    let after = sent().await;
    let seconds = (n as f64 * plan.measure.as_secs_f64()).max(1e-9);
    for writer in writers {
        writer.await.map_err(|e| e.to_string())??;
    }
    // The last measured updates had one period to spread, under load; give stragglers of
    // the last writes a moment more before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (times, incomplete) = log.spread_times(window, n - 1);
    Ok(LoadFigures {
        times,
        incomplete,
        bytes: (after.0 - before.0) as f64 / seconds,
        datagrams: (after.1 - before.1) as f64 / seconds,
    })
}
