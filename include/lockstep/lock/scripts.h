// The Lua scripts the lock engine runs on each lock backend, and the requests that carry them.
//
// Every step of the lock protocol that reads and then writes a backend key is one script, so it
// is atomic on that backend. The scripts are constants whose SHA-1 is computed at compile time
// (sha1_hex below), so a request can be EVALSHA without a SCRIPT LOAD round trip; when a
// backend answers -NOSCRIPT (restarted, SCRIPT FLUSH) the rounds in redlock.h resend the same
// request as EVAL, which also caches the script there. Requests whose reply nobody waits for
// (clean-up after a round) are always sent as EVAL, since nobody would see a -NOSCRIPT.
//
// Key space (all reserved; the proxy refuses them to clients):
//   __lockstep:lock:<name>   hash {token, owner, deadline, attempt, fence, gen},
//                            PX = ttl + lock_delay
//   __lockstep:fence:<name>  string counter, the fence two-phase counter; NEVER has a TTL
//   __lockstep:guard:<name>  string, the newest fence a data backend has seen for <name>
//   __lockstep:lockcfg       string, the newest lock configuration epoch announced to this
//                            backend (reconfig.h); requests of an older epoch that could grant
//                            or prolong a hold are refused with -LOCKEPOCH
//   __lockstep:lockcfg:done  string, the newest lock configuration epoch whose change completed
//
// `deadline` is the backend's own TIME in ms at which the hold ends. The key itself lives
// lock_delay_ms longer: an expired-but-not-released lock keeps blocking new holders for that
// long (Chubby's lock-delay) while no longer counting as held (extend and owner re-acquire
// look at `deadline`, so the tail can never be revived). Deadlines are computed with
// string.format('%d') because Lua 5.1 prints large numbers in exponent form.
//
// Rules that keep a late or reordered request harmless (the network may deliver a request of
// a round long after the round ended, even after another round of the same OWNER took over):
//   - a hold's deadline only ever moves later (a refresh or extend never shortens it);
//   - a hold belongs to the round whose token it carries: only that round's aborts delete it,
//     and only for the attempt stamped on it ('' = any, once the round is over); the stamp
//     only grows, and only requests with the hold's own token move it;
//   - a fence is recorded only on holds stamped with the attempt that was granted, so a
//     recorded hold can no longer be deleted by any abort of its round; an OWNER re-acquire
//     adopts another token's holds only if they carry a recorded fence;
//   - every adoption bumps the hold's generation `gen`, and a release deletes only the
//     generation it names (read in its own round), so a release of the token that is still in
//     flight when the OWNER re-acquires cannot delete the hold the re-acquire was granted.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lockstep::lock {

namespace detail {

constexpr uint32_t rotl32(uint32_t x, int n) {
  return (x << n) | (x >> (32 - n));
}

// SHA-1 (FIPS 180-4) of `msg` as 40 lowercase hex digits, usable in constant expressions so
// each script's digest is fixed at build time. Not used for anything that needs collision
// resistance: it is the name Redis gives a script.
constexpr std::array<char, 40> sha1_hex(std::string_view msg) {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  const uint64_t bit_len = static_cast<uint64_t>(msg.size()) * 8;
  const size_t total = ((msg.size() + 8) / 64 + 1) * 64;  // message + 0x80 + zeros + length
  for (size_t block = 0; block < total; block += 64) {
    uint32_t w[80] = {};
    for (size_t i = 0; i < 64; ++i) {
      const size_t pos = block + i;
      uint32_t byte = 0;
      if (pos < msg.size()) {
        byte = static_cast<unsigned char>(msg[pos]);
      } else if (pos == msg.size()) {
        byte = 0x80;
      } else if (pos >= total - 8) {
        byte = static_cast<uint32_t>((bit_len >> (8 * (total - 1 - pos))) & 0xFF);
      }
      w[i / 4] |= byte << (24 - 8 * (i % 4));
    }
    for (int t = 16; t < 80; ++t) w[t] = rotl32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; ++t) {
      uint32_t f = 0, k = 0;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      const uint32_t next = rotl32(a, 5) + f + e + k + w[t];
      e = d;
      d = c;
      c = rotl32(b, 30);
      b = a;
      a = next;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  constexpr char kHex[] = "0123456789abcdef";
  std::array<char, 40> out{};
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 8; ++j) out[i * 8 + j] = kHex[(h[i] >> (28 - 4 * j)) & 0xF];
  return out;
}

}  // namespace detail

