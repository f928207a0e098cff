'use strict';
// ioredis (npm, pinned in package-lock.json, unmodified) against a running Lockstep.
// Run by tests/clients/run (LOCKSTEP_PORT, LOCKSTEP_BACKENDS); one PASS/FAIL/SKIP line per check.

const Redis = require('ioredis');
const {
  PORT, BACKEND_PORTS, expectEq, expectOk, Failure, keysOnDistinctBackends, sleep, until, makeSuite,
} = require('./common.cjs');

const s = makeSuite('ioredis');
const k = s.k;
const clients = [];

function connect(opts = {}) {
  const c = new Redis({ host: '127.0.0.1', port: PORT, maxRetriesPerRequest: 1, commandTimeout: 15000, ...opts });
  c.on('error', () => {}); // reported through the failing command instead
  clients.push(c);
  return c;
}

function direct(i) {
  return connect({ port: BACKEND_PORTS[i] });
}

async function main() {
  const r = connect({ lazyConnect: true });

  await s.check('ready check: connect sends INFO (loading:0), then "ready"', async () => {
    // MONITOR (through Lockstep) shows what ioredis sends while connecting.
    const mon = await connect().monitor();
    const seen = [];
    mon.on('monitor', (time, args) => seen.push(args.join(' ')));
    s.doing('connect + INFO (ready check)');
    const ready = new Promise((resolve, reject) => {
      r.once('ready', resolve);
      r.once('end', () => reject(new Failure('connect + INFO (ready check)', r.status, 'ready')));
    });
    await r.connect();
    await ready;
    expectEq('status after connect', r.status, 'ready');
    s.doing('PING');
    expectEq('PING', await r.ping(), 'PONG');
    await until(() => seen.some((c) => /^ping$/i.test(c)), 3000);
    mon.disconnect();
    expectOk('MONITOR of the connection', seen, seen.some((c) => /^info$/i.test(c)), 'an INFO (the ready check) before PING');
    s.doing('CLIENT SETNAME/GETNAME (connectionName)');
    const named = connect({ connectionName: 'ct-ioredis' });
    expectEq('CLIENT GETNAME', await named.client('GETNAME'), 'ct-ioredis');
  });

  await s.check('keys on every backend: MSET/MGET/HSET/HGETALL, placed as the slot map says', async () => {
    const keys = keysOnDistinctBackends(k('place'));
    s.doing(`MSET ${keys.join(' ')}`);
    expectEq('MSET', await r.mset(...keys.flatMap((key, i) => [key, `v${i}`])), 'OK');
    for (let i = 0; i < keys.length; i++) {
      s.doing(`EXISTS ${keys[i]} on backend :${BACKEND_PORTS[i]}`);
      expectEq(`EXISTS ${keys[i]} on backend :${BACKEND_PORTS[i]}`, await direct(i).exists(keys[i]), 1);
    }
    s.doing(`MGET ${keys.join(' ')}`);
    expectEq('MGET', await r.mget(keys), ['v0', 'v1', 'v2']);
    s.doing('HSET/HGETALL');
    await r.hset(k('h'), { a: '1', b: '2' });
    expectEq('HGETALL', await r.hgetall(k('h')), { a: '1', b: '2' });
  });

  await s.check('pipeline: 1000 commands over all backends, replies in order, an error in its place', async () => {
    const p = r.pipeline();
    for (let i = 0; i < 500; i++) p.set(k(`pipe:${i}`), i);
    for (let i = 0; i < 500; i++) p.incr(k(`pipe:${i}`));
    s.doing('pipeline of 500 SET + 500 INCR');
    const out = await p.exec();
    expectEq('pipeline SET replies', out.slice(0, 500), Array(500).fill([null, 'OK']));
    expectEq('pipeline INCR replies', out.slice(500), Array.from({ length: 500 }, (_, i) => [null, i + 1]));
    s.doing('SET; INCR (on a string); GET');
    const out2 = await r.pipeline().set(k('perr'), 'text').incr(k('perr')).get(k('perr')).exec();
    expectEq('SET', out2[0], [null, 'OK']);
    expectOk('INCR on a string', out2[1], out2[1][0] instanceof Error && /not an integer/.test(out2[1][0].message), 'ERR value is not an integer');
    expectEq('GET', out2[2], [null, 'text']);
  });

  await s.check('enableAutoPipelining: 1000 concurrent commands', async () => {
    const a = connect({ enableAutoPipelining: true });
    s.doing('500 concurrent SET + 500 concurrent GET');
    await Promise.all(Array.from({ length: 500 }, (_, i) => a.set(k(`auto:${i}`), `x${i}`)));
    const got = await Promise.all(Array.from({ length: 500 }, (_, i) => a.get(k(`auto:${i}`))));
    expectEq('GET replies', got, Array.from({ length: 500 }, (_, i) => `x${i}`));
  });

  await s.check('MULTI (pipelined), same hash tag: SET INCR INCRBY GET EXEC', async () => {
    const a = k('{tx1}a');
    const b = k('{tx1}b');
    s.doing(`MULTI; SET ${a}; INCR ${b}; INCRBY ${b} 10; GET ${a}; EXEC`);
    const out = await r.multi().set(a, '1').incr(b).incrby(b, 10).get(a).exec();
    expectEq('EXEC', out, [[null, 'OK'], [null, 1], [null, 11], [null, '1']]);
  }, { txn: true });

  await s.check('MULTI (pipelined), keys on three backends: all writes applied', async () => {
    const keys = keysOnDistinctBackends(k('tx2'));
    s.doing(`MULTI; SET x3; MGET ${keys.join(' ')}; EXEC`);
    const out = await r.multi().set(keys[0], 'v0').set(keys[1], 'v1').set(keys[2], 'v2').mget(keys).exec();
    expectEq('EXEC', out, [[null, 'OK'], [null, 'OK'], [null, 'OK'], [null, ['v0', 'v1', 'v2']]]);
    for (let i = 0; i < 3; i++) {
      expectEq(`EXISTS ${keys[i]} on backend :${BACKEND_PORTS[i]}`, await direct(i).exists(keys[i]), 1);
    }
  }, { txn: true });

  await s.check('MULTI ({pipeline: false}): each command QUEUED, then EXEC over two backends', async () => {
    const keys = keysOnDistinctBackends(k('tx3'));
    const c = connect();
    s.doing('MULTI');
    const m = c.multi({ pipeline: false });
    expectEq('MULTI', await m, 'OK');
    s.doing(`SET ${keys[0]} (queued)`);
    expectEq(`SET ${keys[0]} in MULTI`, await c.set(keys[0], 'a'), 'QUEUED');
    s.doing(`SET ${keys[1]} (queued)`);
    expectEq(`SET ${keys[1]} in MULTI`, await c.set(keys[1], 'b'), 'QUEUED');
    s.doing('EXEC');
    expectEq('EXEC', await c.exec(), [[null, 'OK'], [null, 'OK']]);
    expectEq('MGET', await r.mget(keys[0], keys[1]), ['a', 'b']);
  }, { txn: true });

  await s.check('WATCH over two backends, another client writes -> EXEC returns null', async () => {
    const keys = keysOnDistinctBackends(k('tx4'));
    await r.mset(keys[0], '1', keys[1], '1');
    const c = connect();
    s.doing(`WATCH ${keys[0]} ${keys[1]}`);
    expectEq(`WATCH ${keys[0]} ${keys[1]}`, await c.watch(keys[0], keys[1]), 'OK');
    await r.set(keys[1], 'changed');
    s.doing('MULTI; SET; EXEC after a watched key changed');
    const out = await c.multi().set(keys[0], 'from-txn').exec();
    expectEq('EXEC after a watched key changed', out, null);
    expectEq(`GET ${keys[0]}`, await r.get(keys[0]), '1');
    s.doing(`WATCH ${keys[0]} ${keys[1]}; MULTI; SET; EXEC (untouched)`);
    await c.watch(keys[0], keys[1]);
    expectEq('EXEC (watched keys untouched)', await c.multi().set(keys[0], 'ok').exec(), [[null, 'OK']]);
  }, { txn: true });

  await s.check('pub/sub: SUBSCRIBE on channels of every backend, PSUBSCRIBE, each message exactly once', async () => {
    const chans = keysOnDistinctBackends(k('chan'));
    const sub = connect();
    const got = [];
    sub.on('message', (ch, msg) => got.push(['message', ch, msg]));
    sub.on('pmessage', (pat, ch, msg) => got.push(['pmessage', ch, msg]));
    s.doing(`SUBSCRIBE ${chans.join(' ')}`);
    expectEq('SUBSCRIBE (count)', await sub.subscribe(...chans), 3);
    s.doing(`PSUBSCRIBE ${k('pat:*')}`);
    expectEq('PSUBSCRIBE (count)', await sub.psubscribe(k('pat:*')), 4);
    for (let i = 0; i < chans.length; i++) {
      s.doing(`PUBLISH ${chans[i]}`);
      const n = await r.publish(chans[i], `m${i}`);
      expectOk(`PUBLISH ${chans[i]}`, n, n >= 1, 'at least 1 receiver');
    }
    s.doing(`PUBLISH ${k('pat:x')}`);
    await r.publish(k('pat:x'), 'pm');
    await until(() => got.length >= 4, 5000);
    await sleep(300); // any duplicate would arrive by now
    const want = chans.map((ch, i) => ['message', ch, `m${i}`]).concat([['pmessage', k('pat:x'), 'pm']]);
    expectEq('messages received', [...got].sort(), [...want].sort());
    s.doing('UNSUBSCRIBE <channels>; PUNSUBSCRIBE <pattern>; then an ordinary command on the same connection');
    expectEq('UNSUBSCRIBE (count)', await sub.unsubscribe(...chans), 1);
    expectEq('PUNSUBSCRIBE (count)', await sub.punsubscribe(k('pat:*')), 0);
    expectEq('PING after unsubscribing', await sub.ping(), 'PONG');
  });

  await s.check('defineCommand (Lua): EVAL/EVALSHA with NOSCRIPT fallback, keys on each backend', async () => {
    r.defineCommand('ctAddCapped', {
      numberOfKeys: 1,
      lua: "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) if v > tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[2]) return tonumber(ARGV[2]) end return v",
    });
    s.doing('SCRIPT FLUSH');
    expectEq('SCRIPT FLUSH', await r.script('FLUSH'), 'OK');
    const keys = keysOnDistinctBackends(k('lua'));
    for (const key of keys) {
      s.doing(`EVALSHA <sha> 1 ${key} 7 10 (ctAddCapped)`);
      expectEq(`ctAddCapped ${key} 7 10`, await r.ctAddCapped(key, 7, 10), 7);
      expectEq(`ctAddCapped ${key} 7 10 (capped)`, await r.ctAddCapped(key, 7, 10), 10);
    }
  });

  await s.check('defineCommand in a pipeline of 30 over three backends: new connection, then after SCRIPT FLUSH', async () => {
    // ioredis sends the first use of a script on a connection as EVAL and later ones as EVALSHA,
    // assuming one connection = one script cache. A NOSCRIPT is resent once: as EVAL, unless
    // another resend already went out as EVAL, then as EVALSHA, which on one Redis always
    // succeeds but through a sharding proxy can reach a backend that still lacks the script.
    s.doing('SCRIPT FLUSH');
    await r.script('FLUSH');
    const c = connect();
    c.defineCommand('ctAddCapped', {
      numberOfKeys: 1,
      lua: "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) if v > tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[2]) return tonumber(ARGV[2]) end return v",
    });
    // Ten keys on each backend, interleaved, so the outcome does not hang on how replies are
    // split into TCP reads.
    const keys = [];
    for (let i = 0; i < 10; i++) keys.push(...keysOnDistinctBackends(k(`luap:${i}`)));
    const p = c.pipeline();
    for (const key of keys) p.ctAddCapped(key, 3, 100);
    s.doing(`pipeline of ${keys.length}: EVAL <script> 1 ${keys[0]} 3 100; EVALSHA <sha> 1 ${keys[1]} 3 100; ...`);
    const check = (out, what) => {
      const bad = out.findIndex((x) => x[0] !== null || x[1] !== 3);
      const nbad = out.filter((x) => x[0] !== null || x[1] !== 3).length;
      if (bad >= 0) throw new Failure(`${what}: EVAL/EVALSHA ... 1 ${keys[bad]} 3 100 (pipeline entry ${bad + 1} of ${keys.length}, on backend :${BACKEND_PORTS[bad % 3]}; ${nbad} entries failed)`, out[bad][0] || out[bad][1], 3);
    };
    check(await p.exec(), 'first pipeline');
    // The same connection again after the backends' script caches were emptied (SCRIPT FLUSH,
    // or backends restarted): every entry goes out as EVALSHA, each NOSCRIPT is resent once.
    s.doing('SCRIPT FLUSH, then the same pipeline on the same connection');
    await r.script('FLUSH');
    await Promise.all(keys.map((key) => r.set(key, 0)));
    const p2 = c.pipeline();
    for (const key of keys) p2.ctAddCapped(key, 3, 100);
    check(await p2.exec(), 'pipeline after SCRIPT FLUSH');
  });

  await s.check('scanStream: every key of every backend exactly once', async () => {
    const want = Array.from({ length: 300 }, (_, i) => k(`scan:${i}`));
    const p = r.pipeline();
    for (const key of want) p.set(key, '1');
    await p.exec();
    s.doing(`SCAN MATCH ${k('scan:*')} COUNT 50 (scanStream)`);
    const seen = [];
    await new Promise((resolve, reject) => {
      const st = r.scanStream({ match: k('scan:*'), count: 50 });
      st.on('data', (keys) => seen.push(...keys));
      st.on('end', resolve);
      st.on('error', reject);
    });
    expectEq('keys seen (count)', seen.length, 300);
    expectEq('keys seen (set)', [...seen].sort(), [...want].sort());
  });

  await s.check('LOCK.ACQUIRE / LOCK.RELEASE via call()', async () => {
    const name = k('lock');
    s.doing(`LOCK.ACQUIRE ${name} 5000`);
    const g = await r.call('LOCK.ACQUIRE', name, 5000);
    expectOk(`LOCK.ACQUIRE ${name} 5000`, g, Array.isArray(g) && g.length === 3 && typeof g[0] === 'string' && g[1] >= 1 && g[2] > 0, '[token, fence, validity]');
    s.doing(`LOCK.RELEASE ${name} <token>`);
    expectEq(`LOCK.RELEASE ${name} <token>`, await r.call('LOCK.RELEASE', name, g[0]), 1);
  });
}

main()
  .catch((e) => {
    console.log(`FAIL ioredis: suite crashed: ${e && e.stack}`);
    process.exitCode = 1;
  })
  .finally(() => {
    const rc = s.finish();
    for (const c of clients) c.disconnect();
    process.exit(rc || process.exitCode || 0);
  });
