// Transaction recovery (design in include/lockstep/txn/resolver.h).
#include "lockstep/txn/resolver.h"

#include <array>
#include <charconv>

#include "lockstep/resp/resp.h"
#include "lockstep/txn/coordinator.h"
#include "lockstep/txn/scripts.h"

namespace lockstep::txn {

namespace {

// The payload of a bulk string reply ("$3\r\nabc\r\n"), or false.
bool bulk_value(std::string_view reply, std::string& out) {
  if (reply.empty() || (reply[0] != '$' && reply[0] != '+')) return false;
  if (reply[0] == '+') {
    out.assign(reply.substr(1, reply.size() - 3));
    return true;
  }
  const size_t nl = reply.find("\r\n");
  if (nl == std::string_view::npos) return false;
  int64_t len = 0;
  if (!resp::parse_int64(reply.substr(1, nl - 1), len) || len < 0) return false;
  if (reply.size() < nl + 2 + static_cast<size_t>(len)) return false;
  out.assign(reply.substr(nl + 2, static_cast<size_t>(len)));
  return true;
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t nl = s.find('\n', start);
    if (nl == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      break;
    }
    out.emplace_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kPending:
      return "pending";
    case Verdict::kLeased:
      return "leased";
    case Verdict::kRolledForward:
      return "rolled-forward";
    case Verdict::kRolledBack:
      return "rolled-back";
    case Verdict::kGone:
      return "gone";
    case Verdict::kError:
      return "error";
  }
  return "?";
}

std::string scan_request(size_t limit) {
  const std::array<std::string_view, 1> keys{kActiveKey};
  const std::string l = std::to_string(limit);
  const std::array<std::string_view, 1> argv{l};
  return eval_request(kScanLua, keys, argv);
}

namespace {

// Rows of the scan scripts: 7 fields, or 8 with the coordinator (the abandoned scan).
bool parse_rows(std::string_view reply, size_t nfields, std::vector<ScannedIntent>& out) {
  std::vector<std::string_view> rows;
  int64_t n = 0;
  if (!resp::split_array(reply, rows, n)) return false;
  for (std::string_view row : rows) {
    std::vector<std::string_view> f;
    int64_t m = 0;
    if (!resp::split_array(row, f, m) || f.size() != nfields) return false;
    std::array<std::string, 8> v;
    for (size_t i = 0; i < nfields; ++i)
      if (!bulk_value(f[i], v[i])) return false;
    ScannedIntent it;
    it.txid = v[0];
    it.state = v[1].empty() ? '?' : v[1][0];
    it.role = v[2].empty() ? '?' : v[2][0];
    it.primary = v[3];
    it.parts = split_lines(v[4]);
    int64_t nc = 0;
    if (!resp::parse_int64(v[5], nc) || nc < 0) return false;
    it.ncmds = static_cast<size_t>(nc);
    it.redo = std::move(v[6]);
    it.coord = std::move(v[7]);
    out.push_back(std::move(it));
  }
  return true;
}

// A decimal without sign or leading zeros (ids and incarnations are printed that way, and the
// scan script matches them as text).
std::optional<uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

bool parse_scan(std::string_view reply, std::vector<ScannedIntent>& out) {
  return parse_rows(reply, 7, out);
}

bool parse_abandoned_scan(std::string_view reply, std::vector<ScannedIntent>& out) {
  return parse_rows(reply, 8, out);
}

std::string coordinator_id(const std::optional<CoordinatorTag>& tag, std::string_view process) {
  if (!tag) return std::string(process);
  return "r" + std::to_string(tag->replica) + "." + std::to_string(tag->incarnation) + "/" +
         std::string(process);
}

std::optional<CoordinatorTag> parse_coordinator(std::string_view coord) {
  // Exactly four fields: an untagged id has three, so a host named like a tag ("r1.2") is
  // never mistaken for one.
  std::array<std::string_view, 4> f;
  size_t n = 0, start = 0;
  for (;;) {
    const size_t slash = coord.find('/', start);
    if (n == f.size()) return std::nullopt;
    f[n++] = coord.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (n != 4 || f[1].empty() || f[2].empty() || f[3].empty()) return std::nullopt;
  std::string_view t = f[0];
  if (t.size() < 4 || t[0] != 'r') return std::nullopt;
  const size_t dot = t.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto replica = parse_decimal(t.substr(1, dot - 1));
  const auto incarnation = parse_decimal(t.substr(dot + 1));
  if (!replica || !incarnation) return std::nullopt;
  return CoordinatorTag{*replica, *incarnation};
}

bool is_abandoned(std::string_view coord, const Incarnations& current) {
  const auto tag = parse_coordinator(coord);
  if (!tag) return false;
  const auto it = current.find(tag->replica);
  return it != current.end() && it->second > tag->incarnation;
}

std::string scan_abandoned_request(size_t limit, const Incarnations& current) {
  std::vector<std::string> args{std::to_string(limit)};
  for (const auto& [replica, incarnation] : current) {
    if (incarnation < 2) continue;
    args.push_back(std::to_string(replica));
    args.push_back(std::to_string(incarnation));
  }
  if (args.size() == 1) return {};
  const std::array<std::string_view, 1> keys{kActiveKey};
  const std::vector<std::string_view> argv(args.begin(), args.end());
  return eval_request(kScanAbandonedLua, keys, argv);
}

Resolution::Resolution(std::string here, ScannedIntent intent)
    : here_(std::move(here)), intent_(std::move(intent)) {
  poison_ = std::string(kPoisonPrefix) + intent_.txid + ":r";
}

void Resolution::send(std::vector<Request>& out, const std::string& backend, Step step,
                      std::string request, bool counted) {
  const auto tag = static_cast<uint32_t>(tags_.size());
  tags_.push_back(Tag{step, counted, backend});
  if (counted) ++outstanding_;
  out.push_back(Request{backend, tag, std::move(request)});
}

void Resolution::start(std::vector<Request>& out) {
  const std::string ikey = intent_key(intent_.txid);
  const std::array<std::string_view, 1> keys{ikey};
  const std::array<std::string_view, 2> argv{intent_.txid, "abandoned"};
  send(out, intent_.primary, Step::kDecide,
       eval_request(kDecideLua, keys,
                    std::span<const std::string_view>(argv.data(), intent_.abandoned ? 2 : 1)));
}

void Resolution::apply_on(std::vector<Request>& out, const std::string& backend,
                          std::string_view redo) {
  const std::string ikey = intent_key(intent_.txid);
  std::string r;
  const std::array<std::string_view, 3> watch{"WATCH", ikey, poison_};
  resp::append_command(r, watch);
  send(out, backend, Step::kApply, std::move(r), false);
  const std::array<std::string_view, 2> ck{ikey, poison_};
  send(out, backend, Step::kApply, eval_request(kCheckPreparedLua, ck, {}), false);
  r.clear();
  const std::array<std::string_view, 1> multi{"MULTI"};
  resp::append_command(r, multi);
  send(out, backend, Step::kApply, std::move(r), false);
  const std::array<std::string_view, 2> fk{ikey, kActiveKey};
  const std::array<std::string_view, 1> txid{intent_.txid};
  send(out, backend, Step::kApply, eval_request(kFinishLua, fk, txid), false);
  // The redo is the client's requests back to back: each one is a RESP array, so the reply
  // scanner frames them one by one.
  resp::ReplyScanner scanner;
  size_t pos = 0;
  while (pos < redo.size()) {
    scanner.reset();
    const int64_t len = scanner.scan(redo.data() + pos, redo.size() - pos);
    if (len <= 0) break;
    send(out, backend, Step::kApply, std::string(redo.substr(pos, static_cast<size_t>(len))),
         false);
    pos += static_cast<size_t>(len);
  }
  r.clear();
  const std::array<std::string_view, 1> exec{"EXEC"};
  resp::append_command(r, exec);
  send(out, backend, Step::kApply, std::move(r));
}

void Resolution::on_reply(uint32_t tag, std::string_view reply, std::vector<Request>& out) {
  if (tag >= tags_.size() || done()) return;
  const Tag t = tags_[tag];
  if (!t.counted) return;  // WATCH, check, MULTI, QUEUED: their effect shows in the EXEC
  --outstanding_;
  const std::string ikey = intent_key(intent_.txid);
  const std::array<std::string_view, 2> rk{ikey, kActiveKey};
  const std::array<std::string_view, 1> txid{intent_.txid};
  auto fail = [&](std::string_view what) {
    verdict_ = Verdict::kError;
    error_ = std::string(what) + " on " + t.backend + ": " +
             std::string(reply.substr(0, reply.size() >= 2 ? reply.size() - 2 : 0));
  };
  switch (t.step) {
    case Step::kDecide: {
      std::string state;
      if (!bulk_value(reply, state)) return fail("decide");
      if (state == "P") {
        verdict_ = Verdict::kLeased;
        return;
      }
      const bool forward = state == "C";
      goal_ = forward ? Verdict::kRolledForward : Verdict::kRolledBack;
      if (intent_.role == 's') {
        if (forward)
          apply_on(out, here_, intent_.redo);
        else
          send(out, here_, Step::kRollback, eval_request(kRollbackLua, rk, txid));
        break;
      }
      if (state == "none") {
        verdict_ = Verdict::kGone;
        return;
      }
      for (size_t i = 1; i < intent_.parts.size(); ++i) {
        const std::string& b = intent_.parts[i];
        if (forward) {
          std::string r;
          const std::array<std::string_view, 4> hm{"HMGET", ikey, "redo", "state"};
          resp::append_command(r, hm);
          send(out, b, Step::kFetchRedo, std::move(r));
        } else {
          send(out, b, Step::kRollback, eval_request(kRollbackLua, rk, txid));
        }
      }
      break;
    }
    case Step::kFetchRedo: {
      std::vector<std::string_view> el;
      int64_t n = 0;
      if (!resp::split_array(reply, el, n) || el.size() != 2) return fail("fetch redo");
      std::string redo, state;
      // No intent there: that secondary has applied already.
      if (bulk_value(el[1], state) && state == "P" && bulk_value(el[0], redo))
        apply_on(out, t.backend, redo);
      break;
    }
    case Step::kApply:
      // nil: the intent changed under the WATCH (someone else applied it): fine.
      if (resp::is_error_reply(reply)) return fail("apply");
      break;
    case Step::kRollback:
    case Step::kCleanup:
      if (resp::is_error_reply(reply)) return fail("roll back");
      break;
  }
  if (outstanding_ == 0) finish_fanout(out);
}

void Resolution::finish_fanout(std::vector<Request>& out) {
  if (intent_.role == 'p' && !cleanup_sent_) {
    cleanup_sent_ = true;
    const std::string ikey = intent_key(intent_.txid);
    const std::array<std::string_view, 2> rk{ikey, kActiveKey};
    const std::array<std::string_view, 1> txid{intent_.txid};
    // ABORTED records are dropped by the roll-back script, COMMITTED ones by clean-up.
    send(out, here_, Step::kCleanup,
         eval_request(goal_ == Verdict::kRolledForward ? kCleanupLua : kRollbackLua, rk, txid));
    return;
  }
  verdict_ = goal_;
}

}  // namespace lockstep::txn
