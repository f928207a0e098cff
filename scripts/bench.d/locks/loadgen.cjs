#!/usr/bin/env node
// Load generator for `scripts/bench locks`: one measurement cell per process.
//
//   node loadgen.cjs '<json spec>'      prints one JSON result line on stdout
//
// spec: {
//   kind:      "lockstep"  LOCK.ACQUIRE / LOCK.RELEASE through Lockstep (one ioredis connection
//                          per simulated client)
//              "redlock"   node-redlock v5 over the backends directly (each simulated client has
//                          its own Redlock instance and its own three ioredis connections)
//              "single"    one client on one connection to Lockstep, interleaving
//                          SET <fresh key> v NX PX ttl and LOCK.ACQUIRE -> LOCK.RELEASE, so both
//                          round trips are timed under the same conditions (set_p50_ms, p50_ms)
//   port, backends: [ports], clients, locks (distinct lock names; client i uses lock i % locks),
//   seconds (measured window), warmup (seconds before it), ttl (ms), wait (ms; Lockstep: WAIT
//   <wait> on LOCK.ACQUIRE, 0 = no WAIT), redlock: {retryCount, retryDelay, retryJitter,
//   driftFactor}, prefix (lock/key names), pids: {label: [pid...]} (CPU time sampled from /proc
//   over the window)
// }
//
// Each simulated client loops acquire -> release for warmup + seconds. Counted in the window:
// pairs whose release completed inside it (pairs/s = pairs / window), and the latency of every
// successful acquire that completed inside it (request sent -> grant received; with WAIT or
// Redlock's retry loop it includes the waiting). An acquire that gives up (nil / Redlock's
// ExecutionError) counts as `gaveUp`, an error reply or a failed release as `errors`.
"use strict";

const fs = require("fs");
const Redis = require("ioredis");
const RedlockModule = require("redlock");
const Redlock = RedlockModule.default || RedlockModule;

const spec = JSON.parse(process.argv[2]);
const HOST = "127.0.0.1";

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic

function newConn(port) {
  return new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    enableAutoPipelining: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // a benchmark: a lost connection is an error, not a retry
    connectTimeout: 5000,
  });
}

function cpuTicks(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch (e) {
    return null;
  }
}
function sampleCpu() {
  const out = {};
  for (const [label, pids] of Object.entries(spec.pids || {})) {
    let sum = 0;
    for (const p of pids) {
      const t = cpuTicks(p);
      if (t === null) return null;
      sum += t;
    }
    out[label] = sum;
  }
  out.loadgen = process.cpuUsage();
  return out;
}
const CLK_TCK = 100; // Linux USER_HZ

