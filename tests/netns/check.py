#!/usr/bin/env python3
"""Checker for tests/netns/run.sh: reads the nodes' timestamped JSON event logs.

Each node process writes `<dir>/<proc>.events`, where `<proc>` is `<name>.<start>` (n3.1: the
first process of node n3, n6.2: its second, after a restart), one line per event:
`<unix time, float> <the JSON object the node program printed>`.

Subcommands (exit 0 when the condition holds, 1 with a diagnosis when it does not):

  converge  wait (bounded) until every observer holds every expected member alive (under the
            expected generation, when given) with the expected key value, and print when
            that first held;
  failed    wait (bounded) until every observer reported a node failed after a given time;
  cut       check that during the cut every observer suspected or failed every member of the
            other half (the cut really cut);
  heal      count the false failures after the heal: `failed` events emitted after the heal
            that name a member of the observer's own half (always reachable from it).
"""

import argparse
import json
import os
import sys
import time


def load(directory, procs):
    """Every event of the given processes, as (time, proc, object), in time order."""
    events = []
    for proc in procs:
        path = os.path.join(directory, proc + ".events")
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                lines = file.read().split("\n")
        except FileNotFoundError:
            continue
        # The last line may be incomplete (still being written): only whole lines count.
        for line in lines[:-1]:
            stamp, _, text = line.partition(" ")
            try:
                events.append((float(stamp), proc, json.loads(text)))
            except ValueError:
                continue
    events.sort(key=lambda event: event[0])
    return events


def name_of(proc):
    return proc.split(".")[0]


class View:
    """One observer's view, rebuilt from its events: member state, generation, keys."""

    def __init__(self):
        self.state = {}
        self.generation = {}
        self.keys = {}

    def apply(self, event):
        kind = event.get("event")
        name = event.get("name")
        if kind in ("discovered", "restarted"):
            if kind == "restarted":
                # The old generation's state is dropped with it.
                self.keys = {k: v for k, v in self.keys.items() if k[0] != name}
            self.state[name] = "alive"
            self.generation[name] = event.get("generation")
        elif kind == "recovered":
            self.state[name] = "alive"
        elif kind == "suspected":
            self.state[name] = "suspect"
        elif kind == "failed":
            self.state[name] = "failed"
            self.generation[name] = event.get("generation")
        elif kind == "left":
            self.state[name] = "left"
        elif kind == "key_changed":
            self.keys[(event["node"], event["key"])] = event.get("value")
        elif kind == "key_deleted":
            self.keys.pop((event["node"], event["key"]), None)


def parse_expect(text):
    """`name,key,value[,generation]`."""
    parts = text.split(",")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(f"expected name,key,value[,generation], got {text!r}")
    generation = int(parts[3]) if len(parts) == 4 else None
    return (parts[0], parts[1], parts[2], generation)


def missing(view, me, expects):
    """What `view` (of node `me`) lacks of `expects`, as short strings."""
    lacks = []
    for name, key, value, generation in expects:
        if name == me:
            continue
        state = view.state.get(name, "unknown")
        if state != "alive":
            lacks.append(f"{name} {state}")
        elif generation is not None and view.generation.get(name) != generation:
            lacks.append(f"{name} generation {view.generation.get(name)} (want {generation})")
        elif view.keys.get((name, key)) != value:
            lacks.append(f"{name} {key}={view.keys.get((name, key))!r} (want {value!r})")
    return lacks


def converged_at(events, procs, expects, since):
    """The first time >= since at which every observer holds every expectation, or None."""
    views = {proc: View() for proc in procs}

    def holds():
        return all(not missing(views[p], name_of(p), expects) for p in procs)

    index = 0
    while index < len(events) and events[index][0] <= since:
        stamp, proc, event = events[index]
        views[proc].apply(event)
        index += 1
    if holds():
        return since, views
    for stamp, proc, event in events[index:]:
        views[proc].apply(event)
        if holds():
            return stamp, views
    return None, views


def poll(deadline, attempt):
    """Calls attempt() every 0.25 s until it returns a result or the deadline passes."""
    while True:
        result = attempt()
        if result is not None or time.time() >= deadline:
            return result
        time.sleep(0.25)


def cmd_converge(args):
    def attempt():
        events = load(args.dir, args.observers)
        stamp, _ = converged_at(events, args.observers, args.expect, args.since)
        return stamp

    stamp = poll(args.since + args.timeout, attempt)
    if stamp is None:
        events = load(args.dir, args.observers)
        _, views = converged_at(events, args.observers, args.expect, args.since)
        print(f"FAIL: {args.label}: not reached within {args.timeout:.0f} s", file=sys.stderr)
        for proc in args.observers:
            lacks = missing(views[proc], name_of(proc), args.expect)
            if lacks:
                print(f"  {proc} lacks: {'; '.join(lacks)}", file=sys.stderr)
        return 1
    print(f"{stamp - args.since:.2f}")
    return 0


