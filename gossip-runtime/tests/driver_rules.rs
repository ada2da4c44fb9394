//! The driver's rules, checked on a scripted runtime: a socket whose sends all fail and whose
//! receive queue the test fills, and a timer that logs when it is re-armed.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use gossip_runtime::{BoxFuture, Config, Options, Runtime, Timer, UdpSocket};

/// What the driver did, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Received,
    Rearmed,
}

#[derive(Debug, Default)]
struct Script {
    inbox: Mutex<VecDeque<(Vec<u8>, SocketAddr)>>,
    log: Mutex<Vec<Step>>,
}

impl Script {
    fn log(&self) -> Vec<Step> {
        self.log.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone)]
struct Scripted(Arc<Script>);

#[derive(Debug)]
struct FailingSocket {
    script: Arc<Script>,
    address: SocketAddr,
}

impl UdpSocket for FailingSocket {
    fn poll_send_to(&self, _: &mut Context<'_>, _: &[u8], _: SocketAddr) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into()))
    }

    fn poll_recv_from(&self, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        // Never wakes the task: queued datagrams are only seen when the driver runs anyway.
        match self.script.inbox.lock().unwrap().pop_front() {
            Some((datagram, from)) => {
                self.script.log.lock().unwrap().push(Step::Received);
                buf[..datagram.len()].copy_from_slice(&datagram);
                Poll::Ready(Ok((datagram.len(), from)))
            }
            None => Poll::Pending,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.address)
    }
}

/// A timer checked by a helper thread every millisecond.
#[derive(Debug)]
struct ThreadTimer {
    script: Arc<Script>,
    shared: Arc<Mutex<(Instant, Option<Waker>)>>,
    alive: Arc<AtomicBool>,
}

impl ThreadTimer {
    fn new(script: Arc<Script>, deadline: Instant) -> Self {
        let shared = Arc::new(Mutex::new((deadline, None::<Waker>)));
        let alive = Arc::new(AtomicBool::new(true));
        let (watched, running) = (shared.clone(), alive.clone());
        thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(1));
                let mut state = watched.lock().unwrap();
                if Instant::now() >= state.0 {
                    if let Some(waker) = state.1.take() {
                        waker.wake();
                    }
                }
            }
        });
        Self { script, shared, alive }
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}

impl Timer for ThreadTimer {
    fn reset(&mut self, deadline: Instant) {
        self.script.log.lock().unwrap().push(Step::Rearmed);
        self.shared.lock().unwrap().0 = deadline;
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock().unwrap();
        if Instant::now() >= state.0 {
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Runtime for Scripted {
    type Socket = FailingSocket;
    type Timer = ThreadTimer;

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<FailingSocket> {
        Ok(FailingSocket { script: self.0.clone(), address: socket.local_addr()? })
    }

    fn new_timer(&self, deadline: Instant) -> ThreadTimer {
        ThreadTimer::new(self.0.clone(), deadline)
    }

    fn spawn(&self, future: BoxFuture) {
        thread::spawn(move || block_on(future));
    }
}

fn start() -> (Scripted, gossip_runtime::Handle) {
    let runtime = Scripted(Arc::new(Script::default()));
    let mut config = Config::local();
    config.swim.join_timeout = Duration::from_secs(1);
    let (handle, _events) = gossip_runtime::start_on(
        &runtime,
        config,
        "scripted",
        "127.0.0.1:0".parse().unwrap(),
        Options::default().with_seed(7),
    )
    .expect("starts");
    (runtime, handle)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn send_errors_are_counted_and_never_fatal() {
    let (_runtime, handle) = start();
    // Nothing answers there: the join fails (after `join_timeout`), and the node runs on.
    let joined = block_on(handle.join(["127.0.0.1:9".parse().unwrap()]));
    assert!(matches!(joined, Err(gossip_runtime::Error::JoinFailed(_))), "{joined:?}");
    wait_until("the failed sends are counted", || {
        block_on(handle.metrics()).expect("still runs").driver.send_errors >= 2
    });
    assert_eq!(block_on(handle.set("k", "v")).expect("still runs"), 1);
    block_on(handle.shutdown());
    assert!(handle.is_closed());
}

#[test]
fn queued_datagrams_are_handled_before_a_due_timeout() {
    let (runtime, handle) = start();
    // Let the driver go idle, then queue a datagram without waking it: it is found only when
    // the timer wakes the driver, and must be handled before the timeout is.
    thread::sleep(Duration::from_millis(50));
    let before = runtime.0.log().len();
    runtime.0.inbox.lock().unwrap().push_back((vec![0xff; 16], "127.0.0.1:9".parse().unwrap()));
    wait_until("the datagram is handled", || runtime.0.log().len() > before + 1);
    let log = runtime.0.log();
    assert_eq!(log[before], Step::Received, "the queued datagram came before the timeout: {log:?}");
    let metrics = block_on(handle.metrics()).expect("runs");
    assert_eq!(metrics.core.decode_errors, 1);
    block_on(handle.shutdown());
}

#[test]
fn timer_is_rearmed_only_when_the_deadline_changes() {
    let (_runtime, handle) = start();
    let before = block_on(handle.metrics()).expect("runs").driver;
    for _ in 0..50 {
        block_on(handle.metrics()).expect("runs");
    }
    let after = block_on(handle.metrics()).expect("runs").driver;
    let rearmed = after.timer_resets - before.timer_resets;
    let fired = after.timeouts - before.timeouts;
    assert!(rearmed <= fired + 1, "{rearmed} re-arms for {fired} timeouts and 50 commands");
    block_on(handle.shutdown());
}