async function main() {
  const s = spec;
  const conns = [];
  const clients = [];
  for (let i = 0; i < s.clients; i++) {
    const lockName = `${s.prefix}:${i % s.locks}`;
    if (s.kind === "redlock") {
      const cs = s.backends.map((p) => newConn(p));
      conns.push(...cs);
      const rl = new Redlock(cs, s.redlock);
      clients.push({ lockName, rl });
    } else {
      const c = newConn(s.port);
      conns.push(c);
      clients.push({ lockName, c });
    }
  }
  await Promise.all(conns.map((c) => c.connect()));

  let recording = false;
  let stop = false;
  let tStart = 0;
  let tEnd = 0;
  const lat = []; // acquire latencies (ms)
  const relLat = []; // release latencies (ms)
  let pairs = 0;
  let gaveUp = 0;
  let errors = 0;
  const errorKinds = {};
  const noteError = (e) => {
    errors++;
    const k = String((e && e.message) || e).slice(0, 80);
    errorKinds[k] = (errorKinds[k] || 0) + 1;
  };
  const inWindow = (t) => recording && t >= tStart;
  const ttl = String(s.ttl);
  const acquireArgs = s.wait > 0 ? [ttl, "WAIT", String(s.wait)] : [ttl];
  let seq = 0;

  const fatalConn = (e) => e && /Connection is closed|ECONNRESET|EPIPE/.test(String(e.message));
  async function lockstepPair(cl) {
    const t0 = now();
    let reply;
    try {
      reply = await cl.c.call("LOCK.ACQUIRE", cl.lockName, ...acquireArgs);
    } catch (e) {
      if (inWindow(now())) noteError(e);
      if (fatalConn(e)) throw e;
      return;
    }
    const t1 = now();
    if (reply === null) {
      if (inWindow(t1)) gaveUp++;
      return;
    }
    if (inWindow(t1)) lat.push(t1 - t0);
    try {
      const r = await cl.c.call("LOCK.RELEASE", cl.lockName, reply[0]);
      if (r !== 1) throw new Error(`LOCK.RELEASE returned ${r}`);
      const t2 = now();
      if (inWindow(t2)) {
        pairs++;
        relLat.push(t2 - t1);
      }
    } catch (e) {
      if (inWindow(now())) noteError(e);
      if (fatalConn(e)) throw e;
    }
  }
  async function runLockstep(cl) {
    while (!stop) await lockstepPair(cl);
  }

  async function runRedlock(cl) {
    while (!stop) {
      const t0 = now();
      let lock;
      try {
        lock = await cl.rl.acquire([cl.lockName], s.ttl);
      } catch (e) {
        const t1 = now();
        if (inWindow(t1)) {
          if (e && e.name === "ExecutionError") gaveUp++;
          else noteError(e);
        }
        continue;
      }
      const t1 = now();
      if (inWindow(t1)) lat.push(t1 - t0);
      try {
        await lock.release();
        const t2 = now();
        if (inWindow(t2)) {
          pairs++;
          relLat.push(t2 - t1);
        }
      } catch (e) {
        if (inWindow(now())) noteError(e);
      }
    }
  }

  const setLat = [];
  async function runSingle(cl) {
    while (!stop) {
      const key = `${s.prefix}:set:${seq++}`;
      const t0 = now();
      try {
        const r = await cl.c.set(key, "v", "PX", s.ttl, "NX");
        const t1 = now();
        if (r !== "OK") throw new Error(`SET NX returned ${r}`);
        if (inWindow(t1)) setLat.push(t1 - t0);
      } catch (e) {
        if (inWindow(now())) noteError(e);
      }
      await lockstepPair(cl);
    }
  }

  const run = { lockstep: runLockstep, redlock: runRedlock, single: runSingle }[s.kind];
  if (!run) throw new Error(`unknown kind ${s.kind}`);
  const loops = clients.map((cl) => run(cl));
  let fatal = null;
  const all = Promise.all(loops).catch((e) => {
    fatal = e;
    stop = true;
  });

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(s.warmup * 1000);
  const cpu0 = sampleCpu();
  tStart = now();
  recording = true;
  await sleep(s.seconds * 1000);
  tEnd = now();
  const cpu1 = sampleCpu();
  recording = false;
  stop = true;
  // Loops finish their current pair (at most WAIT / Redlock's retry window plus a round trip).
  await Promise.race([all, sleep(Math.max(3000, 2 * (s.wait || 0) + 3000))]);
  for (const c of conns) c.disconnect();

  const window = (tEnd - tStart) / 1000;
  const sorted = Float64Array.from(lat).sort();
  const setSorted = Float64Array.from(setLat).sort();
  const relSorted = Float64Array.from(relLat).sort();
  const pctOf = (a, q) => (a.length ? a[Math.min(a.length - 1, Math.floor(q * a.length))] : null);
  const pct = (q) => pctOf(sorted, q);
  let cpu = null;
  if (cpu0 && cpu1) {
    cpu = {};
    for (const k of Object.keys(cpu1)) {
      if (k === "loadgen") {
        const u = cpu1.loadgen.user - cpu0.loadgen.user;
        const sy = cpu1.loadgen.system - cpu0.loadgen.system;
        cpu.loadgen = (u + sy) / 1e6 / window; // cores
      } else {
        cpu[k] = (cpu1[k] - cpu0[k]) / CLK_TCK / window;
      }
    }
  }
  const res = {
    kind: s.kind,
    loadavg: fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number),
    clients: s.clients,
    locks: s.locks,
    window_s: window,
    pairs,
    rate: pairs / window,
    acquires: sorted.length,
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
    max_ms: sorted.length ? sorted[sorted.length - 1] : null,
    release_p50_ms: pctOf(relSorted, 0.5),
    release_p99_ms: pctOf(relSorted, 0.99),
    set_count: setSorted.length,
    set_p50_ms: pctOf(setSorted, 0.5),
    set_p99_ms: pctOf(setSorted, 0.99),
    gave_up: gaveUp,
    errors,
    error_kinds: errorKinds,
    cpu_cores: cpu,
    fatal: fatal ? String(fatal.message || fatal) : null,
  };
  process.stdout.write(JSON.stringify(res) + "\n");
  process.exit(fatal ? 1 : 0);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String((e && e.stack) || e) }) + "\n");
  process.exit(1);
});
