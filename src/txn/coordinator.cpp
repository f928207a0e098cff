// The coordinator of one EXEC (protocol in include/lockstep/txn/coordinator.h).
#include "lockstep/txn/coordinator.h"

#include <algorithm>
#include <array>

#include "lockstep/resp/resp.h"
#include "lockstep/txn/scripts.h"

namespace lockstep::txn {

namespace {

constexpr std::string_view kReplyLost =
    "-ERR reply lost: this command was applied by transaction recovery\r\n";

bool is_nil(std::string_view reply) {
  return reply == "*-1\r\n" || reply == "$-1\r\n" || reply == "_\r\n";
}

std::string command(std::initializer_list<std::string_view> args) {
  std::string out;
  resp::append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
  return out;
}

// The integer in element `i` of an array reply, or `fallback`.
int64_t int_element(std::string_view reply, size_t i, int64_t fallback) {
  std::vector<std::string_view> el;
  int64_t n = 0;
  if (!resp::split_array(reply, el, n) || el.size() <= i) return fallback;
  int64_t v = fallback;
  return resp::parse_integer_reply(el[i], v) ? v : fallback;
}

}  // namespace

std::string eval_request(std::string_view script, std::span<const std::string_view> keys,
                         std::span<const std::string_view> argv) {
  std::vector<std::string_view> args;
  args.reserve(3 + keys.size() + argv.size());
  const std::string nkeys = std::to_string(keys.size());
  args.push_back("EVAL");
  args.push_back(script);
  args.push_back(nkeys);
  args.insert(args.end(), keys.begin(), keys.end());
  args.insert(args.end(), argv.begin(), argv.end());
  std::string out;
  resp::append_command(out, args);
  return out;
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kFastPath:
      return "fast-path";
    case Phase::kPreparePrimary:
      return "prepare-primary";
    case Phase::kPrepareOthers:
      return "prepare-others";
    case Phase::kCommit:
      return "commit";
    case Phase::kApply:
      return "apply";
    case Phase::kAbort:
      return "abort";
    case Phase::kDone:
      return "done";
  }
  return "?";
}

std::string lock_key(std::string_view key) {
  std::string k(kLockPrefix);
  k.append(key);
  return k;
}

std::string intent_key(std::string_view txid) {
  std::string k(kIntentPrefix);
  k.append(txid);
  return k;
}

Coordinator::Coordinator(CoordinatorSettings settings, std::vector<Participant> participants)
    : s_(std::move(settings)),
      participants_(std::move(participants)),
      parts_(participants_.size()),
      phase_(participants_.size() == 1 ? Phase::kFastPath : Phase::kPreparePrimary) {
  for (auto& p : participants_) {
    std::sort(p.keys.begin(), p.keys.end());
    p.keys.erase(std::unique(p.keys.begin(), p.keys.end()), p.keys.end());
    if (!parts_list_.empty()) parts_list_ += '\n';
    parts_list_ += p.name;
  }
}

std::string Coordinator::intent_key() const {
  return txn::intent_key(s_.txid);
}

void Coordinator::push(std::vector<Send>& out, uint32_t p, std::string request, Expect e) {
  parts_[p].expect.push_back(e);
  out.push_back(Send{p, std::move(request)});
}

void Coordinator::start(std::vector<Send>& out) {
  if (phase_ == Phase::kFastPath)
    send_fast(out);
  else
    send_prepare(out, 0);
}

void Coordinator::send_fast(std::vector<Send>& out) {
  const Participant& p = participants_[0];
  std::vector<std::string> locks;
  locks.reserve(p.keys.size());
  for (const auto& k : p.keys) locks.push_back(lock_key(k));
  std::vector<std::string_view> keys;
  keys.push_back(s_.poison);
  for (const auto& l : locks) keys.push_back(l);
  std::vector<std::string_view> watch{"WATCH"};
  watch.insert(watch.end(), keys.begin(), keys.end());
  std::string w;
  resp::append_command(w, watch);
  push(out, 0, std::move(w), Expect::kIgnore);
  push(out, 0, eval_request(kCheckUnlockedLua, keys, {}), Expect::kCheckUnlocked);
  push(out, 0, command({"MULTI"}), Expect::kIgnore);
  for (const auto& c : p.commands) push(out, 0, c, Expect::kIgnore);
  push(out, 0, command({"EXEC"}), Expect::kFastExec);
}

