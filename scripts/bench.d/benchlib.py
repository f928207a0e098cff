#!/usr/bin/env python3
"""Helpers for scripts/bench (Lockstep's benchmark). Standard library only.

Subcommands (all addresses are 127.0.0.1):
  ports N                      print N distinct free TCP ports, one per line
  wait-ping PORT SECONDS       exit 0 as soon as PORT answers PING with +PONG, else 1
  sanity PORT BACKEND...       check SET/GET/MSET/LPUSH/LRANGE through PORT and that the
                               data really landed on one of the BACKEND ports; exit 1 + reason
  flush PORT...                FLUSHALL (synchronous) on each port
  idle PORT PID COUNT OUT      open COUNT idle connections to PORT, one PING each, and write
                               the VmRSS of PID before / after / after closing to OUT (JSON)
  report RESULTS_DIR           print the throughput/latency table and the targets verdict
  memreport RESULTS_DIR        print the memory table
  wait-uptime SECONDS PORT...  wait until every PORT's INFO server uptime_in_seconds >= SECONDS
  lock-ready PORT TTL SECONDS BACKEND...
                               wait until LOCK.ACQUIRE through PORT grants (the lock backends
                               leave their start-up quarantine), then check that the grant is
                               a real quorum hold on the BACKEND ports, that a second acquire
                               is refused and that LOCK.RELEASE frees it; exit 1 + reason
  lockreport RESULTS_DIR       print the locks table (scripts/bench locks) and the targets
"""

import csv
import glob
import json
import os
import resource
import socket
import statistics
import sys
import time

HOST = "127.0.0.1"


# --------------------------------------------------------------------------------------------
# A minimal RESP client (enough for PING, SET, GET, MSET, LPUSH, LRANGE, FLUSHALL).

class RespError(Exception):
    pass


class Conn:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by peer")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("bad reply line %r" % line[:60])

    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()


