//! Seeds by name: `host:port` resolved by the adapter (never by the core, which does no I/O),
//! joined, then re-resolved periodically so that a seed replaced behind the same name (a new
//! pod, a new VM) is found, as chitchat and memberlist do.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use crate::error::Error;
use crate::runtime::{BoxFuture, Runtime, Timer};
use crate::start::SeedResolver;

/// A future resolving one `host:port`.
pub(crate) type Resolution = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static>>;

/// What the handle needs of the runtime for seeds by name: resolve, wait, run in background.
pub(crate) trait Background: Send + Sync + Debug + 'static {
    /// Resolves `host` (`name:port`, or an address) to its addresses.
    fn resolve(&self, host: String) -> Resolution;
    /// Waits `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture;
    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture);
}

/// A runtime with the resolver of the node's options (the system's when `None`).
#[derive(Debug)]
pub(crate) struct Resolving<R> {
    runtime: R,
    resolver: Option<SeedResolver>,
}

impl<R> Resolving<R> {
    pub(crate) fn new(runtime: R, resolver: Option<SeedResolver>) -> Self {
        Self { runtime, resolver }
    }
}

impl<R: Runtime + Clone> Background for Resolving<R> {
    fn resolve(&self, host: String) -> Resolution {
        // Resolvers block: run this one on a thread of its own, as smol's and async-std's
        // resolvers do on their blocking pools.
        let (reply, answer) = oneshot::channel();
        let resolver = self.resolver.clone();
        let spawned = std::thread::Builder::new().name("gossip-resolve".into()).spawn(move || {
            let addresses = match resolver {
                Some(resolver) => resolver.resolve(&host),
                None => host.to_socket_addrs().map(Iterator::collect),
            };
            let _ = reply.send(addresses);
        });
        Box::pin(async move {
            spawned?;
            answer.await.map_err(|_| io::Error::other("the resolver thread ended without an answer"))?
        })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture {
        let timer = self.runtime.new_timer(Instant::now() + duration);
        Box::pin(Sleep(timer))
    }

    fn spawn(&self, future: BoxFuture) {
        Runtime::spawn(&self.runtime, future);
    }
}

/// A runtime timer as a future.
struct Sleep<T>(T);

impl<T: Timer> Future for Sleep<T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_elapsed(cx)
    }
}

/// Resolves every host; the addresses found, and each host that failed with why.
pub(crate) async fn resolve_all(
    background: &dyn Background,
    hosts: &[String],
) -> (BTreeSet<SocketAddr>, Vec<(String, String)>) {
    let mut found = BTreeSet::new();
    let mut failed = Vec::new();
    for host in hosts {
        match background.resolve(host.clone()).await {
            Ok(addresses) if !addresses.is_empty() => found.extend(addresses),
            Ok(_) => failed.push((host.clone(), "no address".to_owned())),
            Err(error) => failed.push((host.clone(), error.to_string())),
        }
    }
    (found, failed)
}

/// Every `every`, resolves `hosts` again and joins the addresses that are new and not a
/// member's; ends when the node shuts down or every handle is dropped.
pub(crate) async fn keep_resolving(
    node: crate::handle::WeakHandle,
    background: std::sync::Arc<dyn Background>,
    hosts: Vec<String>,
    mut known: BTreeSet<SocketAddr>,
    every: Duration,
) {
    loop {
        background.sleep(every).await;
        let (found, failed) = resolve_all(&*background, &hosts).await;
        let Some(handle) = node.upgrade() else { return };
        for (host, why) in failed {
            tracing::debug!(node = handle.name(), %host, %why, "seed did not resolve");
        }
        let Ok(members) = handle.members().await else { return };
        let fresh: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|address| !known.contains(address) && !members.iter().any(|m| m.address == *address))
            .collect();
        known = found;
        if fresh.is_empty() {
            continue;
        }
        tracing::info!(node = handle.name(), seeds = ?fresh, "seed names resolve to new addresses; joining them");
        match handle.join(fresh).await {
            Ok(()) | Err(Error::JoinFailed(_)) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime that never runs anything: only `resolve` is tried here.
    #[derive(Debug, Clone)]
    struct ThreadsOnly;

    impl Background for ThreadsOnly {
        fn resolve(&self, host: String) -> Resolution {
            let (reply, answer) = oneshot::channel();
            std::thread::spawn(move || {
                let _ = reply.send(host.to_socket_addrs().map(Iterator::collect));
            });
            Box::pin(async move { answer.await.map_err(io::Error::other)? })
        }
        fn sleep(&self, _: Duration) -> BoxFuture {
            Box::pin(std::future::pending())
        }
        fn spawn(&self, _: BoxFuture) {}
    }

    #[test]
    fn names_and_addresses_resolve_and_failures_are_named() {
        let hosts = vec!["localhost:7946".to_owned(), "127.0.0.2:80".to_owned(), "no-port".to_owned()];
        let (found, failed) = futures_lite::future::block_on(resolve_all(&ThreadsOnly, &hosts));
        assert!(found.iter().any(|a| a.port() == 7946 && a.ip().is_loopback()), "{found:?}");
        assert!(found.contains(&"127.0.0.2:80".parse().unwrap()));
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "no-port");
    }
}