void Coordinator::send_prepare(std::vector<Send>& out, uint32_t i) {
  const Participant& p = participants_[i];
  PartState& st = parts_[i];
  st.prepared = true;
  const std::string ikey = intent_key();
  std::vector<std::string> locks;
  for (const auto& k : p.keys) locks.push_back(lock_key(k));
  std::vector<std::string_view> keys{ikey, kActiveKey};
  for (const auto& l : locks) keys.push_back(l);
  for (const auto& k : p.absent_keys) keys.push_back(k);
  std::string redo;
  for (const auto& c : p.commands) redo += c;
  const std::string lease = std::to_string(s_.lease_ms);
  const std::string ncmds = std::to_string(p.commands.size());
  const std::string nlocks = std::to_string(locks.size());
  const std::array<std::string_view, 9> argv{
      s_.txid, i == 0 ? "p" : "s", participants_[0].name, parts_list_, s_.coord, lease, redo, ncmds,
      nlocks};
  std::string eval = eval_request(kPrepareLua, keys, argv);
  if (p.pinned) {
    // The client's WATCHes live on this connection: checked by this EXEC, atomically with the
    // prepare, which is what makes a cross-backend WATCH exact.
    push(out, i, command({"MULTI"}), Expect::kIgnore);
    push(out, i, std::move(eval), Expect::kIgnore);
    push(out, i, command({"EXEC"}), Expect::kPrepareExec);
  } else {
    push(out, i, std::move(eval), Expect::kPrepare);
  }
}

void Coordinator::send_commit_or_apply(std::vector<Send>& out, uint32_t i, bool primary) {
  const Participant& p = participants_[i];
  const std::string ikey = intent_key();
  push(out, i, command({"WATCH", ikey, s_.poison}), Expect::kIgnore);
  const std::array<std::string_view, 2> ck{ikey, s_.poison};
  push(out, i, eval_request(kCheckPreparedLua, ck, {}), Expect::kCheckPrepared);
  push(out, i, command({"MULTI"}), Expect::kIgnore);
  const std::array<std::string_view, 1> txid{s_.txid};
  if (primary) {
    const std::array<std::string_view, 1> k{ikey};
    push(out, i, eval_request(kCommitLua, k, txid), Expect::kIgnore);
  } else {
    const std::array<std::string_view, 2> k{ikey, kActiveKey};
    push(out, i, eval_request(kFinishLua, k, txid), Expect::kIgnore);
  }
  for (const auto& c : p.commands) push(out, i, c, Expect::kIgnore);
  push(out, i, command({"EXEC"}), primary ? Expect::kCommitExec : Expect::kApplyExec);
}

void Coordinator::cleanup_requests(std::vector<Send>& out) const {
  // The primary's COMMITTED record is what tells a resolver to roll a secondary forward: it
  // goes only once every secondary is known applied. After a lost apply reply it stays, and
  // the resolver applies that secondary (or finds it applied) and then drops the record.
  if (participants_.size() < 2 || outcome_ != Outcome::kCommitted || apply_in_doubt_) return;
  const std::string ikey = intent_key();
  const std::array<std::string_view, 2> k{ikey, kActiveKey};
  const std::array<std::string_view, 1> txid{s_.txid};
  out.push_back(Send{0, eval_request(kCleanupLua, k, txid)});
}

void Coordinator::abandon_requests(std::vector<Send>& out) const {
  if (participants_.size() < 2 || done()) return;
  const std::string ikey = intent_key();
  const std::array<std::string_view, 2> k{ikey, kActiveKey};
  const std::array<std::string_view, 1> txid{s_.txid};
  for (uint32_t i = 0; i < participants_.size(); ++i)
    out.push_back(Send{i, eval_request(kExpireLeaseLua, k, txid)});
}

