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
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
