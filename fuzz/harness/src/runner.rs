//! Runs the targets without libFuzzer: over the committed corpus, and over seeded random
//! inputs (fresh noise, and corpus entries mutated the way libFuzzer's simplest mutators
//! do). A failing input is written to a file and reported with its seed and the command
//! that replays it under cargo-fuzz.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A fuzz target: its name (that of its cargo-fuzz binary and corpus folder) and body.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The name of the binary in `fuzz/fuzz_targets/` and of the folder in `fuzz/corpus/`.
    pub name: &'static str,
    /// The body: panics on a violation.
    pub body: fn(&[u8]),
    /// How many random inputs `cargo test` runs by default (the `ops` target runs a whole
    /// simulated cluster per input, so it runs fewer).
    pub random_cases: usize,
    /// Longest fresh random input.
    pub max_len: usize,
}

/// The `decode` target.
pub const DECODE: Target =
    Target { name: "decode", body: crate::decode::decode, random_cases: 4_000, max_len: 256 };

/// The `handle_input` target.
pub const HANDLE_INPUT: Target = Target {
    name: "handle_input",
    body: crate::handle_input::handle_input,
    random_cases: 2_000,
    max_len: 512,
};

/// The `ops` target.
pub const OPS: Target = Target { name: "ops", body: crate::ops::ops, random_cases: 1_000, max_len: 256 };

/// Every target.
pub const TARGETS: [Target; 3] = [DECODE, HANDLE_INPUT, OPS];

/// The default seed of the random inputs; `GOSSIP_FUZZ_SEED` overrides it.
pub const DEFAULT_SEED: u64 = 0x0060_551b;

/// The seed of the random inputs: `GOSSIP_FUZZ_SEED` if set, else [`DEFAULT_SEED`].
pub fn seed() -> u64 {
    std::env::var("GOSSIP_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED)
}

/// How many random inputs to run for `target`: `GOSSIP_FUZZ_CASES` if set, else its
/// default.
pub fn cases(target: &Target) -> usize {
    std::env::var("GOSSIP_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(target.random_cases)
}

/// The committed corpus folder of `target`: `fuzz/corpus/<name>/`.
pub fn corpus_dir(target: &Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("corpus").join(target.name)
}

/// The files of `target`'s corpus, sorted by name (so that runs are reproducible).
pub fn corpus(target: &Target) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(corpus_dir(target)) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path, data)
        })
        .collect()
}

/// Runs `target` on one input; on a panic, writes the input to a file and panics with
/// `what` (where the input came from) and how to replay it.
pub fn run_one(target: &Target, data: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| (target.body)(data))).is_ok() {
        return;
    }
    let digest =
        data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let file = std::env::temp_dir().join(format!("gossip-fuzz-{}-{digest:016x}", target.name));
    let saved = match std::fs::write(&file, data) {
        Ok(()) => format!("written to {}", file.display()),
        Err(e) => format!("not written ({e})"),
    };
    panic!(
        "target `{}` failed on {what} ({} bytes, {saved}).\n\
         Replay: cargo +nightly fuzz run {} {}\n\
         Input: {}",
        target.name,
        data.len(),
        target.name,
        file.display(),
        hex(data)
    );
}

/// Runs `target` over its committed corpus; returns how many files it ran.
pub fn run_corpus(target: &Target) -> usize {
    let files = corpus(target);
    for (path, data) in &files {
        run_one(target, data, &format!("corpus file {}", path.display()));
    }
    files.len()
}

/// Runs `target` over `cases` random inputs derived from `seed`: fresh noise, and mutated
/// corpus entries.
pub fn run_random(target: &Target, seed: u64, cases: usize) {
    let corpus: Vec<Vec<u8>> = corpus(target).into_iter().map(|(_, data)| data).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(target.name));
    for case in 0..cases {
        let data = random_input(&mut rng, &corpus, target.max_len);
        run_one(
            target,
            &data,
            &format!(
                "random case {case} of seed {seed} (GOSSIP_FUZZ_SEED={seed} GOSSIP_FUZZ_CASES={})",
                case + 1
            ),
        );
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// One random input: a quarter fresh noise, the rest a corpus entry with a few mutations
/// (byte changes, insertions, deletions, a cut, a splice with another entry).
pub fn random_input(rng: &mut ChaCha8Rng, corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    if corpus.is_empty() || below(rng, 4) == 0 {
        let mut data = vec![0; below(rng, max_len + 1)];
        rng.fill_bytes(&mut data);
        return data;
    }
    let mut data = corpus[below(rng, corpus.len())].clone();
    for _ in 0..1 + below(rng, 4) {
        match below(rng, 6) {
            0 | 1 if !data.is_empty() => {
                let at = below(rng, data.len());
                data[at] = rng.next_u32() as u8;
            }
            2 => {
                let at = below(rng, data.len() + 1);
                data.insert(at, rng.next_u32() as u8);
            }
            3 if !data.is_empty() => {
                let at = below(rng, data.len());
                data.remove(at);
            }
            4 => data.truncate(below(rng, data.len() + 1)),
            _ => {
                let other = &corpus[below(rng, corpus.len())];
                let (at, from) = (below(rng, data.len() + 1), below(rng, other.len() + 1));
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

fn hex(data: &[u8]) -> String {
    const SHOWN: usize = 512;
    let mut text: String = data.iter().take(SHOWN).map(|b| format!("{b:02x}")).collect();
    if data.len() > SHOWN {
        text.push_str("...");
    }
    text
}
