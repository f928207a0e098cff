// The Lua scripts of the transaction protocol (see coordinator.h for the protocol itself).
//
// Key space on each backend (reserved: clients can neither name nor see these keys):
//   __lockstep:tx:lock:<key>     string = txid of the transaction that holds <key>; no TTL
//   __lockstep:tx:intent:<txid>  hash {state P|C|A, role p|s, primary, parts, coord, exp,
//                                redo, ncmds, locks}; no TTL, ever (an expired intent would let
//                                another writer in between a commit point and its apply)
//   __lockstep:tx:active         sorted set txid -> lease expiry (the backend's own TIME, ms):
//                                what the resolver scans
//   __lockstep:tx:poison:<tag>   never exists: SET and DEL at once by a check that fails, so
//                                that a WATCH on it makes the following EXEC return nil
//
// `redo` holds the participant's queued commands as the client sent them (RESP), so a resolver
// can replay them after the coordinator died. `locks` is the list of lock keys, cmsgpack-packed
// by the scripts themselves. Every script is idempotent or guarded by a state check, because a
// request may be repeated by the resolver of another replica.
//
// Requests carry the whole script (EVAL, not EVALSHA): a backend that restarted or had its
// script cache flushed must still never run a MULTI whose guard script was refused with
// NOSCRIPT, since the rest of the transaction would then run unguarded. Redis caches EVAL
// bodies by digest, so the cost is the bytes on the wire and one SHA-1 per call.
#pragma once

#include <string_view>