def cmd_ports(n):
    socks = []
    try:
        for _ in range(int(n)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        for s in socks:
            print(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return 0


def cmd_wait_ping(port, seconds):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            c = Conn(int(port), timeout=1.0)
            try:
                if c.cmd("PING") == "PONG":
                    return 0
            finally:
                c.close()
        except (OSError, ConnectionError, ValueError):
            pass
        time.sleep(0.1)
    return 1


def cmd_sanity(port, backends):
    """Guards against a target that answers fast but wrong: redis-benchmark counts any reply."""
    tag = "%d.%d" % (os.getpid(), int(time.time() * 1000))
    keys = ["bench:sanity:%s:%d" % (tag, i) for i in range(8)]
    lkey = "bench:sanity:%s:list" % tag
    try:
        c = Conn(int(port))
        checks = [
            (("PING",), "PONG"),
            (("SET", keys[0], "v0"), "OK"),
            (("GET", keys[0]), "v0"),
            (("MSET",) + tuple(x for i, k in enumerate(keys[1:], 1) for x in (k, "v%d" % i)), "OK"),
            (("GET", keys[5]), "v5"),
            (("GET", "bench:sanity:%s:missing" % tag), None),
            (("LPUSH", lkey, "a", "b", "c"), 3),
            (("LRANGE", lkey, 0, 99), ["c", "b", "a"]),
        ]
        for args, want in checks:
            got = c.cmd(*args)
            if got != want:
                print("%s -> %r (expected %r)" % (" ".join(map(str, args[:3])), got, want))
                return 1
        c.close()
        if backends:
            found = {}
            for bp in backends:
                b = Conn(int(bp))
                for k in keys:
                    if b.cmd("GET", k) is not None:
                        found[k] = bp
                b.close()
            missing = [k for k in keys if k not in found]
            if missing:
                print("%d of %d keys written through the target are on no backend"
                      % (len(missing), len(keys)))
                return 1
    except (OSError, ConnectionError, ValueError) as e:
        print("error: %s" % e)
        return 1
    return 0


def cmd_flush(ports):
    for p in ports:
        c = Conn(int(p), timeout=60)
        r = c.cmd("FLUSHALL")
        c.close()
        if r != "OK":
            print("FLUSHALL on %s: %r" % (p, r), file=sys.stderr)
            return 1
    return 0


# --------------------------------------------------------------------------------------------
# Memory per idle connection.

def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


PING = b"*1\r\n$4\r\nPING\r\n"


def read_pong(s):
    buf = b""
    while not buf.endswith(b"\r\n"):
        d = s.recv(64)
        if not d:
            raise ConnectionError("closed by the target")
        buf += d
    if buf != b"+PONG\r\n":
        raise ConnectionError("replied %r" % buf[:80])


def cmd_idle(port, pid, count, out):
    port, pid, count = int(port), int(pid), int(count)
    res = {"conns_wanted": count, "conns_open": 0, "error": None}
    nofile = raise_nofile(count + 256)
    if nofile < count + 16:
        res["error"] = "RLIMIT_NOFILE is %d, need %d" % (nofile, count + 16)
    socks = []
    try:
        # Warm up: first connection and first PING may allocate once-only structures.
        for _ in range(2):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(PING)
            read_pong(s)
            s.close()
        time.sleep(0.5)
        res["rss_before_kib"] = vmrss_kib(pid)
        if res["error"] is None:
            t0 = time.monotonic()
            batch = 256  # below any sane listen backlog, so connect() never waits for a SYN retry
            for start in range(0, count, batch):
                chunk = []
                try:
                    for _ in range(min(batch, count - start)):
                        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        s.settimeout(30)
                        chunk.append(s)
                        s.connect((HOST, port))
                    # One PING at a time: the target never holds more than one request in
                    # flight, so transient read/write buffers (pooled after use) do not
                    # inflate the per-connection figure.
                    for s in chunk:
                        s.sendall(PING)
                        read_pong(s)
                        res["conns_open"] += 1
                finally:
                    socks.extend(chunk)
            res["open_seconds"] = round(time.monotonic() - t0, 2)
            time.sleep(1.0)
            res["rss_after_kib"] = vmrss_kib(pid)
            # Are they all still open? (a target that drops idle clients would shrink here)
            alive = 0
            for s in socks:
                s.setblocking(False)
                try:
                    alive += 0 if s.recv(1) == b"" else 1
                except BlockingIOError:
                    alive += 1
                except OSError:
                    pass
            res["conns_alive_at_measure"] = alive
    except (OSError, ConnectionError, RuntimeError) as e:
        res["error"] = "after %d connections: %s" % (res["conns_open"], e)
        try:
            res["rss_after_kib"] = vmrss_kib(pid)
        except (OSError, RuntimeError):
            pass
    finally:
        for s in socks:
            s.close()
    try:
        time.sleep(1.5)
        res["rss_closed_kib"] = vmrss_kib(pid)
    except (OSError, RuntimeError) as e:
        res["error"] = (res["error"] or "") + " (target died: %s)" % e
    if res["conns_open"] and "rss_after_kib" in res and "rss_before_kib" in res:
        res["kib_per_conn"] = (res["rss_after_kib"] - res["rss_before_kib"]) / res["conns_open"]
    with open(out, "w") as f:
        json.dump(res, f)
    return 0


# --------------------------------------------------------------------------------------------
# Reports.

TESTS = ["GET", "SET", "MSET", "LPUSH", "LRANGE_100"]


def test_key(name):
    if name.startswith("LPUSH (needed"):
        return None  # the fill phase redis-benchmark runs before LRANGE_*; not a result
    if name.startswith("LRANGE_100"):
        return "LRANGE_100"
    if name.startswith("MSET"):
        return "MSET"
    return name if name in TESTS else None


def load_targets(res_dir):
    """targets.tsv: key, label, status (ok|skipped|failed), note."""
    targets = []
    path = os.path.join(res_dir, "targets.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    targets.append({"key": parts[0], "label": parts[1], "status": parts[2],
                                    "note": parts[3] if len(parts) > 3 else ""})
    return targets


def load_runs(res_dir):
    """runs/<target>.P<p>.r<rep>.csv -> {(target, p, test): [(rps, p50, p99), ...]}"""
    cells = {}
    for path in sorted(glob.glob(os.path.join(res_dir, "runs", "*.csv"))):
        base = os.path.basename(path)[:-4]
        target, p, _rep = base.rsplit(".", 2)
        p = int(p[1:])
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    t = test_key(row["test"])
                    if t is None:
                        continue
                    vals = (float(row["rps"]), float(row["p50_latency_ms"]),
                            float(row["p99_latency_ms"]))
                except (KeyError, ValueError, TypeError):
                    continue
                cells.setdefault((target, p, t), []).append(vals)
    return cells


def fmt_rps(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    return "%.1fk" % (v / 1e3)


def fmt_lat(p50, p99):
    if p50 is None:
        return "-"
    return "%.2f/%.2f" % (p50, p99)


def median_cell(samples):
    if not samples:
        return None
    rps = [s[0] for s in samples]
    return {
        "rps": statistics.median(rps),
        "p50": statistics.median(s[1] for s in samples),
        "p99": statistics.median(s[2] for s in samples),
        "n": len(samples),
        "spread": (max(rps) - min(rps)) / statistics.median(rps) if len(rps) > 1 else None,
    }


def cmd_report(res_dir):
    targets = load_targets(res_dir)
    cells = load_runs(res_dir)
    pipes = sorted({k[1] for k in cells}) or [1, 16]
    shown = [t for t in targets if t["status"] != "skipped"]
    keys = [t["key"] for t in shown]
    med = {k: median_cell(v) for k, v in cells.items()}

    def get(target, p, test):
        return med.get((target, p, test))

    def ratio(a, b):
        if a is None or b is None or not b["rps"]:
            return None
        return a["rps"] / b["rps"]

    col_w = 22
    head1 = "%-11s %3s " % ("", "")
    head2 = "%-11s %3s " % ("test", "-P")
    for t in shown:
        head1 += "| %-*s" % (col_w - 2, t["label"][:col_w - 2])
        head2 += "| %-8s%-*s" % ("rps", col_w - 10, "p50/p99 ms")
    head1 += "| %-7s %-7s %s" % ("w1/twem", "wD/twem", "noise")
    head2 += "| %-7s %-7s %s" % ("rps", "rps", "(rps)")
    print(head1)
    print(head2)
    print("-" * len(head2))
    for test in TESTS:
        for p in pipes:
            line = "%-11s %3d " % (test, p)
            spreads = []
            for k in keys:
                c = get(k, p, test)
                line += "| %-8s%-*s" % (fmt_rps(c and c["rps"]), col_w - 10,
                                        fmt_lat(c and c["p50"], c and c["p99"]))
                if c and c["spread"] is not None:
                    spreads.append(c["spread"])
            r1 = ratio(get("ls1", p, test), get("twem", p, test))
            rd = ratio(get("lsd", p, test), get("twem", p, test))
            line += "| %-7s %-7s %s" % ("%.2fx" % r1 if r1 else "-", "%.2fx" % rd if rd else "-",
                                        "+-%.0f%%" % (50 * max(spreads)) if spreads else "-")
            print(line)
    reps = sorted({c["n"] for c in med.values() if c})
    print("Cells: median of %s run(s) each; p50/p99 are medians of the runs' percentiles. "
          "noise = half of the widest (max-min)/median rps spread in the row."
          % ("/".join(map(str, reps)) or "0"))
    print("w1 = Lockstep workers=1, wD = Lockstep default workers, twem = twemproxy; "
          "redis direct = one of the backends, no proxy.")

    # Targets from the issue: Lockstep workers=1 against twemproxy.
    print()
    print("Targets (Lockstep workers=1 vs twemproxy: rps >= 1.25x at -P 1 and >= 1.5x at -P 16 "
          "on GET and SET; p99 no worse):")
    if not any(t["key"] == "ls1" and t["status"] == "ok" for t in targets):
        print("  not evaluated: Lockstep (workers=1) did not run (see notes)")
    elif not any(t["key"] == "twem" and t["status"] == "ok" for t in targets):
        print("  not evaluated: twemproxy did not run (see notes)")
    else:
        met = total = 0
        for test in ("GET", "SET"):
            for p, need in ((1, 1.25), (16, 1.5)):
                a, b = get("ls1", p, test), get("twem", p, test)
                if a is None or b is None:
                    print("  %-3s -P %-2d  no data" % (test, p))
                    total += 2
                    continue
                r = a["rps"] / b["rps"]
                ok_r = r >= need
                ok_l = a["p99"] <= b["p99"]
                met += ok_r + ok_l
                total += 2
                print("  %-3s -P %-2d  rps %5.2fx (need >= %.2fx) %-6s  p99 %.3f vs %.3f ms %s"
                      % (test, p, r, need, "MET" if ok_r else "MISSED", a["p99"], b["p99"],
                         "MET" if ok_l else "MISSED"))
        print("  %d of %d met%s" % (met, total, "" if met == total else
                                     " (a benchmark, not a test: nothing fails)"))
    caveats = os.path.join(res_dir, "caveats.txt")
    if os.path.exists(caveats):
        with open(caveats) as f:
            for line in f:
                print("  CAVEAT: %s" % line.strip())

    notes = [t for t in targets if t["note"]]
    if notes:
        print()
        print("Notes:")
        for t in notes:
            print("  %s [%s]: %s" % (t["label"], t["status"], t["note"]))
    errs = sorted(glob.glob(os.path.join(res_dir, "runs", "*.fail")))
    for path in errs:
        with open(path) as f:
            print("  run %s: %s" % (os.path.basename(path)[:-5], f.read().strip()))
    return 0


def cmd_memreport(res_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(res_dir, "memory", "*.json"))):
        with open(path) as f:
            rows.append((os.path.basename(path)[:-5], json.load(f)))
    labels = {t["key"]: t["label"] for t in load_targets(os.path.join(res_dir, "memory"))}
    order = ["ls1", "lsd", "twem", "redis"]
    rows.sort(key=lambda r: order.index(r[0]) if r[0] in order else 99)

    def mib(v):
        return "-" if v is None else "%.1f MiB" % (v / 1024)

    print("%-26s %7s %11s %11s %12s %9s  %s" % ("target", "conns", "RSS before", "RSS after",
                                               "after close", "per conn", ""))
    for key, r in rows:
        per = r.get("kib_per_conn")
        verdict = ""
        if key in ("ls1", "lsd") and per is not None and not r.get("error"):
            verdict = "target <= 1 KiB: %s" % ("MET" if per <= 1.0 else "MISSED")
        if r.get("error"):
            verdict = (verdict + "  " if verdict else "") + "error: " + r["error"]
        elif r.get("conns_alive_at_measure", r["conns_open"]) != r["conns_open"]:
            verdict += "  (only %d still open when measured)" % r["conns_alive_at_measure"]
        print("%-26s %7d %11s %11s %12s %9s  %s" % (
            labels.get(key, key)[:26], r.get("conns_open", 0), mib(r.get("rss_before_kib")),
            mib(r.get("rss_after_kib")), mib(r.get("rss_closed_kib")),
            "-" if per is None or r.get("error") else "%.2f KiB" % per, verdict))
    for t in load_targets(os.path.join(res_dir, "memory")):
        if t["status"] != "ok":
            print("%-26s %s" % (t["label"][:26], "skipped: " + t["note"]))
    print("per conn = (VmRSS with all connections open, each having answered one PING - VmRSS "
          "before) / connections.")
    return 0


# --------------------------------------------------------------------------------------------
# Locks (scripts/bench locks).

def cmd_wait_uptime(seconds, ports):
    """Lockstep quarantines a lock backend that has been up for less than locks.quarantine_ms
    when it first sees it, and lets it back only after re-seeding its fence counters from a
    quorum of *eligible* others: if every backend started that recently, none ever becomes
    eligible (see the note printed by scripts/bench locks). So Lockstep starts only once the
    backends are older than the window."""
    need = int(seconds)
    for p in ports:
        while True:
            c = Conn(int(p))
            info = c.cmd("INFO", "server")
            c.close()
            up = int(info.split("uptime_in_seconds:")[1].split()[0])
            if up >= need:
                break
            time.sleep(min(1.0, need - up))
    return 0


def cmd_lock_ready(port, ttl, seconds, backends):
    port, ttl = int(port), int(ttl)
    deadline = time.monotonic() + float(seconds)
    name = "bench:ready:%d.%d" % (os.getpid(), int(time.time() * 1000))
    last = None
    try:
        c = Conn(port, timeout=10)
        while True:
            got = c.cmd("LOCK.ACQUIRE", name, ttl)
            if isinstance(got, list):
                break
            last = got
            if isinstance(got, RespError) and str(got).startswith("NOQUORUM") \
                    and time.monotonic() < deadline:
                time.sleep(0.2)  # backends still unverified / in their start-up quarantine
                continue
            print("LOCK.ACQUIRE %s %d -> %r" % (name, ttl, got))
            return 1
        if len(got) != 3 or not got[0] or int(got[1]) < 1 or not 0 < int(got[2]) <= ttl:
            print("LOCK.ACQUIRE -> %r (expected [token, fence, validity-ms])" % (got,))
            return 1
        token = got[0]
        holders = 0
        for bp in backends:
            b = Conn(int(bp))
            holders += b.cmd("EXISTS", "__lockstep:lock:" + name) == 1
            b.close()
        if holders < len(backends) // 2 + 1:
            print("lock granted but held on only %d of %d backends" % (holders, len(backends)))
            return 1
        again = c.cmd("LOCK.ACQUIRE", name, ttl, "WAIT", 50)
        if again is not None:
            print("a second LOCK.ACQUIRE of a held lock returned %r, expected nil" % (again,))
            return 1
        rel = c.cmd("LOCK.RELEASE", name, token)
        if rel != 1:
            print("LOCK.RELEASE -> %r, expected 1" % (rel,))
            return 1
        got = c.cmd("LOCK.ACQUIRE", name, ttl, "WAIT", 500)
        if not isinstance(got, list) or c.cmd("LOCK.RELEASE", name, got[0]) != 1:
            print("re-acquire after release -> %r" % (got,))
            return 1
        c.close()
    except (OSError, ConnectionError, ValueError) as e:
        print("error: %s (last reply %r)" % (e, last))
        return 1
    return 0


LOCK_CASES = [  # (case key, label)
    ("unc1", "uncontended, 1 client"),
    ("uncN", "uncontended, {clients} clients on {clients} locks"),
    ("con", "contended, {clients} clients on {locks} locks"),
]


def load_lock_runs(res_dir, mode="locks"):
    """<mode>/<case>.<impl>.r<rep>.json -> {(case, impl): [result, ...]} (the last JSON line of
    each load-generator run; `locks` and `txn` modes write the same layout)"""
    cells = {}
    for path in sorted(glob.glob(os.path.join(res_dir, mode, "*.r*.json"))):
        case, impl, _rep = os.path.basename(path)[:-5].split(".")
        try:
            with open(path) as f:
                r = json.loads(f.read().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            r = {"fatal": "no result (see %s.err)" % path[:-5]}
        cells.setdefault((case, impl), []).append(r)
    return cells


def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt_pairs(v):
    if v is None:
        return "-"
    return "%.0f" % v if v < 10000 else "%.1fk" % (v / 1e3)


def fmt_ms(v):
    if v is None:
        return "-"
    return "%.3f" % v if v < 1 else ("%.2f" % v if v < 100 else "%.0f" % v)


def cmd_lockreport(res_dir):
    with open(os.path.join(res_dir, "locks", "settings.json")) as f:
        st = json.load(f)
    cells = load_lock_runs(res_dir)
    good = {k: [r for r in v if not r.get("fatal")] for k, v in cells.items()}
    ls_label = st["lockstep_label"]
    w = 31
    print("%-38s| %-*s| %-*s| %s" % ("", w, ls_label, w, "node-redlock (client-side)", "ratio"))
    print("%-38s| %-*s| %-*s| %s" % ("case", w, "pairs/s  acquire p50 / p99 ms", w,
                                     "pairs/s  acquire p50 / p99 ms", "pairs/s  noise"))
    print("-" * (38 + 2 * (w + 2) + 16))
    ratios = {}
    for case, label in LOCK_CASES:
        line = "%-38s" % label.format(**st)
        spreads = []
        rates = {}
        for impl in ("lockstep", "redlock"):
            rs = good.get((case, impl), [])
            rate = med(rs, "rate")
            rates[impl] = rate
            if len(rs) > 1 and rate:
                vals = [r["rate"] for r in rs]
                spreads.append((max(vals) - min(vals)) / rate)
            line += "| %-8s %-*s" % (fmt_pairs(rate), w - 9, "%s / %s" % (
                fmt_ms(med(rs, "p50_ms")), fmt_ms(med(rs, "p99_ms"))) if rs else "-")
        r = rates["lockstep"] / rates["redlock"] if rates["lockstep"] and rates["redlock"] else None
        ratios[case] = r
        line += "| %-8s %s" % ("%.2fx" % r if r else "-",
                               "+-%.0f%%" % (50 * max(spreads)) if spreads else "-")
        print(line)
    print("Median of %s run(s) per cell, %s s measured each (after %s s warm-up); cells alternate, "
          "order rotated each repetition. noise = half the widest (max-min)/median pairs/s spread."
          % ("/".join(str(n) for n in sorted({len(v) for v in good.values() if v})) or "0",
             st["seconds"], st["warmup"]))
    print("Pair = acquire (ttl %d ms) then release at once; latency = acquire request to grant, "
          "waiting included. Lockstep: %s; contended acquires use WAIT %d. node-redlock %s: "
          "driftFactor %s, retryCount %d, retryDelay %d ms, retryJitter %d ms (Lockstep's defaults: "
          "drift 0.01, 3 retries, 200 ms +-50%%). One load-generator process (Node %s, ioredis %s) "
          "per cell; every simulated client has its own connection(s)."
          % (st["ttl"], st["lockstep_desc"], st["wait"], st["redlock_version"],
             st["redlock"]["driftFactor"], st["redlock"]["retryCount"], st["redlock"]["retryDelay"],
             st["redlock"]["retryJitter"], st["node_version"], st["ioredis_version"]))

    # What gave up / failed, and who used the CPU.
    print()
    print("%-38s| %-61s| %s" % ("CPU used (cores; 2 = all) / outcomes", ls_label,
                                 "node-redlock"))
    for case, label in LOCK_CASES:
        line = "%-38s" % label.format(**st)
        for impl in ("lockstep", "redlock"):
            rs = good.get((case, impl), [])
            parts = []
            cpu = [r["cpu_cores"] for r in rs if r.get("cpu_cores")]
            for k in ("lockstep", "redis", "loadgen"):
                vals = [c[k] for c in cpu if k in c]
                if vals and (k != "lockstep" or impl == "lockstep"):
                    parts.append("%s %.2f" % ({"redis": "3 redis", "loadgen": "node"}.get(k, k),
                                              statistics.median(vals)))
            rel = med(rs, "release_p50_ms")
            if rel is not None:
                parts.append("release p50 %s" % fmt_ms(rel))
            gave = sum(r.get("gave_up", 0) for r in rs)
            errs = sum(r.get("errors", 0) for r in rs)
            if gave:
                parts.append("gave up %d" % gave)
            if errs:
                parts.append("ERRORS %d" % errs)
            line += "| %-61s" % ", ".join(parts)
        print(line.rstrip())
    print("(medians over runs; release p50 in ms; gave up = acquires that ended without the "
          "lock: nil after WAIT / Redlock's ExecutionError after its retries, summed over runs)")

    # SET NX PX vs LOCK.ACQUIRE, one client, interleaved on one connection.
    single = good.get(("single", "lockstep"), [])
    set50, acq50 = med(single, "set_p50_ms"), med(single, "p50_ms")
    print()
    print("Round trip through %s, 1 client, interleaved on one connection (SET, ACQUIRE, "
          "RELEASE, SET, ...):" % ls_label)
    if single:
        print("  SET k v NX PX %d   p50 %s ms  p99 %s ms" % (st["ttl"], fmt_ms(set50),
                                                          fmt_ms(med(single, "set_p99_ms"))))
        print("  LOCK.ACQUIRE        p50 %s ms  p99 %s ms" % (fmt_ms(acq50),
                                                           fmt_ms(med(single, "p99_ms"))))
    else:
        print("  no data")

    print()
    print("Targets (a benchmark, not a test: nothing fails):")
    met = total = 0
    for case, label in LOCK_CASES:
        r = ratios.get(case)
        total += 1
        if r is None:
            print("  pairs/s >= 3x node-redlock, %-37s no data" % (label.format(**st) + ":"))
            continue
        met += r >= 3
        print("  pairs/s >= 3x node-redlock, %-37s %5.2fx  %s"
              % (label.format(**st) + ":", r, "MET" if r >= 3 else "MISSED"))
    total += 1
    if set50 and acq50:
        q = acq50 / set50
        met += q <= 2
        print("  uncontended LOCK.ACQUIRE p50 <= 2x SET NX PX p50 (%.3f / %.3f ms): %5.2fx  %s"
              % (acq50, set50, q, "MET" if q <= 2 else "MISSED"))
    else:
        print("  uncontended LOCK.ACQUIRE p50 <= 2x SET NX PX p50:                   no data")
    print("  %d of %d met" % (met, total))
    caveats = os.path.join(res_dir, "caveats.txt")
    if os.path.exists(caveats):
        with open(caveats) as f:
            for line in f:
                print("  CAVEAT: %s" % line.strip())
    fatal = [(k, r["fatal"]) for k, v in cells.items() for r in v if r.get("fatal")]
    for (case, impl), why in fatal:
        print("  run %s/%s failed: %s" % (case, impl, why.splitlines()[0][:200]))
    kinds = {}
    for v in good.values():
        for r in v:
            for k, n in (r.get("error_kinds") or {}).items():
                kinds[k] = kinds.get(k, 0) + n
    for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:5]:
        print("  error x%d: %s" % (n, k))
    return 0


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "ports":
        return cmd_ports(*args)
    if cmd == "wait-ping":
        return cmd_wait_ping(*args)
    if cmd == "sanity":
        return cmd_sanity(args[0], args[1:])
    if cmd == "flush":
        return cmd_flush(args)
    if cmd == "idle":
        return cmd_idle(*args)
    if cmd == "report":
        return cmd_report(*args)
    if cmd == "memreport":
        return cmd_memreport(*args)
    if cmd == "wait-uptime":
        return cmd_wait_uptime(args[0], args[1:])
    if cmd == "lock-ready":
        return cmd_lock_ready(args[0], args[1], args[2], args[3:])
    if cmd == "lockreport":
        return cmd_lockreport(*args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
