#!/usr/bin/env bash
# Runs chaos seeds in chunks and appends one JSON line per chunk to a log, so that a long run
# (100,000 seeds) can be split, resumed and recorded in docs/FIGURES.md.
#
#   scripts/chaos-chunks.sh FIRST_SEED CHUNKS [CHUNK_SIZE] [JOBS] [LOG]
#
# Defaults: chunks of 5,000 seeds, 2 threads, log `target/chaos-chunks.jsonl`. Each line holds
# the tree (`git rev-parse --short HEAD`, with `+dirty` for uncommitted changes), the seed
# range, the violations and failing seeds, and the wall time. A failing seed prints its replay
# command (the simulator's own output) and the run goes on with the next chunk.
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:?first seed}
chunks=${2:?number of chunks}
size=${3:-5000}
jobs=${4:-2}
log=${5:-target/chaos-chunks.jsonl}
cargo build --release -p gossip-sim --bin simulate
tree=$(git rev-parse --short HEAD)
git diff --quiet HEAD || tree="$tree+dirty"
for ((chunk = 0; chunk < chunks; chunk++)); do
    start=$((first + chunk * size))
    out=$("${CARGO_TARGET_DIR:-target}/release/simulate" --scenario chaos --seeds "$size" --seed "$start" \
        --jobs "$jobs" --json) || true
    python3 - "$tree" "$start" "$size" "$jobs" "$out" >> "$log" <<'PY'
import json, sys
tree, start, size, jobs, out = sys.argv[1:]
report = json.loads(out[out.index("{"):out.rindex("}") + 1])
print(json.dumps({
    "tree": tree, "first_seed": int(start), "last_seed": int(start) + int(size) - 1,
    "jobs": int(jobs), "violations": report["violations"], "failing_seeds": report["failing_seeds"],
    "wall_seconds": report["wall_seconds"], "seeds_per_second": report["seeds_per_second"],
    "mean_nodes": report["mean_nodes"], "replica_resets": report["mechanisms"]["replica_resets"],
}))
PY
    tail -n 1 "$log"
done
