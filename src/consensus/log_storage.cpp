// Durable acceptor state on a Disk; the file formats and the torn-tail rule are described in
// log_storage.h.
#include "lockstep/consensus/log_storage.h"

#include <algorithm>

#include "consensus/wire.h"
#include "lockstep/consensus/codec.h"

namespace lockstep::consensus {

namespace {

constexpr char kMeta[] = "meta";
constexpr char kLog[] = "log";
constexpr char kSnapshot[] = "snapshot";
constexpr uint64_t kMetaMagic = 0x31584150'5453'4b4cULL;  // "LKSTPAX1"
constexpr uint8_t kHardStateRecord = 1;
constexpr uint8_t kEntryRecord = 2;
constexpr size_t kHeader = 8;

void put_record(std::string& out, uint8_t type, const std::string& body) {
  std::string payload;
  payload.reserve(body.size() + 1);
  payload.push_back(static_cast<char>(type));
  payload += body;
  wire::Writer w;
  w.u32(static_cast<uint32_t>(payload.size()));
  w.u32(crc32c(payload));
  out += w.bytes();
  out += payload;
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

void upsert(std::vector<Entry>& entries, Entry e) {
  auto it = std::lower_bound(entries.begin(), entries.end(), e.index,
                             [](const Entry& x, uint64_t i) { return x.index < i; });
  if (it != entries.end() && it->index == e.index)
    *it = std::move(e);
  else
    entries.insert(it, std::move(e));
}

}  // namespace

LogStorage::Opened LogStorage::open(Disk& disk, uint64_t cluster_id, NodeId node_id) {
  Opened o;
  std::unique_ptr<LogStorage> s(new LogStorage(disk));
  if (std::string err = s->open_files(cluster_id, node_id); !err.empty()) {
    o.error = std::move(err);
    return o;
  }
  o.storage = std::move(s);
  return o;
}

std::string LogStorage::open_files(uint64_t cluster_id, NodeId node_id) {
  std::optional<std::string> meta, snap;
  if (auto st = disk_.read(kMeta, meta); !st.ok()) return st.error;
  if (auto st = disk_.read(kSnapshot, snap); !st.ok()) return st.error;
  if (!meta) {
    std::optional<std::string> log;
    if (auto st = disk_.read(kLog, log); !st.ok()) return st.error;
    if (snap || (log && !log->empty()))
      return "consensus data directory has a log but no meta file; refusing to guess its owner";
    wire::Writer w;
    w.u64(kMetaMagic);
    w.u64(cluster_id);
    w.u64(node_id);
    std::string body = w.take();
    wire::Writer f;
    f.u32(crc32c(body));
    std::string bytes = f.take() + body;
    if (auto st = disk_.replace(kMeta, bytes); !st.ok()) return st.error;
    recovered_.created = true;
    return {};
  }
  wire::Reader r(*meta);
  uint32_t crc = r.u32();
  std::string_view body = std::string_view(*meta).substr(std::min<size_t>(4, meta->size()));
  uint64_t magic = r.u64(), cid = r.u64(), nid = r.u64();
  if (!r.done() || crc != crc32c(body) || magic != kMetaMagic)
    return "consensus meta file is damaged (checksum or format)";
  if (cid != cluster_id || nid != node_id)
    return "consensus data directory belongs to cluster " + std::to_string(cid) + " node " +
           std::to_string(nid) + ", not cluster " + std::to_string(cluster_id) + " node " +
           std::to_string(node_id);
  if (snap) {
    wire::Reader sr(*snap);
    uint32_t scrc = sr.u32();
    std::string_view sbody = std::string_view(*snap).substr(std::min<size_t>(4, snap->size()));
    auto decoded = sr.ok() ? decode_snapshot(sbody) : std::nullopt;
    if (!decoded || scrc != crc32c(sbody))
      return "consensus snapshot file is damaged (checksum mismatch)";
    recovered_.snapshot = std::move(*decoded);
    snapshot_index_ = recovered_.snapshot.index;
  }
  return load_log();
}

std::string LogStorage::load_log() {
  std::optional<std::string> log;
  if (auto st = disk_.read(kLog, log); !st.ok()) return st.error;
  std::string_view data = log ? std::string_view(*log) : std::string_view();
  size_t pos = 0;
  while (pos < data.size()) {
    std::string_view rest = data.substr(pos);
    bool torn = false;
    std::string_view payload;
    if (rest.size() < kHeader) {
      torn = true;
    } else {
      wire::Reader h(rest.substr(0, kHeader));
      uint32_t len = h.u32(), crc = h.u32();
      if (len == 0 || len > rest.size() - kHeader) {
        // Runs past the end: a write the crash cut short. A zero length with non-zero bytes
        // after it is damage, not a torn tail.
        if (len == 0 && !all_zero(rest))
          return "consensus log is damaged at byte " + std::to_string(pos) +
                 " (zero-length record)";
        torn = true;
      } else {
        payload = rest.substr(kHeader, len);
        if (crc32c(payload) != crc) {
          bool last = kHeader + len == rest.size();
          if (!last && !all_zero(rest.substr(kHeader + len)))
            return "consensus log is damaged at byte " + std::to_string(pos) +
                   " (checksum mismatch with intact records after it)";
          torn = true;
        }
      }
    }
    if (torn) {
      recovered_.torn_bytes = data.size() - pos;
      if (auto st = disk_.truncate(kLog, pos); !st.ok()) return st.error;
      break;
    }
    uint8_t type = static_cast<uint8_t>(payload[0]);
    std::string_view body = payload.substr(1);
    if (type == kHardStateRecord) {
      auto hs = decode_hard_state(body);
      if (!hs) return "consensus log: undecodable hard state at byte " + std::to_string(pos);
      hard_state_ = *hs;
    } else if (type == kEntryRecord) {
      auto e = decode_entry(body);
      if (!e) return "consensus log: undecodable entry at byte " + std::to_string(pos);
      if (e->index > snapshot_index_) upsert(entries_, std::move(*e));
    } else {
      return "consensus log: unknown record type at byte " + std::to_string(pos);
    }
    pos += kHeader + payload.size();
  }
  recovered_.hard_state = hard_state_;
  recovered_.hard_state.commit = std::max(recovered_.hard_state.commit, snapshot_index_);
  recovered_.entries = entries_;
  return {};
}

IoStatus LogStorage::save(const std::optional<HardState>& hard_state,
                          const std::vector<Entry>& entries) {
  if (!hard_state && entries.empty()) return {};
  std::string out;
  for (const auto& e : entries) {
    if (e.index <= snapshot_index_) continue;
    put_record(out, kEntryRecord, encode_entry(e));
    upsert(entries_, e);
  }
  // The hard state goes last: a commit hint never survives without the entries it covers.
  if (hard_state) {
    put_record(out, kHardStateRecord, encode_hard_state(*hard_state));
    hard_state_ = *hard_state;
  }
  if (out.empty()) return {};
  if (auto st = disk_.append(kLog, out); !st.ok()) return st;
  return disk_.sync(kLog);
}

IoStatus LogStorage::save_snapshot(const Snapshot& s) {
  if (s.index < snapshot_index_) return {};  // older than what we have: nothing to do
  std::string body = encode_snapshot(s);
  wire::Writer w;
  w.u32(crc32c(body));
  std::string bytes = w.take() + body;
  if (auto st = disk_.replace(kSnapshot, bytes); !st.ok()) return st;
  snapshot_index_ = s.index;
  entries_.erase(entries_.begin(),
                 std::upper_bound(entries_.begin(), entries_.end(), s.index,
                                  [](uint64_t i, const Entry& x) { return i < x.index; }));
  hard_state_.commit = std::max(hard_state_.commit, s.index);
  std::string log;
  put_record(log, kHardStateRecord, encode_hard_state(hard_state_));
  for (const auto& e : entries_) put_record(log, kEntryRecord, encode_entry(e));
  return disk_.replace(kLog, log);
}

}  // namespace lockstep::consensus
