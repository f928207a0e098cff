#!/usr/bin/env python3
"""redis-py (Debian python3-redis, unmodified) against a running Lockstep.

Run by tests/clients/run, which exports LOCKSTEP_PORT (Lockstep) and LOCKSTEP_BACKENDS (the
three backend ports, comma-separated, in configuration order, so the even slot split tells
which backend owns a key). Prints one line per check:

    PASS redis-py: <check>
    FAIL redis-py: <check>: <command> -> <reply Lockstep gave>[, expected <what Redis gives>]
    SKIP redis-py: <check> (<why>)

and exits 1 if any check failed. LOCKSTEP_CLIENT_TXN=0 skips the MULTI/EXEC/WATCH checks.
"""

import os
import sys
import threading
import time
import traceback
import uuid

import redis
from redis.crc import key_slot
from redis.exceptions import LockError, LockNotOwnedError, ResponseError, WatchError

SUITE = "redis-py"
PORT = int(os.environ.get("LOCKSTEP_PORT", "6380"))
BACKEND_PORTS = [int(p) for p in os.environ.get("LOCKSTEP_BACKENDS", "7001,7002,7003").split(",")]
TXN = os.environ.get("LOCKSTEP_CLIENT_TXN", "1") != "0"
RUN = uuid.uuid4().hex[:8]  # keys of this run never collide with a previous one's


class Failure(Exception):
    """A check failed: `command` is what was sent, `reply` what Lockstep answered."""

    def __init__(self, command, reply, expected=None):
        super().__init__(command)
        self.command = command
        self.reply = reply
        self.expected = expected


class Step:
    """The command a check is about to send, so an exception can name it."""

    command = "(connect)"


STEP = Step()


def doing(command):
    STEP.command = command


def expect(command, got, want):
    if got != want:
        raise Failure(command, got, want)


def expect_true(command, got, ok, what):
    if not ok:
        raise Failure(command, got, what)


results = {"pass": 0, "fail": 0}


def check(name, txn=False):
    def wrap(fn):
        if txn and not TXN:
            print(f"SKIP {SUITE}: {name} (LOCKSTEP_CLIENT_TXN=0)", flush=True)
            return fn
        STEP.command = "(setup)"
        t0 = time.monotonic()
        try:
            fn()
        except Failure as f:
            line = f"FAIL {SUITE}: {name}: {f.command} -> {f.reply!r}"
            if f.expected is not None:
                line += f", expected {f.expected!r}" if not isinstance(f.expected, str) else f", expected {f.expected}"
            print(line, flush=True)
            results["fail"] += 1
            return fn
        except Exception as e:  # noqa: BLE001 - a client error is a failed check, with its reply
            print(f"FAIL {SUITE}: {name}: {STEP.command} -> {type(e).__name__}: {e}", flush=True)
            if not isinstance(e, redis.RedisError):
                traceback.print_exc(file=sys.stdout)
            results["fail"] += 1
            return fn
        print(f"PASS {SUITE}: {name} ({(time.monotonic() - t0) * 1000:.0f} ms)", flush=True)
        results["pass"] += 1
        return fn

    return wrap


def client(**kw):
    kw.setdefault("socket_timeout", 15)
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


def backend(i):
    return redis.Redis(host="127.0.0.1", port=BACKEND_PORTS[i], socket_timeout=15)