void Coordinator::begin_abort(std::vector<Send>& out, Outcome why) {
  abort_outcome_ = why;
  phase_ = Phase::kAbort;
  const std::string ikey = intent_key();
  const std::array<std::string_view, 2> k{ikey, kActiveKey};
  const std::array<std::string_view, 1> txid{s_.txid};
  for (uint32_t i = 0; i < parts_.size(); ++i)
    if (parts_[i].prepared) push(out, i, eval_request(kRollbackLua, k, txid), Expect::kRollback);
  advance(out);
}

bool Coordinator::all_replied() const {
  return std::all_of(parts_.begin(), parts_.end(),
                     [](const PartState& s) { return s.next == s.expect.size(); });
}

void Coordinator::take_exec_elements(uint32_t p, std::string_view exec, size_t skip) {
  std::vector<std::string_view> el;
  int64_t n = 0;
  resp::split_array(exec, el, n);
  auto& r = parts_[p].replies;
  r.clear();
  for (size_t i = skip; i < el.size(); ++i) r.emplace_back(el[i]);
}

void Coordinator::on_prepare_result(uint32_t p, std::string_view result, std::vector<Send>& out) {
  (void)out;
  PartState& st = parts_[p];
  Outcome bad = Outcome::kPending;
  if (is_nil(result)) {
    bad = Outcome::kWatchFailed;
    st.prepared = false;  // the EXEC discarded the prepare
  } else if (resp::is_error_reply(result)) {
    bad = Outcome::kFailed;
    if (error_.empty()) {
      error_.assign(result);
      if (error_.ends_with("\r\n")) error_.resize(error_.size() - 2);
      if (!error_.empty()) error_.erase(0, 1);
    }
  } else {
    // A pinned prepare's EXEC wraps the script's reply in a one-element array.
    std::string_view r = result;
    std::vector<std::string_view> el;
    int64_t n = 0;
    if (participants_[p].pinned && resp::split_array(result, el, n) && el.size() == 1) r = el[0];
    const int64_t v = int_element(r, 0, -1);
    if (v == 1) return;
    st.prepared = false;  // a "no" writes nothing
    if (v == 2) {
      bad = Outcome::kKeyExists;
    } else if (v == 0) {
      bad = Outcome::kConflict;
      std::vector<std::string_view> e2;
      if (resp::split_array(r, e2, n) && e2.size() == 2 && conflict_key_.empty()) {
        std::string_view k = e2[1];
        // "$len\r\n<key>\r\n"
        const size_t nl = k.find("\r\n");
        if (nl != std::string_view::npos && k.size() >= nl + 4)
          conflict_key_.assign(k.substr(nl + 2, k.size() - nl - 4));
      }
    } else {
      bad = Outcome::kFailed;
      if (error_.empty()) error_ = "ERR unexpected reply to a transaction prepare";
    }
  }
  // Keep the most telling reason: a failure over a watch over a conflict.
  auto rank = [](Outcome o) {
    switch (o) {
      case Outcome::kFailed:
        return 4;
      case Outcome::kWatchFailed:
        return 3;
      case Outcome::kKeyExists:
        return 2;
      case Outcome::kConflict:
        return 1;
      default:
        return 0;
    }
  };
  if (rank(bad) > rank(abort_outcome_)) abort_outcome_ = bad;
}