def first_failed(events, procs, name, since):
    """For each observer, the time of its first `failed` event naming `name` after since."""
    found = {}
    for stamp, proc, event in events:
        if stamp >= since and proc in procs and proc not in found:
            if event.get("event") == "failed" and event.get("name") == name:
                found[proc] = stamp
    return found


def cmd_failed(args):
    def attempt():
        found = first_failed(load(args.dir, args.observers), args.observers, args.name, args.since)
        return found if len(found) == len(args.observers) else None

    found = poll(args.since + args.timeout, attempt)
    if found is None:
        found = first_failed(load(args.dir, args.observers), args.observers, args.name, args.since)
        late = [p for p in args.observers if p not in found]
        print(
            f"FAIL: {args.name} not reported failed within {args.timeout:.0f} s by: {' '.join(late)}",
            file=sys.stderr,
        )
        return 1
    delays = sorted(stamp - args.since for stamp in found.values())
    print(f"{delays[-1]:.2f} {delays[0]:.2f} {delays[len(delays) // 2]:.2f}")
    return 0


def sides(args):
    side = {}
    for name in args.half_a.split(","):
        side[name] = "a"
    for name in args.half_b.split(","):
        side[name] = "b"
    return side


def cmd_cut(args):
    side = sides(args)
    events = load(args.dir, args.observers)
    seen = {}
    for stamp, proc, event in events:
        if args.cut <= stamp <= args.heal and event.get("event") in ("suspected", "failed"):
            seen.setdefault((proc, event.get("name")), set()).add(event.get("event"))
    lacking, failed_pairs, pairs = [], 0, 0
    for proc in args.observers:
        me = name_of(proc)
        for other, other_side in side.items():
            if other_side == side[me]:
                continue
            pairs += 1
            got = seen.get((proc, other), set())
            if "failed" in got:
                failed_pairs += 1
            if not got:
                lacking.append(f"{me}->{other}")
    same = sum(
        1
        for (proc, other), kinds in seen.items()
        if "failed" in kinds and side.get(other) == side[name_of(proc)]
    )
    print(f"{failed_pairs} {pairs} {same}")
    if lacking:
        print(
            f"FAIL: the cut did not cut: no suspicion or failure during it for {' '.join(lacking)}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_heal(args):
    side = sides(args)
    events = load(args.dir, args.observers)
    false_failures, cross, suspicions = [], [], 0
    for stamp, proc, event in events:
        if stamp < args.heal:
            continue
        kind, name, me = event.get("event"), event.get("name"), name_of(proc)
        if kind not in ("failed", "suspected") or name not in side:
            continue
        if args.killed and name == args.killed and stamp >= args.kill:
            continue  # the kill: expected
        if side[name] == side[me]:
            if kind == "failed":
                false_failures.append(f"+{stamp - args.heal:.1f}s {me} reported {name} failed")
            else:
                suspicions += 1
        elif kind == "failed":
            cross.append(f"+{stamp - args.heal:.1f}s {me} reported {name} failed")
    for line in false_failures:
        print(f"  false failure: {line}", file=sys.stderr)
    for line in cross:
        print(f"  failure across the healed cut: {line}", file=sys.stderr)
    print(f"{len(false_failures)} {len(cross)} {suspicions}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="the folder of the .events logs")
    parser.add_argument("--observers", required=True, type=lambda s: s.split(","), help="procs, comma-separated")
    sub = parser.add_subparsers(dest="command", required=True)

    converge = sub.add_parser("converge")
    converge.add_argument("--expect", action="append", type=parse_expect, required=True)
    converge.add_argument("--since", type=float, required=True)
    converge.add_argument("--timeout", type=float, required=True)
    converge.add_argument("--label", default="convergence")

    failed = sub.add_parser("failed")
    failed.add_argument("--name", required=True)
    failed.add_argument("--since", type=float, required=True)
    failed.add_argument("--timeout", type=float, required=True)

    for name in ("cut", "heal"):
        p = sub.add_parser(name)
        p.add_argument("--half-a", required=True)
        p.add_argument("--half-b", required=True)
        p.add_argument("--cut", type=float, required=True)
        p.add_argument("--heal", type=float, required=True)
        p.add_argument("--killed", default="")
        p.add_argument("--kill", type=float, default=float("inf"))

    args = parser.parse_args()
    return {"converge": cmd_converge, "failed": cmd_failed, "cut": cmd_cut, "heal": cmd_heal}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
