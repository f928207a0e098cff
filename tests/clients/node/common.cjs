'use strict';
// Shared by the Node.js client suites: one PASS/FAIL/SKIP line per check, the failing command
// and the reply Lockstep gave, key placement under Lockstep's default even slot split.

const util = require('node:util');

const PORT = Number(process.env.LOCKSTEP_PORT || 6380);
const BACKEND_PORTS = (process.env.LOCKSTEP_BACKENDS || '7001,7002,7003').split(',').map(Number);
const TXN = (process.env.LOCKSTEP_CLIENT_TXN || '1') !== '0';
const RUN = Math.random().toString(16).slice(2, 10);
const CHECK_TIMEOUT_MS = 30000;

class Failure extends Error {
  constructor(command, reply, expected) {
    super(command);
    this.command = command;
    this.reply = reply;
    this.expected = expected;
  }
}

function show(v) {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  return util.inspect(v, { depth: 4, breakLength: Infinity, maxArrayLength: 10 });
}

function expectEq(command, got, want) {
  if (!util.isDeepStrictEqual(got, want)) throw new Failure(command, got, want);
}

function expectOk(command, got, ok, what) {
  if (!ok) throw new Failure(command, got, what);
}

// CRC16-CCITT (XMODEM), as Redis Cluster hashes keys, with {hash tag} handling.
function crc16(buf) {
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function keySlot(key) {
  let s = key;
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) s = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(s)) % 16384;
}

function backendOf(key) {
  const n = BACKEND_PORTS.length;
  const slot = keySlot(key);
  let owner = 0;
  for (let i = 0; i < n; i++) if (Math.floor((i * 16384) / n) <= slot) owner = i;
  return owner;
}

// `count` keys prefix:N, key i owned by backend i.
function keysOnDistinctBackends(prefix, count = 3) {
  const found = new Map();
  for (let n = 0; found.size < count; n++) {
    const k = `${prefix}:${n}`;
    const b = backendOf(k);
    if (!found.has(b)) found.set(b, k);
  }
  return [...found.keys()].sort().map((b) => found.get(b)).slice(0, count);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves once cond() is true, or after ms.
async function until(cond, ms) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
}

function makeSuite(name) {
  const results = { pass: 0, fail: 0 };
  const step = { command: '(setup)' };
  return {
    k: (s) => `ct:${RUN}:${name}:${s}`,
    doing(command) {
      step.command = command;
    },
    async check(title, fn, opts = {}) {
      if (opts.txn && !TXN) {
        console.log(`SKIP ${name}: ${title} (LOCKSTEP_CLIENT_TXN=0)`);
        return;
      }
      step.command = '(setup)';
      const t0 = Date.now();
      let timer;
      try {
        await Promise.race([
          fn(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Failure(step.command, 'no reply', `a reply within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
          }),
        ]);
        console.log(`PASS ${name}: ${title} (${Date.now() - t0} ms)`);
        results.pass++;
      } catch (e) {
        if (e instanceof Failure) {
          const exp = e.expected === undefined ? '' : `, expected ${typeof e.expected === 'string' ? e.expected : show(e.expected)}`;
          console.log(`FAIL ${name}: ${title}: ${e.command} -> ${show(e.reply)}${exp}`);
        } else {
          console.log(`FAIL ${name}: ${title}: ${step.command} -> ${show(e)}`);
          if (!(e && /Error/.test(e.name) && e.constructor.name !== 'TypeError')) console.log(e && e.stack);
        }
        results.fail++;
      } finally {
        clearTimeout(timer);
      }
    },
    finish() {
      console.log(`${name}: ${results.pass} passed, ${results.fail} failed`);
      return results.fail === 0 ? 0 : 1;
    },
  };
}

module.exports = {
  PORT, BACKEND_PORTS, TXN, Failure, show, expectEq, expectOk, keySlot, backendOf,
  keysOnDistinctBackends, sleep, until, makeSuite,
};