def backend_of(key):
    """Index of the backend owning `key` under Lockstep's default even split."""
    n = len(BACKEND_PORTS)
    slot = key_slot(key.encode() if isinstance(key, str) else key)
    return max(i for i in range(n) if i * 16384 // n <= slot)


def keys_on_distinct_backends(prefix, count=3):
    """`count` keys named prefix:N, each owned by a different backend."""
    found = {}
    n = 0
    while len(found) < count:
        k = f"{prefix}:{n}"
        found.setdefault(backend_of(k), k)
        n += 1
    return [found[i] for i in sorted(found)][:count]


def k(name):
    return f"ct:{RUN}:{name}"


r = client()

# ---------------------------------------------------------------------------------------------
# Connection pool and basic data


@check("connect: PING, INFO (server + keyspace), CLIENT SETNAME via client_name")
def _():
    c = client(client_name="ct-basic")
    doing("PING")
    expect("PING", c.ping(), True)
    doing("INFO")
    info = c.info()
    expect_true("INFO", info.get("redis_version"), "redis_version" in info, "a redis_version field")
    doing("CLIENT GETNAME")
    expect("CLIENT GETNAME", c.client_getname(), "ct-basic")
    c.close()


@check("keys on every backend: SET/GET/MSET/MGET/DEL placed as the slot map says")
def _():
    keys = keys_on_distinct_backends(k("place"))
    doing(f"MSET {' '.join(keys)}")
    expect("MSET", r.mset({key: f"v-{key}" for key in keys}), True)
    for i, key in enumerate(keys):
        doing(f"EXISTS {key} (directly on backend {BACKEND_PORTS[i]})")
        expect(f"EXISTS {key} on backend :{BACKEND_PORTS[i]}", backend(i).exists(key), 1)
    doing(f"MGET {' '.join(keys)}")
    expect("MGET", r.mget(keys), [f"v-{key}".encode() for key in keys])
    doing(f"DEL {' '.join(keys)}")
    expect("DEL", r.delete(*keys), 3)


@check("data types: hash, list, set, sorted set, INCR, EXPIRE/TTL")
def _():
    doing("HSET")
    r.hset(k("h"), mapping={"a": "1", "b": "2"})
    doing("HGETALL")
    expect("HGETALL", r.hgetall(k("h")), {b"a": b"1", b"b": b"2"})
    doing("RPUSH/LRANGE")
    r.rpush(k("l"), "x", "y", "z")
    expect("LRANGE", r.lrange(k("l"), 0, -1), [b"x", b"y", b"z"])
    doing("SADD/SMEMBERS")
    r.sadd(k("s"), "p", "q")
    expect("SMEMBERS", r.smembers(k("s")), {b"p", b"q"})
    doing("ZADD/ZRANGE WITHSCORES")
    r.zadd(k("z"), {"m1": 1.5, "m2": 2})
    expect("ZRANGE WITHSCORES", r.zrange(k("z"), 0, -1, withscores=True), [(b"m1", 1.5), (b"m2", 2.0)])
    doing("INCRBY")
    expect("INCRBY", r.incrby(k("n"), 5), 5)
    doing("EXPIRE/TTL")
    r.expire(k("n"), 100)
    ttl = r.ttl(k("n"))
    expect_true("TTL", ttl, 0 < ttl <= 100, "0 < ttl <= 100")


@check("connection pool: 8 threads x 300 commands share a pool of at most 8 connections")
def _():
    pool = redis.ConnectionPool(host="127.0.0.1", port=PORT, max_connections=8,
                                client_name="ct-pool", socket_timeout=15)
    c = redis.Redis(connection_pool=pool)
    errors = []

    def worker(t):
        try:
            for i in range(150):
                key = k(f"pool:{t}:{i}")
                c.set(key, f"{t}-{i}")
                got = c.get(key)
                if got != f"{t}-{i}".encode():
                    errors.append(Failure(f"GET {key}", got, f"{t}-{i}".encode()))
                    return
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    doing("SET/GET from 8 threads")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    created = pool._created_connections  # noqa: SLF001 - the pool's own count
    expect_true("ConnectionPool", created, 1 <= created <= 8, "between 1 and 8 connections created")
    doing("CLIENT LIST")
    named = [cl for cl in r.client_list() if cl.get("name") == "ct-pool"]
    expect("CLIENT LIST (clients named ct-pool)", len(named), created)
    pool.disconnect()


@check("BlockingConnectionPool with 2 connections serves 6 threads")
def _():
    pool = redis.BlockingConnectionPool(host="127.0.0.1", port=PORT, max_connections=2, timeout=20)
    c = redis.Redis(connection_pool=pool)
    errors = []

    def worker(t):
        try:
            for i in range(50):
                c.incr(k("bpool"))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    doing("INCR from 6 threads over 2 connections")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    expect("GET", r.get(k("bpool")), b"300")
    pool.disconnect()


# ---------------------------------------------------------------------------------------------
# Pipelines


@check("pipeline(transaction=False): 1000 commands over all backends, replies in order")
def _():
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.set(k(f"pipe:{i}"), i)
    for i in range(500):
        p.incr(k(f"pipe:{i}"))
    doing("pipeline of 500 SET + 500 INCR")
    out = p.execute()
    expect("pipeline replies (SETs)", out[:500], [True] * 500)
    expect("pipeline replies (INCRs)", out[500:], list(range(1, 501)))
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.get(k(f"pipe:{i}"))
    doing("pipeline of 500 GET")
    expect("pipeline GET replies", p.execute(), [str(i + 1).encode() for i in range(500)])


@check("pipeline(transaction=False): an error reply stays in its place")
def _():
    p = r.pipeline(transaction=False)
    p.set(k("perr"), "text").incr(k("perr")).get(k("perr"))
    doing("SET; INCR (on a string); GET")
    out = p.execute(raise_on_error=False)
    expect("SET", out[0], True)
    expect_true("INCR on a string", out[1], isinstance(out[1], ResponseError), "an error reply")
    expect("GET", out[2], b"text")


@check("pipeline(transaction=True), same hash tag: MULTI SET INCR GET EXEC", txn=True)
def _():
    a, b = k("{tx1}a"), k("{tx1}b")
    p = r.pipeline(transaction=True)
    p.set(a, "1").incr(b).incrby(b, 10).get(a)
    doing(f"MULTI; SET {a}; INCR {b}; INCRBY {b}; GET {a}; EXEC")
    expect("EXEC", p.execute(), [True, 1, 11, b"1"])


@check("pipeline(transaction=True), keys on three backends: all writes applied", txn=True)
def _():
    keys = keys_on_distinct_backends(k("tx2"))
    p = r.pipeline(transaction=True)
    for i, key in enumerate(keys):
        p.set(key, f"v{i}")
    p.mget(keys)
    doing(f"MULTI; SET x3; MGET {' '.join(keys)}; EXEC")
    expect("EXEC", p.execute(), [True, True, True, [b"v0", b"v1", b"v2"]])
    for i, key in enumerate(keys):
        expect(f"EXISTS {key} on backend :{BACKEND_PORTS[i]}", backend(i).exists(key), 1)


@check("pipeline(transaction=True): a runtime error fails one command, the others apply", txn=True)
def _():
    keys = keys_on_distinct_backends(k("tx3"))
    r.set(keys[1], "not-a-number")
    p = r.pipeline(transaction=True)
    p.set(keys[0], "a").incr(keys[1]).set(keys[2], "c")
    doing(f"MULTI; SET {keys[0]}; INCR {keys[1]} (a string); SET {keys[2]}; EXEC")
    out = p.execute(raise_on_error=False)
    expect("EXEC reply 1", out[0], True)
    expect_true("EXEC reply 2 (INCR on a string)", out[1], isinstance(out[1], ResponseError), "an error")
    expect("EXEC reply 3", out[2], True)
    expect("MGET after EXEC", r.mget(keys), [b"a", b"not-a-number", b"c"])


@check("pipeline(transaction=True): a queue-time error aborts EXEC (EXECABORT), nothing applied",
       txn=True)
def _():
    keys = keys_on_distinct_backends(k("tx4"))
    p = r.pipeline(transaction=True)
    p.set(keys[0], "a")
    p.execute_command("SET", keys[1])  # wrong arity: refused when queued
    p.set(keys[2], "c")
    cmd = f"MULTI; SET {keys[0]}; SET {keys[1]} (no value); SET {keys[2]}; EXEC"
    doing(cmd)
    try:
        out = p.execute()
    except ResponseError as e:
        expect_true(cmd, str(e), "EXECABORT" in str(e) or "wrong number" in str(e),
                    "EXECABORT (Transaction discarded because of previous errors)")
    else:
        raise Failure(cmd, out, "EXECABORT")
    expect("EXISTS after EXECABORT", r.exists(*keys), 0)


@check("WATCH over keys on two backends: untouched -> EXEC applies", txn=True)
def _():
    keys = keys_on_distinct_backends(k("tx5"))
    r.mset({keys[0]: "10", keys[1]: "20"})

    def move(pipe):
        a = int(pipe.get(keys[0]))
        b = int(pipe.get(keys[1]))
        pipe.multi()
        pipe.set(keys[0], a - 5)
        pipe.set(keys[1], b + 5)

    doing(f"WATCH {keys[0]} {keys[1]}; GET; GET; MULTI; SET; SET; EXEC (r.transaction)")
    expect("EXEC", r.transaction(move, keys[0], keys[1]), [True, True])
    expect("MGET", r.mget(keys[:2]), [b"5", b"25"])


@check("WATCH over keys on two backends: another client's write -> EXEC aborts (WatchError)",
       txn=True)
def _():
    keys = keys_on_distinct_backends(k("tx6"))
    r.mset({keys[0]: "1", keys[1]: "1"})
    other = client()
    with r.pipeline(transaction=True) as pipe:
        doing(f"WATCH {keys[0]} {keys[1]}")
        pipe.watch(keys[0], keys[1])
        pipe.get(keys[0])
        doing(f"SET {keys[1]} (from another connection, after WATCH)")
        other.set(keys[1], "changed")
        pipe.multi()
        pipe.set(keys[0], "from-txn")
        doing("MULTI; SET; EXEC after a watched key changed")
        try:
            out = pipe.execute()
        except WatchError:
            pass
        else:
            raise Failure("EXEC", out, "a nil reply (WatchError)")
    expect("GET after aborted EXEC", r.get(keys[0]), b"1")
    other.close()


@check("transaction, same hash tag, with r.transaction() retry on WatchError", txn=True)
def _():
    key = k("{tx7}counter")
    r.set(key, 0)
    errors = []

    def bump():
        try:
            c = client()
            for _ in range(20):
                def inc(pipe):
                    v = int(pipe.get(key))
                    pipe.multi()
                    pipe.set(key, v + 1)
                c.transaction(inc, key)
            c.close()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    doing(f"4 threads x 20 optimistic increments of {key} (WATCH/GET/MULTI/SET/EXEC)")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    expect("GET after 80 optimistic increments", r.get(key), b"80")


# ---------------------------------------------------------------------------------------------
# Pub/sub


def drain(p, seconds):
    """Every message `p` receives within `seconds` (subscribe confirmations left out)."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        m = p.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if m is not None:
            out.append(m)
    return out


@check("pub/sub: SUBSCRIBE on channels of every backend, PSUBSCRIBE, each message exactly once")
def _():
    chans = keys_on_distinct_backends(k("chan"))
    p = r.pubsub()
    doing(f"SUBSCRIBE {' '.join(chans)}")
    p.subscribe(*chans)
    doing("PSUBSCRIBE")
    p.psubscribe(k("pat:*"))
    confirmations = []
    deadline = time.monotonic() + 5
    while len(confirmations) < 4 and time.monotonic() < deadline:
        m = p.get_message(timeout=0.1)
        if m:
            confirmations.append((m["type"], m["data"]))
    expect("SUBSCRIBE/PSUBSCRIBE confirmations", confirmations,
           [("subscribe", 1), ("subscribe", 2), ("subscribe", 3), ("psubscribe", 4)])
    for i, ch in enumerate(chans):
        doing(f"PUBLISH {ch}")
        n = r.publish(ch, f"m{i}")
        expect_true(f"PUBLISH {ch}", n, n >= 1, "at least 1 receiver")
    doing(f"PUBLISH {k('pat:x')}")
    r.publish(k("pat:x"), "pm")
    got = drain(p, 1.0)
    want = [("message", ch.encode(), f"m{i}".encode()) for i, ch in enumerate(chans)]
    want.append(("pmessage", k("pat:x").encode(), b"pm"))
    expect("messages received", sorted((m["type"], m["channel"], m["data"]) for m in got), sorted(want))
    doing("UNSUBSCRIBE; PUNSUBSCRIBE")
    p.unsubscribe()
    p.punsubscribe()
    doing(f"PUBLISH {chans[0]} after UNSUBSCRIBE")
    r.publish(chans[0], "late")
    expect("messages after UNSUBSCRIBE", [m for m in drain(p, 0.3) if m["type"] == "message"], [])
    p.close()


@check("pub/sub: PING while subscribed (health_check_interval) and run_in_thread")
def _():
    c = client(health_check_interval=1)
    got = []
    p = c.pubsub()
    doing(f"SUBSCRIBE {k('hc')} with a message handler")
    p.subscribe(**{k("hc"): lambda m: got.append(m["data"])})
    doing("PING in subscribed mode")
    p.ping()  # answered in subscribed mode as ["pong", ""]
    types = []
    deadline = time.monotonic() + 3
    while "pong" not in types and time.monotonic() < deadline:
        m = p.get_message(timeout=0.1)
        if m:
            types.append(m["type"])
    expect("PING while subscribed (message types)", types, ["subscribe", "pong"])
    t = p.run_in_thread(sleep_time=0.05)
    try:
        time.sleep(1.5)  # lets the health check PING go out on the subscribed connection
        for i in range(3):
            doing(f"PUBLISH {k('hc')}")
            r.publish(k("hc"), f"x{i}")
        deadline = time.monotonic() + 3
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        t.stop()
        t.join(timeout=5)
    expect("messages handled by run_in_thread", got, [b"x0", b"x1", b"x2"])
    p.close()
    c.close()


# ---------------------------------------------------------------------------------------------
# Lock (redis-py's own: SET NX PX, Lua release/extend through EVALSHA)


@check("redis.lock.Lock: acquire, exclusive, extend, release (SET NX PX + Lua scripts)")
def _():
    name = k("rlock")
    a = r.lock(name, timeout=5, blocking_timeout=2)
    b = client().lock(name, timeout=5, blocking_timeout=0.3)
    doing(f"SET {name} <token> NX PX 5000 (Lock.acquire)")
    expect("Lock.acquire", a.acquire(), True)
    expect("Lock.owned (GET)", a.owned(), True)
    doing(f"SET {name} NX PX (second Lock, should be refused)")
    expect("second Lock.acquire", b.acquire(), False)
    doing("EVALSHA extend script (Lock.extend)")
    expect("Lock.extend", a.extend(10), True)
    ttl = r.pttl(name)
    expect_true("PTTL after extend", ttl, 10000 < ttl <= 15000, "between 10000 and 15000 ms")
    doing("EVALSHA reacquire script (Lock.reacquire)")
    expect("Lock.reacquire", a.reacquire(), True)
    doing("EVALSHA release script (Lock.release)")
    a.release()
    expect("EXISTS after release", r.exists(name), 0)
    doing("Lock.acquire after release")
    expect("second Lock.acquire after release", b.acquire(), True)
    doing("Lock.release of a lock held by someone else")
    try:
        a.do_release(a.local.token or b"not-the-token")
    except LockNotOwnedError:
        pass
    else:
        raise Failure("EVALSHA release script with a wrong token", "released", "LockNotOwnedError")
    b.release()


@check("redis.lock.Lock: context manager across threads, blocking acquire waits for release")
def _():
    name = k("rlock2")
    order = []
    holder_in = threading.Event()

    def holder():
        with client().lock(name, timeout=5):
            order.append("a-in")
            holder_in.set()
            time.sleep(0.4)
            order.append("a-out")

    t = threading.Thread(target=holder)
    t.start()
    holder_in.wait(5)
    doing(f"Lock({name}).acquire(blocking_timeout=5) while another thread holds it")
    with client().lock(name, timeout=5, blocking_timeout=5, sleep=0.02):
        order.append("b-in")
    t.join()
    expect("lock order", order, ["a-in", "a-out", "b-in"])
    try:
        doing("Lock.release of an expired lock")
        lk = r.lock(name, timeout=0.1)
        lk.acquire()
        time.sleep(0.3)
        lk.release()
    except LockError:
        pass
    else:
        raise Failure("Lock.release after the TTL ran out", "released", "LockNotOwnedError")


# ---------------------------------------------------------------------------------------------
# SCAN


@check("scan_iter(match, count): every key of every backend exactly once")
def _():
    want = {k(f"scan:{i}").encode() for i in range(300)}
    p = r.pipeline(transaction=False)
    for key in want:
        p.set(key, "1")
    p.execute()
    seen = []
    doing(f"SCAN MATCH {k('scan:*')} COUNT 50 (scan_iter)")
    for key in r.scan_iter(match=k("scan:*"), count=50):
        seen.append(key)
    expect("keys seen by scan_iter (count)", len(seen), 300)
    expect("keys seen by scan_iter (set)", set(seen) == want, True)
    on = {backend_of(key) for key in want}
    expect("backends holding the scanned keys", sorted(on), list(range(len(BACKEND_PORTS))))


@check("scan_iter(_type=hash), hscan_iter, zscan_iter")
def _():
    r.hset(k("scanh"), mapping={f"f{i}": i for i in range(100)})
    r.zadd(k("scanz"), {f"m{i}": i for i in range(100)})
    doing(f"SCAN MATCH {k('scan*')} TYPE hash")
    expect("SCAN TYPE hash", list(r.scan_iter(match=k("scan*"), _type="hash")), [k("scanh").encode()])
    doing("HSCAN")
    expect("HSCAN fields", len(dict(r.hscan_iter(k("scanh"), count=10))), 100)
    doing("ZSCAN")
    expect("ZSCAN members", len(list(r.zscan_iter(k("scanz"), count=10))), 100)


# ---------------------------------------------------------------------------------------------
# Lua through redis-py's Script objects


@check("register_script: EVALSHA with NOSCRIPT fallback, keys on each backend")
def _():
    script = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    keys = keys_on_distinct_backends(k("lua"))
    doing("SCRIPT FLUSH")
    r.script_flush()
    for key in keys:
        doing(f"EVALSHA <sha> 1 {key} 7")
        expect(f"EVALSHA 1 {key}", script(keys=[key], args=[7]), 7)
    doing("SCRIPT EXISTS")
    expect("SCRIPT EXISTS", r.script_exists(script.sha), [True])


# ---------------------------------------------------------------------------------------------
# LOCK.* (Lockstep's distributed locks) via execute_command


def lock_acquire(c, name, ttl, *extra):
    doing(f"LOCK.ACQUIRE {name} {ttl} {' '.join(map(str, extra))}".rstrip())
    return c.execute_command("LOCK.ACQUIRE", name, ttl, *extra)


@check("LOCK.ACQUIRE -> [token, fence, validity]; LOCK.STATUS; LOCK.EXTEND; LOCK.RELEASE")
def _():
    name = k("lk1")
    reply = lock_acquire(r, name, 10000)
    cmd = f"LOCK.ACQUIRE {name} 10000"
    expect_true(cmd, reply, isinstance(reply, list) and len(reply) == 3, "[token, fence, validity]")
    token, fence, validity = reply
    expect_true(cmd, reply, isinstance(token, bytes) and len(token) == 32, "a 32-hex-digit token")
    expect_true(cmd, reply, isinstance(fence, int) and fence >= 1, "fence >= 1")
    expect_true(cmd, reply, 0 < validity <= 10000, "0 < validity <= 10000")
    doing(f"LOCK.STATUS {name}")
    st = r.execute_command("LOCK.STATUS", name)
    expect_true(f"LOCK.STATUS {name}", st,
                isinstance(st, list) and st[0:4] == [b"held", 1, b"fence", fence] and st[6:8] == [b"waiters", 0],
                f"[held, 1, fence, {fence}, ttl-ms, N, waiters, 0]")
    doing(f"LOCK.ACQUIRE {name} while held")
    expect(f"LOCK.ACQUIRE {name} 1000 (held elsewhere)", client().execute_command("LOCK.ACQUIRE", name, 1000), None)
    doing(f"LOCK.EXTEND {name} <token> 20000")
    v = r.execute_command("LOCK.EXTEND", name, token, 20000)
    expect_true(f"LOCK.EXTEND {name} <token> 20000", v, isinstance(v, int) and 10000 < v <= 20000,
                "validity between 10000 and 20000")
    doing(f"LOCK.EXTEND {name} <wrong token> 20000")
    expect(f"LOCK.EXTEND {name} <wrong token> 20000", r.execute_command("LOCK.EXTEND", name, "0" * 32, 20000), 0)
    doing(f"LOCK.RELEASE {name} <wrong token>")
    expect(f"LOCK.RELEASE {name} <wrong token>", r.execute_command("LOCK.RELEASE", name, "0" * 32), 0)
    doing(f"LOCK.RELEASE {name} <token>")
    expect(f"LOCK.RELEASE {name} <token>", r.execute_command("LOCK.RELEASE", name, token), 1)
    expect(f"LOCK.RELEASE {name} <token> (again)", r.execute_command("LOCK.RELEASE", name, token), 0)
    doing(f"LOCK.STATUS {name}")
    st = r.execute_command("LOCK.STATUS", name)
    expect(f"LOCK.STATUS {name} after release (held)", st[0:2], [b"held", 0])
    reply2 = lock_acquire(r, name, 5000)
    expect_true(f"LOCK.ACQUIRE {name} 5000 (again)", reply2, reply2 is not None and reply2[1] > fence,
                f"a fence greater than {fence}")
    r.execute_command("LOCK.RELEASE", name, reply2[0])


@check("LOCK.GUARD: current fence runs the command, an older fence gets STALEFENCE")
def _():
    name = k("lk2")
    data = k("{lk2data}x")
    token1, fence1, _v = lock_acquire(r, name, 10000)
    doing(f"LOCK.GUARD {name} {fence1} SET {data} first")
    expect(f"LOCK.GUARD {name} {fence1} SET {data} first",
           r.execute_command("LOCK.GUARD", name, fence1, "SET", data, "first"), b"OK")
    r.execute_command("LOCK.RELEASE", name, token1)
    token2, fence2, _v = lock_acquire(r, name, 10000)
    doing(f"LOCK.GUARD {name} {fence2} INCR ... (new holder)")
    expect(f"LOCK.GUARD {name} {fence2} SET {data} second",
           r.execute_command("LOCK.GUARD", name, fence2, "SET", data, "second"), b"OK")
    cmd = f"LOCK.GUARD {name} {fence1} SET {data} stale"
    doing(cmd)
    try:
        out = r.execute_command("LOCK.GUARD", name, fence1, "SET", data, "stale")
    except ResponseError as e:
        expect_true(cmd, str(e), str(e).startswith("STALEFENCE"), "-STALEFENCE ...")
    else:
        raise Failure(cmd, out, "-STALEFENCE ...")
    expect(f"GET {data}", r.get(data), b"second")
    cmd = f"LOCK.GUARD {name} {fence2} GET {data}"
    doing(cmd)
    expect(cmd, r.execute_command("LOCK.GUARD", name, fence2, "GET", data), b"second")
    r.execute_command("LOCK.RELEASE", name, token2)


@check("LOCK.ACQUIRE WAIT: a waiter gets the lock as soon as the holder releases")
def _():
    name = k("lk3")
    token, fence, _v = lock_acquire(r, name, 10000)
    got = {}

    def waiter():
        c = client()
        t0 = time.monotonic()
        got["reply"] = c.execute_command("LOCK.ACQUIRE", name, 10000, "WAIT", 8000)
        got["waited"] = time.monotonic() - t0
        c.close()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    doing(f"LOCK.STATUS {name} with a waiter")
    st = r.execute_command("LOCK.STATUS", name)
    expect(f"LOCK.STATUS {name} (waiters)", st[6:8], [b"waiters", 1])
    doing(f"LOCK.RELEASE {name} <token>")
    expect(f"LOCK.RELEASE {name} <token>", r.execute_command("LOCK.RELEASE", name, token), 1)
    t.join(10)
    rep = got.get("reply")
    cmd = f"LOCK.ACQUIRE {name} 10000 WAIT 8000"
    expect_true(cmd, rep, isinstance(rep, list) and rep[1] > fence, f"a grant with fence > {fence}")
    expect_true(cmd, f"waited {got.get('waited', 0):.2f}s", 0.4 < got["waited"] < 3,
                "woken right after the release (not at the TTL end)")
    r.execute_command("LOCK.RELEASE", name, rep[0])


@check("LOCK.ACQUIRE KEEPALIVE: the lock outlives its TTL while the connection is open")
def _():
    name = k("lk4")
    c = client()
    reply = c.execute_command("LOCK.ACQUIRE", name, 1000, "KEEPALIVE")
    expect_true(f"LOCK.ACQUIRE {name} 1000 KEEPALIVE", reply, isinstance(reply, list), "a grant")
    time.sleep(2.0)
    doing(f"LOCK.STATUS {name} after 2x the TTL")
    expect(f"LOCK.STATUS {name} (held) 2 s after a 1 s KEEPALIVE grant",
           r.execute_command("LOCK.STATUS", name)[0:2], [b"held", 1])
    doing(f"LOCK.RELEASE {name} <token>")
    expect(f"LOCK.RELEASE {name}", c.execute_command("LOCK.RELEASE", name, reply[0]), 1)
    c.close()


@check("LOCK.* errors: wrong arity and bad TTL are error replies, the connection stays usable")
def _():
    for args in (("LOCK.ACQUIRE", k("lk5")), ("LOCK.ACQUIRE", k("lk5"), "notanumber"),
                 ("LOCK.RELEASE", k("lk5"))):
        cmd = " ".join(args)
        doing(cmd)
        try:
            out = r.execute_command(*args)
        except ResponseError:
            pass
        else:
            raise Failure(cmd, out, "an error reply")
    doing("PING after the errors")
    expect("PING", r.ping(), True)


print(f"{SUITE}: {results['pass']} passed, {results['fail']} failed", flush=True)
sys.exit(1 if results["fail"] else 0)