struct Script {
  std::string_view name;  // for logs and error texts
  std::string_view body;
  std::array<char, 40> sha1;
  std::string_view sha() const { return {sha1.data(), sha1.size()}; }
};

// Phase 1 of a grant: take the lock (SET NX semantics) and read the fence counter in the same
// atomic step. KEYS: lock, fence, lockcfg. ARGV: token, ttl_ms, owner ('' = none), attempt,
// key_ms (ttl_ms + lock_delay_ms), lock configuration epoch.
// Reply: {1, counter}                       newly taken with ARGV token, stamped ARGV attempt
//        {2, counter, held_token, fence}    already ours (same token, or same non-empty owner,
//                                           and not past its deadline): deadline moved to at
//                                           least ttl_ms from now; recorded fence or '0';
//                                           adopting another token's hold bumps its `gen`
//        {0, counter, pttl}                 held by someone else; free in pttl ms at the latest
inline constexpr std::string_view kAcquireLua = R"lua(
local cfg = redis.call('GET', KEYS[3])
if cfg and tonumber(cfg) > tonumber(ARGV[6]) then
  return redis.error_reply('LOCKEPOCH the lock backends moved to lock configuration epoch ' .. cfg .. ', this replica is at ' .. ARGV[6] .. ' (it has not applied the change yet)')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local counter = redis.call('GET', KEYS[2]) or '0'
local held = redis.call('HMGET', KEYS[1], 'token', 'owner', 'deadline', 'fence', 'attempt')
local deadline = now + tonumber(ARGV[2])
if held[1] then
  if now < tonumber(held[3]) and (held[1] == ARGV[1] or (ARGV[3] ~= '' and held[2] == ARGV[3])) then
    if deadline > tonumber(held[3]) then
      redis.call('HSET', KEYS[1], 'deadline', string.format('%d', deadline))
      redis.call('PEXPIRE', KEYS[1], ARGV[5])
    end
    if held[1] == ARGV[1] then
      if tonumber(ARGV[4]) > tonumber(held[5]) then redis.call('HSET', KEYS[1], 'attempt', ARGV[4]) end
    else
      redis.call('HINCRBY', KEYS[1], 'gen', 1)
    end
    return {2, counter, held[1], held[4] or '0'}
  end
  return {0, counter, redis.call('PTTL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'owner', ARGV[3], 'deadline', string.format('%d', deadline), 'attempt', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, counter}
)lua";

// Phase 2 of a grant: raise the fence counter to ARGV value only if it is strictly below it.
// With ARGV confirm = '1' (an OWNER re-acquire re-using its recorded fence) a counter equal to
// the value is accepted too: the confirmation fails only where a newer fence was written.
// KEYS: fence, lockcfg. ARGV: value, confirm ('1' or '0'), lock configuration epoch.
// Reply: {1, value} accepted, {0, current}.
inline constexpr std::string_view kFenceWriteLua = R"lua(
local cfg = redis.call('GET', KEYS[2])
if cfg and tonumber(cfg) > tonumber(ARGV[3]) then
  return redis.error_reply('LOCKEPOCH the lock backends moved to lock configuration epoch ' .. cfg .. ', this replica is at ' .. ARGV[3] .. ' (it has not applied the change yet)')
end
local cur = redis.call('GET', KEYS[1]) or '0'
local n = tonumber(cur)
local v = tonumber(ARGV[1])
if n < v or (ARGV[2] == '1' and n == v) then
  if n < v then redis.call('SET', KEYS[1], ARGV[1]) end
  return {1, ARGV[1]}
end
return {0, cur}
)lua";

// After a fence is committed: remember it in the hold, so an OWNER re-acquire can find it.
// Only on holds of this token stamped with the granted attempt (ARGV attempt), or with
// attempt '' (a re-acquire updating its adopted holds) only where a fence is already recorded.
// Never creates the hold. KEYS: lock. ARGV: token, fence, attempt. Reply: 1 or 0.
inline constexpr std::string_view kRecordFenceLua = R"lua(
local held = redis.call('HMGET', KEYS[1], 'token', 'attempt', 'fence')
if held[1] == ARGV[1] and ((ARGV[3] ~= '' and held[2] == ARGV[3]) or (ARGV[3] == '' and held[3])) then
  redis.call('HSET', KEYS[1], 'fence', ARGV[2])
  return 1
