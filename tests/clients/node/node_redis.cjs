'use strict';
// node-redis (npm `redis`, pinned in package-lock.json, unmodified) against a running Lockstep.
// Run by tests/clients/run (LOCKSTEP_PORT, LOCKSTEP_BACKENDS); one PASS/FAIL/SKIP line per check.

const { createClient, createClientPool, defineScript, WatchError } = require('redis');
const {
  PORT, BACKEND_PORTS, expectEq, expectOk, Failure, keysOnDistinctBackends, sleep, until, makeSuite,
} = require('./common.cjs');

const s = makeSuite('node-redis');
const k = s.k;
const clients = [];

const capped = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) if v > tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[2]) return tonumber(ARGV[2]) end return v",
  parseCommand(parser, key, by, cap) {
    parser.pushKey(key);
    parser.push(String(by), String(cap));
  },
  transformReply(reply) {
    return reply;
  },
});

function options(extra = {}) {
  return {
    socket: { host: '127.0.0.1', port: PORT, connectTimeout: 10000, reconnectStrategy: false },
    scripts: { capped },
    ...extra,
  };
}

async function connect(extra = {}, port = PORT) {
  const o = options(extra);
  o.socket.port = port;
  const c = createClient(o);
  c.on('error', () => {}); // reported through the failing command instead
  clients.push(c);
  await c.connect();
  return c;
}

