//! What sealing costs: AES-256-GCM over a full datagram (ring, as the core calls it), and a
//! full datagram of deltas handled by a node, plain and sealed.
//!
//! `cargo bench -p gossip-core --bench sealing`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gossip_core::{
    Config, EncryptionMode, Identity, Keyring, Node, Output, SEAL_OVERHEAD, SecretKey, Transmit,
};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

type BenchNode = Node<ChaCha8Rng>;

fn epoch() -> Instant {
    // The benchmark plays the I/O shell: it owns the clock.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn key() -> SecretKey {
    SecretKey::from_bytes(&[7; 32]).expect("32 bytes")
}

fn config(sealed: bool) -> Config {
    let mut config = Config::lan();
    if sealed {
        config.encryption = EncryptionMode::Require;
    }
    config
}

fn node(sealed: bool, name: &str, port: u16, now: Instant, seed: u64) -> BenchNode {
    let identity = Identity::new(name, 1, SocketAddr::from(([10, 0, 0, 1], port)));
    let keyring = if sealed { Keyring::new(key()) } else { Keyring::empty() };
    Node::with_keyring(config(sealed), identity, now, ChaCha8Rng::seed_from_u64(seed), keyring)
        .expect("valid")
}

fn drain(node: &mut BenchNode) -> Vec<Transmit> {
    let mut transmits = Vec::new();
    while let Some(output) = node.poll() {
        if let Output::Transmit(transmit) = output {
            transmits.push(transmit);
        }
    }
    transmits
}

/// Node A holds 500 keys; fresh node B joins it; returns A's largest datagram, its address and
/// the time after the exchange.
fn capture(sealed: bool, start: Instant) -> (Vec<u8>, SocketAddr, Instant) {
    let mut a = node(sealed, "node-a", 1, start, 1);
    let mut b = node(sealed, "node-b", 2, start, 2);
    for i in 0..500 {
        a.set(format!("key-{i:03}"), format!("value-{i:014}")).expect("fits");
    }
    let _ = drain(&mut a);
    let (a_address, b_address) = (a.identity().address, b.identity().address);
    b.join([a_address]);
    let mut in_flight: Vec<(bool, Transmit)> = drain(&mut b).into_iter().map(|t| (false, t)).collect();
    let mut largest = Vec::new();
    let mut now = start;
    while !in_flight.is_empty() {
        now += Duration::from_millis(1);
        for (sent_by_a, transmit) in std::mem::take(&mut in_flight) {
            let (to, from) = if sent_by_a { (&mut b, a_address) } else { (&mut a, b_address) };
            if sent_by_a && transmit.payload.len() > largest.len() {
                largest = transmit.payload.to_vec();
            }
            to.handle_input(now, from, &transmit.payload);
            in_flight.extend(drain(to).into_iter().map(|t| (!sent_by_a, t)));
        }
    }
    assert!(b.get("node-a", "key-000").is_some(), "B applied A's deltas");
    assert!(largest.len() > 1_300, "not full: {} bytes", largest.len());
    (largest, a_address, now + Duration::from_millis(100))
}

fn seal_and_open(c: &mut Criterion) {
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("32 bytes"));
    let mut buffer = vec![0x5a; 1_400 - SEAL_OVERHEAD];
    let aad = [0x11u8; 14 + 4 + 7];
    let mut group = c.benchmark_group("seal_and_open");
    group.throughput(Throughput::Bytes(buffer.len() as u64));
    let mut counter = 0u32;
    group.bench_function("aes_256_gcm_full_datagram", |bench| {
        bench.iter(|| {
            counter = counter.wrapping_add(1);
            let mut nonce = [0u8; 12];
            nonce[8..].copy_from_slice(&counter.to_be_bytes());
            let tag = cipher
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad[..]),
                    &mut buffer,
                )
                .expect("seals");
            cipher
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad[..]),
                    tag,
                    black_box(&mut buffer),
                    0..,
                )
                .expect("opens");
        });
    });
    group.finish();
}

fn handle_full_datagram(c: &mut Criterion) {
    let start = epoch();
    let mut group = c.benchmark_group("handle_full_datagram_new_sender");
    for sealed in [false, true] {
        let (datagram, from, at) = capture(sealed, start);
        eprintln!("{}: {} bytes", if sealed { "sealed" } else { "plain" }, datagram.len());
        group.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: datagram.len() as u64 });
        group.bench_function(if sealed { "sealed" } else { "plain" }, |bench| {
            // By reference: the node is neither moved into the routine nor out of it (a move
            // of the whole node was part of the time measured).
            bench.iter_batched_ref(
                || node(sealed, "node-r", 3, start, 9),
                |receiver| {
                    receiver.handle_input(at, from, black_box(&datagram));
                    assert_eq!(receiver.metrics().dropped_whole(), 0);
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, seal_and_open, handle_full_datagram);
criterion_main!(benches);