end
return 0
)lua";

// LOCK.RELEASE: compare-and-delete of a hold that has not passed its deadline (an expired hold
// keeps its lock-delay tail) and is of the generation given ('0': never adopted).
// KEYS: lock. ARGV: token, gen. Reply: 1 deleted, 0 not held by token, {2, gen} held by token
// but of another generation (the release round asks again with that one).
inline constexpr std::string_view kReleaseLua = R"lua(
local held = redis.call('HMGET', KEYS[1], 'token', 'deadline', 'gen')
if held[1] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(held[2]) then return 0 end
local gen = held[3] or '0'
if gen ~= ARGV[2] then return {2, gen} end
redis.call('DEL', KEYS[1])
return 1
)lua";

// Clean-up of an acquire round: deletes a hold with the round's token, if it is stamped with
// the given attempt ('' = any attempt: only once the round is over and was not granted with
// this token). A delayed abort of attempt k therefore never deletes the hold attempt k+1
// refreshed, and no round's abort touches another token's hold.
// KEYS: lock. ARGV: token, attempt ('' = any). Reply: 1 deleted, 0 not.
inline constexpr std::string_view kAbortLua = R"lua(
local held = redis.call('HMGET', KEYS[1], 'token', 'attempt')
if held[1] == ARGV[1] and (ARGV[2] == '' or held[2] == ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
)lua";

// LOCK.EXTEND: compare-and-pexpire. Only a hold with this token that has not passed its
// deadline is extended; nothing is ever created, so an expired lock is never revived. It never
// shortens a hold either: an extend that then fails to reach a quorum must not have eaten into
// the validity the holder still counts on. KEYS: lock, lockcfg. ARGV: token, ttl_ms, key_ms,
// lock configuration epoch. Reply: 1 held (now until at least ttl_ms from now), 0 not held.
inline constexpr std::string_view kExtendLua = R"lua(
local cfg = redis.call('GET', KEYS[2])
if cfg and tonumber(cfg) > tonumber(ARGV[4]) then
  return redis.error_reply('LOCKEPOCH the lock backends moved to lock configuration epoch ' .. cfg .. ', this replica is at ' .. ARGV[4] .. ' (it has not applied the change yet)')
end
local held = redis.call('HMGET', KEYS[1], 'token', 'deadline')
if held[1] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(held[2]) then return 0 end
if now + tonumber(ARGV[2]) > tonumber(held[2]) then
  redis.call('HSET', KEYS[1], 'deadline', string.format('%d', now + tonumber(ARGV[2])))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
)lua";

// LOCK.STATUS, read only. KEYS: lock, fence.
// Reply: {held 1|0, counter, remaining_ms, recorded fence or '0'}.
inline constexpr std::string_view kStatusLua = R"lua(
local counter = redis.call('GET', KEYS[2]) or '0'
local held = redis.call('HMGET', KEYS[1], 'token', 'deadline', 'fence')
if held[1] then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local left = tonumber(held[2]) - now
  if left > 0 then return {1, counter, left, held[3] or '0'} end
end
return {0, counter, 0, '0'}
)lua";

// LOCK.GUARD, on the data backend that owns the command's keys: run the command only if the
// fence is not older than the newest fence this backend has seen for the lock, and remember
// the newest. The record is raised before the command runs, so even a command that fails
// fences older holders out: a holder with this fence has reached the resource.
// redis.pcall returns the command's own error as the reply instead of a script error.
// KEYS: guard, then the command's keys (declared for ACLs and future cluster checks).
// ARGV: fence, then the whole command (name and arguments).
inline constexpr std::string_view kGuardLua = R"lua(
local seen = redis.call('GET', KEYS[1])
if seen and tonumber(ARGV[1]) < tonumber(seen) then
  return redis.error_reply('STALEFENCE fence ' .. ARGV[1] .. ' is older than fence ' .. seen .. ' already used on this backend')
end
if not seen or tonumber(ARGV[1]) > tonumber(seen) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return redis.pcall(unpack(ARGV, 2))
)lua";

