#!/usr/bin/env bash
# One run of the cluster example at N nodes, with the process's CPU time and resident size
# sampled from /proc every 0.5 s (docs/FIGURES.md, "Scale on one machine").
#
#   cargo build --release -p gossip-tokio --example cluster
#   scripts/cluster-scale.sh 1000 /tmp/run1     # writes /tmp/run1.{json,err,rc,samples}
#
# .err has each stderr line prefixed with the wall time; .samples has lines
# "wall-time cpu-ticks rss-KiB" (cpu-ticks = utime + stime, in clock ticks).
set -uo pipefail
N=$1
OUT=$2
BIN="$(dirname "$0")/../target/release/examples/cluster"
rm -f "$OUT".json "$OUT".err "$OUT".rc "$OUT".samples
( "$BIN" --nodes "$N" --gossip-ms 300 --fanout 3 --probe-ms 1000 --settle-secs 1 --idle-secs 10 \
    --load-secs 0 --json 2> >(while IFS= read -r line; do echo "$(date +%s.%N) $line"; done > "$OUT".err) \
    > "$OUT".json; echo "rc=$?" > "$OUT".rc ) &
sleep 0.5
PID=$(pgrep -f "examples/cluster --nodes $N" | head -1)
while kill -0 "$PID" 2> /dev/null; do
  read -r -a stat < /proc/"$PID"/stat 2> /dev/null || break
  rss=$(awk '/VmRSS/ {print $2}' /proc/"$PID"/status 2> /dev/null)
  echo "$(date +%s.%N) $((stat[13] + stat[14])) $rss" >> "$OUT".samples
  sleep 0.5
done
wait
