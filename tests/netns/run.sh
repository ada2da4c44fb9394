#!/usr/bin/env bash
# Multi-host test: six `node` processes, each in its own network namespace (its own host, as
# far as the network goes), on one bridge; a 30 s cut into two halves, a heal, a SIGKILL and a
# restart at a new address. See docs/TESTING.md ("Multi-host test").
#
#   sudo tests/netns/run.sh                        # builds the release `node` example
#   NETNS_NODE_BIN=path/to/node tests/netns/run.sh # or uses this binary
#
# Settings (environment):
#   NETNS_NODE_BIN              the node binary; unset: built with cargo (NETNS_PROFILE)
#   NETNS_PROFILE               release (default) or test (CI: reuses `cargo test`'s build)
#   NETNS_ENCRYPT=1             seal every datagram under a shared --key-file (default 1)
#   NETNS_ALLOW_FALSE_FAILURES  1: only report the false failures after the heal (default 0:
#                               any fails the run)
#   NETNS_PARTITION_SECS        how long the cut lasts (default 30)
#   NETNS_SETTLE_SECS           how long to watch for false failures after the heal (default 30)
#   NETNS_KILL_BOUND_SECS       every survivor must report the killed node failed within this
#                               (default 30)
#   NETNS_RESTART_SETTLE_SECS   then, after the restart is seen, wait this long and check that
#                               the cluster is still (or again) whole (default 10)
#   NETNS_KEEP_LOGS=1           keep the event logs of a passing run too
#
# Exits 0 on success, 1 on a failed assertion (with a FAIL: line), 0 with a SKIP: line when
# network namespaces cannot be created here (not root, no `ip`). Removes every namespace, link
# and process it made, on success, failure and interruption alike.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME with a decimal point
cd "$(dirname "$0")/../.."
ROOT=$PWD
CHECKER=$ROOT/tests/netns/check.py

N=6
PREFIX=gossipt # namespaces gossipt-1 .. gossipt-7, and gossipt-br for the bridges
BRNS=$PREFIX-br
NET=10.77.0 # a private range, only inside these namespaces
PORT=7946
HALF_A=(1 2 3)
HALF_B=(4 5 6)
VICTIM=6 # killed, then restarted in namespace gossipt-7 at $NET.7
PARTITION_SECS=${NETNS_PARTITION_SECS:-30}
SETTLE_SECS=${NETNS_SETTLE_SECS:-30}
KILL_BOUND=${NETNS_KILL_BOUND_SECS:-30}
RESTART_SETTLE_SECS=${NETNS_RESTART_SETTLE_SECS:-10}
ENCRYPT=${NETNS_ENCRYPT:-1}
ALLOW_FALSE_FAILURES=${NETNS_ALLOW_FALSE_FAILURES:-0}
T0=$EPOCHREALTIME

