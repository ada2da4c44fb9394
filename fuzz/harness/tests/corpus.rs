//! Every fuzz target over its committed corpus (`fuzz/corpus/<target>/`) and over seeded
//! random inputs, on stable: `GOSSIP_FUZZ_SEED` picks another seed, `GOSSIP_FUZZ_CASES`
//! another number of random inputs. A failure names the input, writes it to a file and
//! prints the `cargo +nightly fuzz run` command that replays it.
//!
//! `generate` (ignored) rewrites the generated seed files from a freshly captured cluster:
//! `cargo test -p gossip-fuzz-harness --test corpus -- --ignored generate`.

use gossip_fuzz_harness::runner::{self, DECODE, HANDLE_INPUT, OPS, Target};

fn corpus_and_random(target: &Target) {
    let files = runner::run_corpus(target);
    assert!(
        files > 0,
        "the corpus of `{}` is empty: is {} there?",
        target.name,
        runner::corpus_dir(target).display()
    );
    runner::run_random(target, runner::seed(), runner::cases(target));
}

#[test]
fn decode_survives_its_corpus_and_random_inputs() {
    corpus_and_random(&DECODE);
}

#[test]
fn handle_input_survives_its_corpus_and_random_inputs() {
    corpus_and_random(&HANDLE_INPUT);
}

#[test]
fn ops_survives_its_corpus_and_random_inputs() {
    corpus_and_random(&OPS);
}

#[test]
#[ignore = "rewrites the generated seed files of fuzz/corpus/"]
fn generate() {
    for (target, files) in gossip_fuzz_harness::corpus::generate() {
        println!("{target}: {files} generated files");
    }
}
