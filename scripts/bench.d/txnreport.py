#!/usr/bin/env python3
"""Report for `scripts/bench txn` (standard library only).

  txnreport.py RESULTS_DIR

Reads RESULTS_DIR/txn/settings.json, RESULTS_DIR/txn/<case>.<impl>.r<rep>.json (one line of
JSON from bench/txn_bench per run), RESULTS_DIR/txn/load.txt (load average samples) and
RESULTS_DIR/caveats.txt, and prints a markdown table (medians over the repetitions), the CPU
each process used, the correctness checks and the targets (met / missed; never fails).
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import fmt_ms, fmt_pairs as fmt_tps, load_lock_runs  # noqa: E402

# case -> (label, clients key); clients key "1" or "N" (BENCH_TXN_CLIENTS)
CASES = [
    ("one1", "2 keys, 1 backend (hash tag)", "1"),
    ("oneN", "2 keys, 1 backend (hash tag)", "N"),
    ("two1", "2 keys, 2 backends (2PC)", "1"),
    ("twoN", "2 keys, 2 backends (2PC)", "N"),
    ("three1", "3 keys, 3 backends (2PC)", "1"),
    ("threeN", "3 keys, 3 backends (2PC)", "N"),
    ("conone", "contended: 2 keys, 1 backend, all clients same keys", "N"),
    ("contwo", "contended: 2 keys, 2 backends, all clients same keys", "N"),
]
IMPLS = ("lockstep", "redis")


def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None and r[key] >= 0]
    return statistics.median(vals) if vals else None


def main(res_dir):
    with open(os.path.join(res_dir, "txn", "settings.json")) as f:
        st = json.load(f)
    cells = load_lock_runs(res_dir, "txn")
    good = {k: [r for r in v if not r.get("fatal")] for k, v in cells.items()}
    n_clients = st["clients"]
    ls_label = st["lockstep_label"]

    def clients_of(ck):
        return 1 if ck == "1" else n_clients

    rate = {}
    print("| transaction | clients | %s tx/s | p50 / p99 ms | redis direct tx/s | p50 / p99 ms "
          "| Lockstep / direct | noise |" % ls_label)
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for case, label, ck in CASES:
        if not any((case, impl) in cells for impl in IMPLS):
            continue
        row = "| %s | %d |" % (label, clients_of(ck))
        spreads = []
        for impl in IMPLS:
            rs = good.get((case, impl), [])
            tps = med(rs, "tps")
            rate[(case, impl)] = tps
            if len(rs) > 1 and tps:
                vals = [r["tps"] for r in rs]
                spreads.append((max(vals) - min(vals)) / tps)
            if rs:
                row += " %s | %s / %s |" % (fmt_tps(tps), fmt_ms(med(rs, "p50_ms")),
                                            fmt_ms(med(rs, "p99_ms")))
            elif (case, impl) in cells:
                row += " failed | - |"
            else:
                row += " - | - |"
        a, b = rate.get((case, "lockstep")), rate.get((case, "redis"))
        row += " %s |" % ("%.2fx" % (a / b) if a and b else "-")
        row += " %s |" % ("+-%.0f%%" % (50 * max(spreads)) if spreads else "-")
        print(row)
    nruns = sorted({len(v) for v in good.values() if v})
    print()
    print("Median of %s run(s) per cell, %s s measured after %s s warm-up; cells alternate "
          "(order rotated each repetition), backends flushed before each. noise = half the "
          "widest (max-min)/median tx/s spread of the row." % (
              "/".join(map(str, nruns)) or "0", st["seconds"], st["warmup"]))
    print("Transaction: MULTI, INCR k1 .. INCR kN, EXEC sent as one write (bench/txn_bench, "
          "hiredis %s, one thread + blocking connection per client); latency = that write to "
          "EXEC's reply. Every client has its own keys except in the contended rows. Keys are "
          "placed with Lockstep's default slot map: the 1-backend keys share a {hash tag} on "
          "backend 1 (the redis-server the direct column uses), 2 backends = backends 1 and 2, "
          "3 backends = all three." % st.get("hiredis", "?"))
    print("Backends: redis-server %s started with --save \"\" --appendonly no (no persistence: "
          "the durable settings transactions need across crashes, appendonly yes + appendfsync "
          "always, would measure fsync, not the protocol). %s: %s." % (
              st["redis_version"], ls_label, st["lockstep_desc"]))

    # CPU and checks.
    print()
    print("CPU used during the measured seconds (cores; %d = the whole machine), medians:"
          % st["nproc"])
    for case, label, ck in CASES:
        for impl in IMPLS:
            rs = good.get((case, impl), [])
            if not rs:
                continue
            parts = []
            for k, name in (("lockstep", "lockstep"), ("redis", "redis"), ("loadgen", "txn_bench")):
                vals = [r["cpu_cores"][k] for r in rs if k in r.get("cpu_cores", {})]
                if vals:
                    parts.append("%s %.2f" % (name, statistics.median(vals)))
            nc = clients_of(ck)
            print("  %-66s %-9s %s" % ("%s, %d client%s" % (label, nc, "" if nc == 1 else "s"),
                                       impl, ", ".join(parts)))

    errors = sum(r.get("errors", 0) for v in good.values() for r in v)
    anomalies = sum(r.get("anomalies", 0) for v in good.values() for r in v)
    bad_verify = [(k, r["verify"]) for k, v in good.items() for r in v
                  if r.get("verify") not in ("ok", "skipped")]
    kinds = {}
    for v in good.values():
        for r in v:
            for k, n in (r.get("error_kinds") or {}).items():
                kinds[k] = kinds.get(k, 0) + n
    total = sum(r.get("txns", 0) for v in good.values() for r in v)
    print()
    print("Checks over all runs (%d measured transactions): %d error replies, %d half-applied "
          "or out-of-order INCR results, %d run(s) whose final key values on the backends "
          "did not match the committed count." % (total, errors, anomalies, len(bad_verify)))
    for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:5]:
        print("  error x%d: %s" % (n, k))
    for (case, impl), why in bad_verify[:5]:
        print("  verify %s/%s: %s" % (case, impl, why[:200]))
    for (case, impl), v in sorted(cells.items()):
        for r in v:
            if r.get("fatal"):
                print("  run %s/%s failed: %s" % (case, impl, r["fatal"].splitlines()[0][:200]))

    # Targets.
    print()
    print("Targets (a benchmark, not a test: nothing fails):")
    lines = []

    def target(desc, num, den, want):
        if num is None or den is None or not den:
            lines.append((desc, None, want))
        else:
            lines.append((desc, num / den, want))

    nc = "%d clients" % n_clients
    target("single-backend via Lockstep >= 80% of direct Redis, 1 client",
           rate.get(("one1", "lockstep")), rate.get(("one1", "redis")), 0.8)
    target("single-backend via Lockstep >= 80% of direct Redis, " + nc,
           rate.get(("oneN", "lockstep")), rate.get(("oneN", "redis")), 0.8)
    target("2-backend >= 25% of single-backend (both via Lockstep), " + nc,
           rate.get(("twoN", "lockstep")), rate.get(("oneN", "lockstep")), 0.25)
    target("3-backend (3 keys) >= 25% of single-backend (via Lockstep), " + nc,
           rate.get(("threeN", "lockstep")), rate.get(("oneN", "lockstep")), 0.25)
    met = 0
    for desc, r, want in lines:
        if r is None:
            print("  %-72s no data" % (desc + ":"))
            continue
        met += r >= want
        print("  %-72s %5.2fx  %s" % (desc + ":", r, "MET" if r >= want else "MISSED"))
    print("  %d of %d met" % (met, len(lines)))

    load = os.path.join(res_dir, "txn", "load.txt")
    if os.path.exists(load):
        with open(load) as f:
            samples = [float(line.split()[0]) for line in f if line.strip()]
        if samples:
            print("  load average (1 min) during the run: %.2f at the start, %.2f at the end, "
                  "max %.2f (%d cpus)" % (samples[0], samples[-1], max(samples), st["nproc"]))
    caveats = os.path.join(res_dir, "caveats.txt")
    if os.path.exists(caveats):
        with open(caveats) as f:
            for line in f:
                if line.strip():
                    print("  CAVEAT: %s" % line.strip())
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