namespace lockstep::txn {

inline constexpr std::string_view kLockPrefix = "__lockstep:tx:lock:";
inline constexpr std::string_view kIntentPrefix = "__lockstep:tx:intent:";
inline constexpr std::string_view kActiveKey = "__lockstep:tx:active";
inline constexpr std::string_view kPoisonPrefix = "__lockstep:tx:poison:";

// Time on the backend's own clock, in ms (Lua 5.1 numbers are doubles: exact up to 2^53).
#define LOCKSTEP_TXN_NOW          \
  "local t = redis.call('time') " \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

// Drops the lock keys recorded in intent KEYS[1] that still carry txid ARGV[1].
#define LOCKSTEP_TXN_UNLOCK                                                       \
  "local function unlock() "                                                      \
  "  local l = redis.call('hget', KEYS[1], 'locks') "                             \
  "  if l then for _, k in ipairs(cmsgpack.unpack(l)) do "                        \
  "    if redis.call('get', k) == ARGV[1] then redis.call('del', k) end end end " \
  "end "

// PREPARE. KEYS: intent, active, then nlocks lock keys, then data keys that must not exist
// (MSETNX). ARGV: txid, role, primary, parts, coord, lease_ms, redo, ncmds, nlocks.
// Returns {1} prepared, {0, key} held by another transaction (or 'intent' when this txid
// already has an intent here: a repeated or late prepare), {2} a key that must be absent exists.
inline constexpr std::string_view kPrepareLua =
    "if redis.call('exists', KEYS[1]) == 1 then return {0, 'intent'} end "
    "local nl = tonumber(ARGV[9]) "
    "for i = 3, 2 + nl do "
    "  local h = redis.call('get', KEYS[i]) "
    "  if h and h ~= ARGV[1] then return {0, KEYS[i]} end "
    "end "
    "for i = 3 + nl, #KEYS do "
    "  if redis.call('exists', KEYS[i]) == 1 then return {2} end "
    "end "
    "local locks = {} "
    "for i = 3, 2 + nl do redis.call('set', KEYS[i], ARGV[1]) locks[#locks + 1] = KEYS[i] "
    "end " LOCKSTEP_TXN_NOW
    "local exp = now + tonumber(ARGV[6]) "
    "redis.call('hset', KEYS[1], 'state', 'P', 'role', ARGV[2], 'primary', ARGV[3], "
    "  'parts', ARGV[4], 'coord', ARGV[5], 'exp', string.format('%d', exp), 'redo', ARGV[7], "
    "  'ncmds', ARGV[8], 'locks', cmsgpack.pack(locks)) "
    "redis.call('zadd', KEYS[2], string.format('%d', exp), ARGV[1]) "
    "return {1}";

// CHECK before a commit or apply burst (WATCH intent poison; EVAL; MULTI ... EXEC). KEYS:
// intent, poison. 1 when the intent is PREPARED; otherwise the poison key is touched, so the
// EXEC that follows returns nil and nothing of the burst is applied.
inline constexpr std::string_view kCheckPreparedLua =
    "if redis.call('hget', KEYS[1], 'state') == 'P' then return 1 end "
    "redis.call('set', KEYS[2], '1') redis.call('del', KEYS[2]) "
    "return 0";

// The commit point, queued inside the primary's MULTI before its commands. KEYS: intent.
// ARGV: txid. PREPARED -> COMMITTED; the primary's keys are unlocked (its commands run in the
// same EXEC); the record stays until every secondary has applied (cleanup).
inline constexpr std::string_view kCommitLua = LOCKSTEP_TXN_UNLOCK
    "unlock() "
    "redis.call('hset', KEYS[1], 'state', 'C') "
    "redis.call('hdel', KEYS[1], 'redo', 'locks') "
    "return 1";

// Apply on a secondary, queued inside its MULTI before its commands. KEYS: intent, active.
// ARGV: txid. The intent and its locks go in the same EXEC that applies the commands.
inline constexpr std::string_view kFinishLua = LOCKSTEP_TXN_UNLOCK
    "unlock() "
    "redis.call('del', KEYS[1]) "
    "redis.call('zrem', KEYS[2], ARGV[1]) "
    "return 1";

// Drop the primary's record once every secondary has applied (or rolled back). KEYS: intent,
// active. ARGV: txid.
inline constexpr std::string_view kCleanupLua =
    "local s = redis.call('hget', KEYS[1], 'state') "
    "if s == 'P' then return 0 end "
    "redis.call('del', KEYS[1]) "
    "redis.call('zrem', KEYS[2], ARGV[1]) "
    "return 1";

// Roll back a participant. KEYS: intent, active. ARGV: txid. Never touches a COMMITTED record
// (-1); 1 when an intent was removed, 0 when there was none.
inline constexpr std::string_view kRollbackLua = LOCKSTEP_TXN_UNLOCK
    "local s = redis.call('hget', KEYS[1], 'state') "
    "if not s then redis.call('zrem', KEYS[2], ARGV[1]) return 0 end "
    "if s == 'C' then return -1 end "
    "unlock() "
    "redis.call('del', KEYS[1]) "
    "redis.call('zrem', KEYS[2], ARGV[1]) "
    "return 1";

// The resolver's question to a primary: its record's state, aborting it first when it is
// PREPARED and its lease has expired on the primary's clock. KEYS: intent. ARGV: txid, and
// optionally 'abandoned': its coordinator is known dead (resolver.h, is_abandoned), so the
// lease is not waited for. Aborting a live coordinator's record would be safe anyway: its
// commit point is WATCH intent, kCheckPreparedLua, MULTI ... EXEC, so an abort before the WATCH
// fails the check and one after it fails the EXEC; either way nothing of it is applied.
// Returns 'none' (no record: presumed abort), 'P' (leased: wait), 'C' or 'A'.
inline constexpr std::string_view kDecideLua = LOCKSTEP_TXN_UNLOCK
    "local f = redis.call('hmget', KEYS[1], 'state', 'exp') "
    "if not f[1] then return 'none' end "
    "if f[1] ~= 'P' then return f[1] end " LOCKSTEP_TXN_NOW
    "if ARGV[2] ~= 'abandoned' and now < tonumber(f[2]) then return 'P' end "
    "unlock() "
    "redis.call('hset', KEYS[1], 'state', 'A') "
    "redis.call('hdel', KEYS[1], 'redo', 'locks') "
    "return 'A'";

// A coordinator that stops driving its transaction (its client disconnected mid-commit) ends
// its lease at once, so the resolvers settle the intent at their next scan instead of after
// lease_ms. Deciding early is safe for the reason given at kDecideLua; a commit that already
// happened is rolled forward as usual. KEYS: intent, active. ARGV: txid. Returns 1 if there
// was an intent here.
inline constexpr std::string_view kExpireLeaseLua = LOCKSTEP_TXN_NOW
    "if redis.call('hexists', KEYS[1], 'exp') == 0 then return 0 end "
    "redis.call('hset', KEYS[1], 'exp', string.format('%d', now)) "
    "redis.call('zadd', KEYS[2], 'XX', string.format('%d', now), ARGV[1]) "
    "return 1";

// The resolver's scan of one backend. KEYS: active. ARGV: max entries. Returns, for each
// intent whose lease has expired: {txid, state, role, primary, parts, ncmds, redo}; entries
// without an intent are dropped from the set.
inline constexpr std::string_view kScanLua = LOCKSTEP_TXN_NOW
    "local ids = redis.call('zrangebyscore', KEYS[1], '-inf', string.format('%d', now), "
    "  'LIMIT', 0, tonumber(ARGV[1])) "
    "local out = {} "
    "for _, id in ipairs(ids) do "
    "  local f = redis.call('hmget', '__lockstep:tx:intent:' .. id, 'state', 'role', "
    "    'primary', 'parts', 'ncmds', 'redo') "
    "  if not f[1] then redis.call('zrem', KEYS[1], id) "
    "  else out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5] or '0', f[6] or ''} end "
    "end "
    "return out";

// The resolver's second scan (cluster mode): intents whose lease has NOT expired but whose
// coordinator is dead. KEYS: active. ARGV: max entries, then pairs (replica id, its current
// replicated incarnation). Looks only at the `max` unexpired entries that expire soonest (an
// abandoned intent's expiry stays put while new transactions line up behind it, so it reaches
// the front), and returns those whose coordinator is r<id>.<k>/... with k below the current
// incarnation of <id>: {txid, state, role, primary, parts, ncmds, redo, coord}. A cheap
// pre-filter: the resolver checks each row again with is_abandoned() before acting on it.
inline constexpr std::string_view kScanAbandonedLua = LOCKSTEP_TXN_NOW
    "local cur = {} "
    "for i = 2, #ARGV - 1, 2 do cur[ARGV[i]] = tonumber(ARGV[i + 1]) end "
    "local ids = redis.call('zrangebyscore', KEYS[1], '(' .. string.format('%d', now), '+inf', "
    "  'LIMIT', 0, tonumber(ARGV[1])) "
    "local out = {} "
    "for _, id in ipairs(ids) do "
    "  local ik = '__lockstep:tx:intent:' .. id "
    "  local c = redis.call('hget', ik, 'coord') "
    "  if c then "
    "    local r, k = string.match(c, '^r(%d+)%.(%d+)/') "
    "    if r and cur[r] and tonumber(k) < cur[r] then "
    "      local f = redis.call('hmget', ik, 'state', 'role', 'primary', 'parts', 'ncmds', "
    "        'redo') "
    "      out[#out + 1] = {id, f[1] or '?', f[2] or '?', f[3] or '', f[4] or '', f[5] or '0', "
    "        f[6] or '', c} "
    "    end "
    "  end "
    "end "
    "return out";

// The fast path's guard (WATCH poison locks...; EVAL; MULTI ... EXEC on one backend). KEYS:
// poison, then lock keys. 0 when no key is held by a cross-backend transaction; otherwise the
// poison key is touched (the EXEC returns nil) and the reply is 1.
inline constexpr std::string_view kCheckUnlockedLua =
    "for i = 2, #KEYS do "
    "  if redis.call('exists', KEYS[i]) == 1 then "
    "    redis.call('set', KEYS[1], '1') redis.call('del', KEYS[1]) return 1 end "
    "end "
    "return 0";

#undef LOCKSTEP_TXN_NOW
#undef LOCKSTEP_TXN_UNLOCK

}  // namespace lockstep::txn