async function main() {
  let r;

  await s.check('connect: "ready", CLIENT SETINFO on connect tolerated, name option -> CLIENT GETNAME', async () => {
    s.doing('connect (CLIENT SETINFO LIB-VER/LIB-NAME, CLIENT SETNAME pipelined)');
    const c = createClient(options({ name: 'ct-node-redis' }));
    c.on('error', () => {});
    clients.push(c);
    let ready = false;
    c.on('ready', () => { ready = true; });
    await c.connect();
    expectEq('"ready" event after connect', ready && c.isReady, true);
    s.doing('CLIENT GETNAME');
    expectEq('CLIENT GETNAME', await c.clientGetName(), 'ct-node-redis');
    s.doing('PING');
    expectEq('PING', await c.ping(), 'PONG');
    r = c;
  });
  if (!r) r = await connect();

  await s.check('keys on every backend: MSET/MGET, HSET/HGETALL, placed as the slot map says', async () => {
    const keys = keysOnDistinctBackends(k('place'));
    s.doing(`MSET ${keys.join(' ')}`);
    expectEq('MSET', await r.mSet(keys.map((key, i) => [key, `v${i}`])), 'OK');
    for (let i = 0; i < keys.length; i++) {
      const d = await connect({}, BACKEND_PORTS[i]);
      expectEq(`EXISTS ${keys[i]} on backend :${BACKEND_PORTS[i]}`, await d.exists(keys[i]), 1);
    }
    s.doing(`MGET ${keys.join(' ')}`);
    expectEq('MGET', await r.mGet(keys), ['v0', 'v1', 'v2']);
    s.doing('HSET/HGETALL');
    await r.hSet(k('h'), { a: '1', b: '2' });
    expectEq('HGETALL', { ...(await r.hGetAll(k('h'))) }, { a: '1', b: '2' });
  });

  await s.check('auto-pipelining: 1000 concurrent commands on one connection, replies in order', async () => {
    s.doing('500 concurrent SET + 500 concurrent INCR');
    await Promise.all(Array.from({ length: 500 }, (_, i) => r.set(k(`auto:${i}`), String(i))));
    const got = await Promise.all(Array.from({ length: 500 }, (_, i) => r.incr(k(`auto:${i}`))));
    expectEq('INCR replies', got, Array.from({ length: 500 }, (_, i) => i + 1));
  });

  await s.check('multi().execAsPipeline(): commands over all backends, replies in order', async () => {
    const keys = keysOnDistinctBackends(k('pipe'));
    s.doing(`pipeline: SET x3; INCR ${keys[1]}; MGET ${keys.join(' ')}`);
    const m = r.multi();
    keys.forEach((key, i) => m.set(key, String(i)));
    m.incr(keys[1]);
    m.mGet(keys);
    expectEq('pipeline replies', await m.execAsPipeline(), ['OK', 'OK', 'OK', 2, ['0', '2', '2']]);
  });

  await s.check('pipelined commands: an error reply stays in its place', async () => {
    s.doing('SET; INCR (on a string); GET, sent together');
    const out = await Promise.allSettled([r.set(k('perr'), 'text'), r.incr(k('perr')), r.get(k('perr'))]);
    expectEq('SET', out[0], { status: 'fulfilled', value: 'OK' });
    expectOk('INCR on a string', out[1], out[1].status === 'rejected' && /not an integer/.test(out[1].reason.message), 'ERR value is not an integer');
    expectEq('GET', out[2], { status: 'fulfilled', value: 'text' });
  });

  await s.check('RedisClientPool (2..4 connections): 200 concurrent commands', async () => {
    const pool = createClientPool(options(), { minimum: 2, maximum: 4, acquireTimeout: 10000 });
    pool.on('error', () => {});
    s.doing('connect pool');
    await pool.connect();
    try {
      s.doing('200 concurrent INCR through the pool');
      await Promise.all(Array.from({ length: 200 }, () => pool.incr(k('pool'))));
      expectEq('GET after 200 INCR', await r.get(k('pool')), '200');
    } finally {
      pool.destroy();
    }
  });

  await s.check('MULTI/EXEC, same hash tag', async () => {
    const a = k('{tx1}a');
    const b = k('{tx1}b');
    s.doing(`MULTI; SET ${a}; INCR ${b}; INCRBY ${b} 10; GET ${a}; EXEC`);
    expectEq('EXEC', await r.multi().set(a, '1').incr(b).incrBy(b, 10).get(a).exec(), ['OK', 1, 11, '1']);
  }, { txn: true });

  await s.check('MULTI/EXEC, keys on three backends: all writes applied', async () => {
    const keys = keysOnDistinctBackends(k('tx2'));
    s.doing(`MULTI; SET x3; MGET ${keys.join(' ')}; EXEC`);
    const out = await r.multi().set(keys[0], 'v0').set(keys[1], 'v1').set(keys[2], 'v2').mGet(keys).exec();
    expectEq('EXEC', out, ['OK', 'OK', 'OK', ['v0', 'v1', 'v2']]);
  }, { txn: true });

  await s.check('MULTI/EXEC with a script (EVALSHA in a transaction), keys on two backends', async () => {
    const keys = keysOnDistinctBackends(k('tx3'));
    s.doing('SCRIPT LOAD (fan-out)');
    await r.scriptLoad(capped.SCRIPT);
    s.doing(`MULTI; EVALSHA capped 1 ${keys[0]}; EVALSHA capped 1 ${keys[1]}; EXEC`);
    expectEq('EXEC', await r.multi().capped(keys[0], 5, 100).capped(keys[1], 500, 100).exec(), [5, 100]);
  }, { txn: true });

  await s.check('WATCH over two backends, another client writes -> EXEC throws WatchError', async () => {
    const keys = keysOnDistinctBackends(k('tx4'));
    await r.mSet([[keys[0], '1'], [keys[1], '1']]);
    const c = await connect();
    s.doing(`WATCH ${keys[0]} ${keys[1]}`);
    expectEq(`WATCH ${keys[0]} ${keys[1]}`, await c.watch([keys[0], keys[1]]), 'OK');
    await r.set(keys[1], 'changed');
    s.doing('MULTI; SET; EXEC after a watched key changed');
    let out;
    try {
      out = await c.multi().set(keys[0], 'from-txn').exec();
    } catch (e) {
      if (!(e instanceof WatchError)) throw e;
      out = 'WatchError';
    }
    expectEq('EXEC after a watched key changed', out, 'WatchError');
    expectEq(`GET ${keys[0]}`, await r.get(keys[0]), '1');
  }, { txn: true });

  await s.check('pub/sub: SUBSCRIBE on channels of every backend, PSUBSCRIBE, each message exactly once', async () => {
    const chans = keysOnDistinctBackends(k('chan'));
    const sub = r.duplicate();
    sub.on('error', () => {});
    clients.push(sub);
    await sub.connect();
    const got = [];
    s.doing(`SUBSCRIBE ${chans.join(' ')}`);
    await sub.subscribe(chans, (msg, ch) => got.push(['message', ch, msg]));
    s.doing(`PSUBSCRIBE ${k('pat:*')}`);
    await sub.pSubscribe(k('pat:*'), (msg, ch) => got.push(['pmessage', ch, msg]));
    for (let i = 0; i < chans.length; i++) {
      s.doing(`PUBLISH ${chans[i]}`);
      const n = await r.publish(chans[i], `m${i}`);
      expectOk(`PUBLISH ${chans[i]}`, n, n >= 1, 'at least 1 receiver');
    }
    s.doing(`PUBLISH ${k('pat:x')}`);
    await r.publish(k('pat:x'), 'pm');
    await until(() => got.length >= 4, 5000);
    await sleep(300);
    const want = chans.map((ch, i) => ['message', ch, `m${i}`]).concat([['pmessage', k('pat:x'), 'pm']]);
    expectEq('messages received', [...got].sort(), [...want].sort());
    s.doing('UNSUBSCRIBE; PUNSUBSCRIBE');
    await sub.unsubscribe(chans);
    await sub.pUnsubscribe(k('pat:*'));
    expectEq('PING after unsubscribing', String(await sub.ping()), 'PONG');
    sub.destroy();
  });

  await s.check('scripts (defineScript): EVALSHA, NOSCRIPT -> EVAL fallback, keys on each backend', async () => {
    s.doing('SCRIPT FLUSH');
    expectEq('SCRIPT FLUSH', await r.scriptFlush(), 'OK');
    const keys = keysOnDistinctBackends(k('lua'));
    for (const key of keys) {
      s.doing(`EVALSHA <sha> 1 ${key} 7 10 (capped)`);
      expectEq(`capped ${key} 7 10`, await r.capped(key, 7, 10), 7);
      expectEq(`capped ${key} 7 10 (capped at 10)`, await r.capped(key, 7, 10), 10);
    }
  });

  await s.check('scanIterator (MATCH, COUNT): every key of every backend exactly once', async () => {
    const want = Array.from({ length: 300 }, (_, i) => k(`scan:${i}`));
    await Promise.all(want.map((key) => r.set(key, '1')));
    s.doing(`SCAN MATCH ${k('scan:*')} COUNT 50 (scanIterator)`);
    const seen = [];
    for await (const batch of r.scanIterator({ MATCH: k('scan:*'), COUNT: 50 })) {
      if (Array.isArray(batch)) seen.push(...batch);
      else seen.push(batch);
    }
    expectEq('keys seen (count)', seen.length, 300);
    expectEq('keys seen (set)', [...seen].sort(), [...want].sort());
  });

  await s.check('RESP3 client (HELLO 3): HGETALL as a map, pub/sub on the same protocol', async () => {
    s.doing('connect with RESP: 3 (HELLO 3)');
    const c = await connect({ RESP: 3 });
    await c.hSet(k('h3'), { f: 'v' });
    s.doing(`HGETALL ${k('h3')} (RESP3 map)`);
    expectEq('HGETALL (RESP3)', { ...(await c.hGetAll(k('h3'))) }, { f: 'v' });
    s.doing('SUBSCRIBE + PUBLISH over RESP3');
    const got = [];
    await c.subscribe(k('c3'), (msg) => got.push(msg));
    await r.publish(k('c3'), 'hello3');
    await until(() => got.length >= 1, 3000);
    expectEq('message over RESP3', got, ['hello3']);
    c.destroy();
  });

  await s.check('LOCK.ACQUIRE / LOCK.STATUS / LOCK.RELEASE via sendCommand', async () => {
    const name = k('lock');
    s.doing(`LOCK.ACQUIRE ${name} 5000`);
    const g = await r.sendCommand(['LOCK.ACQUIRE', name, '5000']);
    expectOk(`LOCK.ACQUIRE ${name} 5000`, g, Array.isArray(g) && g.length === 3 && g[1] >= 1 && g[2] > 0, '[token, fence, validity]');
    s.doing(`LOCK.STATUS ${name}`);
    const st = await r.sendCommand(['LOCK.STATUS', name]);
    expectEq(`LOCK.STATUS ${name} (held, fence)`, st.slice(0, 4), ['held', 1, 'fence', g[1]]);
    s.doing(`LOCK.RELEASE ${name} <token>`);
    expectEq(`LOCK.RELEASE ${name} <token>`, await r.sendCommand(['LOCK.RELEASE', name, g[0]]), 1);
  });
}

main()
  .catch((e) => {
    console.log(`FAIL node-redis: suite crashed: ${e && e.stack}`);
    process.exitCode = 1;
  })
  .finally(() => {
    const rc = s.finish();
    for (const c of clients) {
      try {
        c.destroy();
      } catch (_) {
        // already closed
      }
    }
    process.exit(rc || process.exitCode || 0);
  });