say() { printf '[netns %6.1fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")" "$*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
skip() {
    echo "SKIP: cannot create network namespaces: $*"
    exit 0
}
sub() { awk "BEGIN{printf \"%.2f\", $1 - $2}"; }

# --- Preconditions -------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "not root (run as root: the test creates namespaces and links)"
command -v ip > /dev/null || skip "no \`ip\` command (iproute2)"
command -v python3 > /dev/null || fail "python3 is needed for the checker"
command -v flock > /dev/null || fail "flock (util-linux) is needed"

# --- The node binary -----------------------------------------------------------------------
if [ -n "${NETNS_NODE_BIN:-}" ]; then
    BIN=$NETNS_NODE_BIN
else
    case ${NETNS_PROFILE:-release} in
        release) build=(cargo build --release -p gossip-tokio --example node) ;;
        # The features of `cargo test --workspace --all-features`: nothing but the example's
        # own binary is compiled after that command.
        test) build=(cargo build --workspace --all-features --profile test --example node) ;;
        *) fail "NETNS_PROFILE must be release or test" ;;
    esac
    say "building: ${build[*]}"
    BIN=$("${build[@]}" --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "node" and m.get("executable"):
        print(m["executable"])')
fi
[ -x "$BIN" ] || fail "no node binary at '$BIN'"
say "node binary: $BIN"

# --- One run at a time; the namespaces of an interrupted earlier run are removed -----------
exec 9> /tmp/$PREFIX-netns.lock
flock -n 9 || fail "another run of this test holds /tmp/$PREFIX-netns.lock"
our_namespaces() { ip netns list 2> /dev/null | awk '{print $1}' | grep -E "^$PREFIX-([0-9]+|br)$" || true; }
remove_namespaces() {
    local ns pid
    for ns in $(our_namespaces); do
        for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -KILL "$pid" 2> /dev/null || true; done
        ip netns del "$ns" 2> /dev/null || true
    done
}
remove_namespaces

RUN=$(mktemp -d /tmp/$PREFIX.XXXXXX)
declare -A PID=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    disown -a # no "Killed" notices for the nodes killed below
    for pid in "${PID[@]}"; do kill -KILL "$pid" 2> /dev/null || true; done
    remove_namespaces
    for pid in "${PID[@]}"; do wait "$pid" 2> /dev/null || true; done
    if [ -n "$(our_namespaces)" ]; then
        echo "FAIL: cleanup left namespaces: $(our_namespaces)" >&2
        rc=1
    fi
    if [ "$rc" = 0 ] && [ "${NETNS_KEEP_LOGS:-0}" != 1 ]; then
        rm -rf "$RUN"
    else
        echo "logs: $RUN" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Topology: one bridge namespace, a veth from each node namespace into it -------------
# br0 joins everyone; the cut moves the bridge ports of half B onto br1, so each half still
# reaches itself and not the other.
add_host() { # index, address
    local i=$1 address=$2
    ip netns add "$PREFIX-$i"
    ip -n "$BRNS" link add "p$i" type veth peer name eth0 netns "$PREFIX-$i"
    ip -n "$PREFIX-$i" link set lo up
    ip -n "$PREFIX-$i" addr add "$address/24" dev eth0
    ip -n "$PREFIX-$i" link set eth0 up
    ip -n "$BRNS" link set "p$i" master br0 up
}
topology() {
    ip netns add "$BRNS"
    ip -n "$BRNS" link add br0 type bridge
    ip -n "$BRNS" link add br1 type bridge
    ip -n "$BRNS" link set br0 up
    ip -n "$BRNS" link set br1 up
    local i
    for i in $(seq 1 $N); do add_host "$i" "$NET.$i"; done
}
if ! error=$(topology 2>&1); then
    skip "${error:-ip netns/link failed}"
fi
say "namespaces $PREFIX-1..$N on a bridge in $BRNS, addresses $NET.1..$N"

KEYARGS=()
if [ "$ENCRYPT" = 1 ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 > "$RUN/keys")
    KEYARGS=(--key-file "$RUN/keys")
fi

stamp() {
    local line
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}
start_node() { # index, process id (n3.1), namespace, address, value
    local i=$1 proc=$2 ns=$3 address=$4 value=$5
    local join=()
    [ "$i" = 1 ] || join=(--join "$NET.1:$PORT")
    ip netns exec "$ns" "$BIN" --name "n$i" --bind "$address:$PORT" "${join[@]}" --set "k$i=$value" \
        --config lan --json --log warn "${KEYARGS[@]}" \
        > >(stamp > "$RUN/$proc.events") 2> "$RUN/$proc.err" &
    PID[$proc]=$!
}
alive_or_fail() {
    local proc
    for proc in "$@"; do
        kill -0 "${PID[$proc]}" 2> /dev/null || fail "node $proc exited: $(tail -3 "$RUN/$proc.err")"
    done
}
check() { python3 "$CHECKER" --dir "$RUN" --observers "$(
    IFS=,
    echo "${OBSERVERS[*]}"
)" "$@"; }

# --- 1. Six nodes, each with one key, all joining the first --------------------------------
OBSERVERS=()
EXPECT=()
T_START=$EPOCHREALTIME
for i in $(seq 1 $N); do
    start_node "$i" "n$i.1" "$PREFIX-$i" "$NET.$i" "v$i"
    OBSERVERS+=("n$i.1")
    EXPECT+=(--expect "n$i,k$i,v$i")
done
say "started $N nodes (--config lan$([ "$ENCRYPT" = 1 ] && echo ', --key-file: encrypted'))"
MEMBERSHIP=$(check converge "${EXPECT[@]}" --since "$T_START" --timeout 30 --label "initial membership") ||
    fail "initial membership: not every node holds every other alive with its key within 30 s"
alive_or_fail "${OBSERVERS[@]}"
say "full membership and every key at every node after ${MEMBERSHIP} s"

# --- 2. Cut in two halves, then heal --------------------------------------------------------
names() { local i out=(); for i in "$@"; do out+=("n$i"); done; (IFS=,; echo "${out[*]}"); }
SIDES=(--half-a "$(names "${HALF_A[@]}")" --half-b "$(names "${HALF_B[@]}")")
T_CUT=$EPOCHREALTIME
for i in "${HALF_B[@]}"; do ip -n "$BRNS" link set "p$i" master br1; done
say "cut: {$(names "${HALF_A[@]}")} | {$(names "${HALF_B[@]}")} for ${PARTITION_SECS} s"
sleep "$PARTITION_SECS"
T_HEAL=$EPOCHREALTIME # before the first port moves back: what follows may be its effect
for i in "${HALF_B[@]}"; do ip -n "$BRNS" link set "p$i" master br0; done
say "healed"
CUT=$(check cut "${SIDES[@]}" --cut "$T_CUT" --heal "$T_HEAL") ||
    fail "the cut did not separate the halves (see above)"
read -r CUT_FAILED CUT_PAIRS CUT_SAME <<< "$CUT"
say "during the cut: $CUT_FAILED of $CUT_PAIRS cross pairs reported failed; failures within a half: $CUT_SAME"
HEALED=$(check converge "${EXPECT[@]}" --since "$T_HEAL" --timeout 60 --label "membership after the heal") ||
    fail "after the heal: not every node holds every other alive with its key within 60 s"
alive_or_fail "${OBSERVERS[@]}"
say "full membership again ${HEALED} s after the heal; watching for false failures until heal + ${SETTLE_SECS} s"
sleep "$(awk "BEGIN{d = $T_HEAL + $SETTLE_SECS - $EPOCHREALTIME; print (d > 0 ? d : 0)}")"
HEAL=$(check heal "${SIDES[@]}" --cut "$T_CUT" --heal "$T_HEAL" 2> /dev/null)
read -r FALSE_FAILURES _ _ <<< "$HEAL"
say "false failures so far (failed events after the heal naming the observer's own half): $FALSE_FAILURES"

# --- 3. SIGKILL one node: every survivor must report it failed -----------------------------
SURVIVORS=()
for i in $(seq 1 $N); do [ "$i" = "$VICTIM" ] || SURVIVORS+=("n$i.1"); done
T_KILL=$EPOCHREALTIME
kill -KILL "${PID[n$VICTIM.1]}"
wait "${PID[n$VICTIM.1]}" 2> /dev/null || true # reaped quietly (no "Killed" job notice)
say "killed n$VICTIM (SIGKILL)"
ALL=("${OBSERVERS[@]}")
OBSERVERS=("${SURVIVORS[@]}")
KILL=$(check failed --name "n$VICTIM" --since "$T_KILL" --timeout "$KILL_BOUND") ||
    fail "n$VICTIM was not reported failed by every survivor within ${KILL_BOUND} s"
read -r DETECT DETECT_FIRST DETECT_MEDIAN <<< "$KILL"
say "every survivor reported n$VICTIM failed within ${DETECT} s (first ${DETECT_FIRST} s, median ${DETECT_MEDIAN} s)"

# --- 4. Restart it on another host, at a new address ---------------------------------------
RESTART_NS=$PREFIX-$((N + 1))
RESTART_ADDRESS=$NET.$((N + 1))
add_host $((N + 1)) "$RESTART_ADDRESS"
T_RESTART=$EPOCHREALTIME
start_node "$VICTIM" "n$VICTIM.2" "$RESTART_NS" "$RESTART_ADDRESS" "v$VICTIM-restarted"
GENERATION=""
for _ in $(seq 1 50); do
    GENERATION=$(sed -n 's/.* listening on .* (generation \([0-9]*\)).*/\1/p' "$RUN/n$VICTIM.2.err" 2> /dev/null || true)
    [ -n "$GENERATION" ] && break
    sleep 0.1
done
[ -n "$GENERATION" ] || fail "the restarted n$VICTIM did not start: $(tail -3 "$RUN/n$VICTIM.2.err")"
say "restarted n$VICTIM in $RESTART_NS at $RESTART_ADDRESS (generation $GENERATION)"
OBSERVERS=("${SURVIVORS[@]}" "n$VICTIM.2")
EXPECT=()
for i in $(seq 1 $N); do
    if [ "$i" = "$VICTIM" ]; then
        EXPECT+=(--expect "n$i,k$i,v$i-restarted,$GENERATION")
    else
        EXPECT+=(--expect "n$i,k$i,v$i")
    fi
done
RESTART_SEEN=$(check converge "${EXPECT[@]}" --since "$T_RESTART" --timeout 30 --label "the restart") ||
    fail "the restarted n$VICTIM (new generation, new address, new value) is not seen by every node within 30 s"
alive_or_fail "${OBSERVERS[@]}"
RESTARTED_EVENTS=0
for proc in "${SURVIVORS[@]}"; do
    awk -v t="$T_RESTART" -v n="n$VICTIM" '$1 >= t && index($0, "\"event\":\"restarted\"") && index($0, "\"name\":\"" n "\"")' \
        "$RUN/$proc.events" | grep -q . && RESTARTED_EVENTS=$((RESTARTED_EVENTS + 1))
done
say "every node holds n$VICTIM under generation $GENERATION with its new value ${RESTART_SEEN} s after its start ($RESTARTED_EVENTS of ${#SURVIVORS[@]} survivors emitted \`restarted\`)"

# --- 5. Still whole a while later -----------------------------------------------------------
sleep "$RESTART_SETTLE_SECS"
T_FINAL=$EPOCHREALTIME
FINAL=$(check converge "${EXPECT[@]}" --since "$T_FINAL" --timeout 20 --label "the final membership") ||
    fail "${RESTART_SETTLE_SECS} s after the restart, not every node holds every other alive with its key (within 20 s more)"
alive_or_fail "${OBSERVERS[@]}"
RESTART_SUSPECTED=0
RESTART_FAILED=0
for proc in "${SURVIVORS[@]}"; do
    read -r s f < <(awk -v t="$T_RESTART" -v n="\"name\":\"n$VICTIM\"" '$1 >= t && index($0, n) {
        if (index($0, "\"event\":\"suspected\"")) s++; if (index($0, "\"event\":\"failed\"")) f++ }
        END { print s + 0, f + 0 }' "$RUN/$proc.events")
    RESTART_SUSPECTED=$((RESTART_SUSPECTED + s))
    RESTART_FAILED=$((RESTART_FAILED + f))
done
say "still whole ${RESTART_SETTLE_SECS} s later (held within ${FINAL} s of the check); since the restart the survivors suspected n$VICTIM $RESTART_SUSPECTED time(s), reported it failed $RESTART_FAILED time(s)"

# --- 6. False failures after the heal -------------------------------------------------------
OBSERVERS=("${ALL[@]}" "n$VICTIM.2")
HEAL=$(check heal "${SIDES[@]}" --cut "$T_CUT" --heal "$T_HEAL" --killed "n$VICTIM" --kill "$T_KILL")
read -r FALSE_FAILURES CROSS SUSPICIONS <<< "$HEAL"

# --- 7. Graceful stop (Ctrl-C): informational -----------------------------------------------
for proc in "${OBSERVERS[@]}"; do kill -INT "${PID[$proc]}" 2> /dev/null || true; done
CLEAN=0
STOPPED=0
for proc in "${OBSERVERS[@]}"; do
    [ "$proc" = "n$VICTIM.1" ] && continue
    STOPPED=$((STOPPED + 1))
    if timeout 15 tail --pid="${PID[$proc]}" -f /dev/null && wait "${PID[$proc]}"; then CLEAN=$((CLEAN + 1)); fi
done
say "on SIGINT, $CLEAN of $STOPPED nodes left the cluster and exited 0"

echo "FIGURES encryption=$ENCRYPT membership=${MEMBERSHIP}s cut_failed=$CUT_FAILED/$CUT_PAIRS heal_membership=${HEALED}s false_failures_after_heal=$FALSE_FAILURES cross_failures_after_heal=$CROSS own_half_suspicions_after_heal=$SUSPICIONS kill_detected=${DETECT}s restart_seen=${RESTART_SEEN}s restart_suspected=$RESTART_SUSPECTED restart_failed=$RESTART_FAILED total=$(sub "$EPOCHREALTIME" "$T0")s"
if [ "$FALSE_FAILURES" != 0 ]; then
    if [ "$ALLOW_FALSE_FAILURES" = 1 ]; then
        echo "WARNING: $FALSE_FAILURES false failure(s) after the heal (allowed: NETNS_ALLOW_FALSE_FAILURES=1)"
    else
        fail "$FALSE_FAILURES false failure(s) after the heal: a node reported a member of its own half failed (NETNS_ALLOW_FALSE_FAILURES=1 only reports them)"
    fi
fi
echo "PASS"