void Coordinator::on_reply(uint32_t p, std::string_view reply, std::vector<Send>& out) {
  PartState& st = parts_[p];
  if (st.next >= st.expect.size()) return;  // not ours (cannot happen: one reply per request)
  const Expect e = st.expect[st.next++];
  switch (e) {
    case Expect::kIgnore:
      if (resp::is_error_reply(reply) && st.queue_error.empty()) st.queue_error.assign(reply);
      break;
    case Expect::kCheckUnlocked: {
      int64_t v = 0;
      if (resp::parse_integer_reply(reply, v) && v == 1) st.locked = true;
      break;
    }
    case Expect::kCheckPrepared:
      break;  // its effect shows in the EXEC
    case Expect::kPrepare:
    case Expect::kPrepareExec:
      on_prepare_result(p, reply, out);
      break;
    case Expect::kFastExec:
      if (is_nil(reply)) {
        // The guard found a held key, or a key the client watched changed. Without WATCHes of
        // the client's own here, a nil can only come from a lock taken in between: retry.
        outcome_ =
            st.locked || !participants_[0].pinned ? Outcome::kConflict : Outcome::kWatchFailed;
      } else if (reply.starts_with("-EXECABORT")) {
        outcome_ = Outcome::kExecAbort;  // the backend discarded the whole MULTI
        error_.assign(reply.substr(1, reply.size() - 3));
      } else if (resp::is_error_reply(reply)) {
        // No answer to the EXEC (connection lost, timeout): it may or may not have run.
        outcome_ = Outcome::kUnknown;
        error_ = "ERR transaction outcome unknown: ";
        error_.append(reply.substr(1, reply.size() - 3));
      } else {
        take_exec_elements(0, reply, 0);
        outcome_ = Outcome::kCommitted;
      }
      phase_ = Phase::kDone;
      return;
    case Expect::kCommitExec:
      if (is_nil(reply)) {
        // A resolver aborted the record (our lease ran out) before the commit point.
        error_ = "ERR transaction aborted: its lease expired before the commit point";
        begin_abort(out, Outcome::kFailed);
        return;
      }
      if (resp::is_error_reply(reply)) {
        if (reply.starts_with("-EXECABORT")) {
          error_.assign(reply.substr(1, reply.size() - 3));
          begin_abort(out, Outcome::kExecAbort);
          return;
        }
        outcome_ = Outcome::kUnknown;
        error_ = "ERR transaction outcome unknown: the commit point's reply was lost (";
        error_.append(reply.substr(1, reply.size() - 3));
        error_ += "); recovery will apply it everywhere or nowhere";
        phase_ = Phase::kDone;
        return;
      }
      take_exec_elements(p, reply, 1);
      outcome_ = Outcome::kCommitted;
      phase_ = Phase::kApply;
      for (uint32_t i = 1; i < parts_.size(); ++i) send_commit_or_apply(out, i, false);
      break;
    case Expect::kApplyExec:
      if (!is_nil(reply) && (resp::is_error_reply(reply) || reply.empty())) apply_in_doubt_ = true;
      if (is_nil(reply) || resp::is_error_reply(reply)) {
        // Applied by a resolver already (nil), or in doubt (the resolver will apply it: the
        // commit point is passed, so the outcome is not in question, only these replies).
        st.replies.assign(participants_[p].commands.size(), std::string(kReplyLost));
      } else {
        take_exec_elements(p, reply, 1);
      }
      break;
    case Expect::kRollback:
      break;
  }
  advance(out);
}

void Coordinator::advance(std::vector<Send>& out) {
  switch (phase_) {
    case Phase::kPreparePrimary:
      if (!all_replied()) return;
      if (abort_outcome_ != Outcome::kPending) {
        begin_abort(out, abort_outcome_);
        return;
      }
      phase_ = Phase::kPrepareOthers;
      for (uint32_t i = 1; i < parts_.size(); ++i) send_prepare(out, i);
      return;
    case Phase::kPrepareOthers:
      if (!all_replied()) return;
      if (abort_outcome_ != Outcome::kPending) {
        begin_abort(out, abort_outcome_);
        return;
      }
      phase_ = Phase::kCommit;
      send_commit_or_apply(out, 0, true);
      return;
    case Phase::kApply:
      if (all_replied()) phase_ = Phase::kDone;
      return;
    case Phase::kAbort:
      if (all_replied()) {
        outcome_ = abort_outcome_;
        phase_ = Phase::kDone;
      }
      return;
    default:
      return;
  }
}

}  // namespace lockstep::txn