// Changing the lock backends (reconfig.h): raise this backend's lock configuration epoch to
// ARGV epoch (never lower it) and, in the same atomic step, read every fence counter: once the
// epoch is raised no request of an older configuration can write a counter here any more, so
// the values read are final for it. With ARGV done = '1' it also records that a change to
// this epoch has completed (seeded and drained), which lets a replica that applies the same
// change later skip the wait. It also reports how long the longest hold key here still lives:
// once the epoch is raised no hold here can be taken or prolonged by an older configuration,
// so that bounds every old grant that holds this backend (reconfig.h, the drain).
// KEYS: lockcfg, lockcfg done. ARGV: epoch, done ('1' or '0').
// Reply: {epoch now stored, completed epoch, longest hold pttl, key, value, key, value, ...}.
inline constexpr std::string_view kLockEpochLua = R"lua(
local cfg = tonumber(redis.call('GET', KEYS[1]) or '0')
if cfg < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  cfg = tonumber(ARGV[1])
end
local done = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[2] == '1' and done < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[1])
  done = tonumber(ARGV[1])
end
local live = 0
local c = '0'
repeat
  local x = redis.call('SCAN', c, 'MATCH', '__lockstep:lock:*', 'COUNT', 1000)
  c = x[1]
  for _, k in ipairs(x[2]) do
    local t = redis.call('PTTL', k)
    if t == -1 then t = 86400000 end
    if t > live then live = t end
  end
until c == '0'
local r = {string.format('%d', cfg), string.format('%d', done), string.format('%d', live)}
c = '0'
repeat
  local x = redis.call('SCAN', c, 'MATCH', '__lockstep:fence:*', 'COUNT', 1000)
  c = x[1]
  for _, k in ipairs(x[2]) do
    r[#r + 1] = k
    r[#r + 1] = redis.call('GET', k)
  end
until c == '0'
return r
)lua";

inline constexpr Script kAcquireScript{"acquire", kAcquireLua, detail::sha1_hex(kAcquireLua)};
inline constexpr Script kFenceWriteScript{"fence-write", kFenceWriteLua,
                                          detail::sha1_hex(kFenceWriteLua)};
inline constexpr Script kRecordFenceScript{"record-fence", kRecordFenceLua,
                                           detail::sha1_hex(kRecordFenceLua)};
inline constexpr Script kReleaseScript{"release", kReleaseLua, detail::sha1_hex(kReleaseLua)};
inline constexpr Script kAbortScript{"abort", kAbortLua, detail::sha1_hex(kAbortLua)};
inline constexpr Script kExtendScript{"extend", kExtendLua, detail::sha1_hex(kExtendLua)};
inline constexpr Script kStatusScript{"status", kStatusLua, detail::sha1_hex(kStatusLua)};
inline constexpr Script kGuardScript{"guard", kGuardLua, detail::sha1_hex(kGuardLua)};
inline constexpr Script kLockEpochScript{"lock-epoch", kLockEpochLua,
                                         detail::sha1_hex(kLockEpochLua)};

// Every script, e.g. for a driver that wants to SCRIPT LOAD them on connect.
inline constexpr std::array<const Script*, 9> kAllScripts = {
    &kAcquireScript, &kFenceWriteScript, &kRecordFenceScript, &kReleaseScript,  &kAbortScript,
    &kExtendScript,  &kStatusScript,     &kGuardScript,       &kLockEpochScript};

inline constexpr std::string_view kKeyPrefix = "__lockstep:";
std::string lock_key(std::string_view name);   // __lockstep:lock:<name>
std::string fence_key(std::string_view name);  // __lockstep:fence:<name>
std::string guard_key(std::string_view name);  // __lockstep:guard:<name>
std::string lockcfg_key();                     // __lockstep:lockcfg
std::string lockcfg_done_key();                // __lockstep:lockcfg:done
// Pub/sub channel on which a replica announces that <name> was released, so waiters on other
// replicas try at once instead of waiting for the lock's TTL.
std::string released_channel(std::string_view name);  // __lockstep:released:<name>

enum class ScriptMode { kEvalSha, kEval };

// The RESP request running `script` (EVALSHA <sha> or EVAL <body>, numkeys, keys, args).
std::string script_request(const Script& script, ScriptMode mode,
                           std::span<const std::string_view> keys,
                           std::span<const std::string_view> args);

// LOCK.GUARD's request for the data backend owning the command's keys. `command` is the whole
// wrapped command (name first), `command_keys` its keys as the command table finds them. The
// reply goes to the client as it is. On -NOSCRIPT, send it again with ScriptMode::kEval.
std::string guard_request(std::string_view name, int64_t fence,
                          std::span<const std::string_view> command_keys,
                          std::span<const std::string_view> command, ScriptMode mode);

}  // namespace lockstep::lock
