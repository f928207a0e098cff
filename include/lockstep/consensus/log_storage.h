// The durable half of an acceptor: its hard state (promised ballot, commit hint), the entries
// it accepted, and the latest snapshot, in a data directory reached through a Disk.
//
// Files:
//   meta      cluster id and node id (checked on every open, so a data_dir is never used by
//             another replica or cluster); written once, atomically.
//   log       append-only records [u32 length][u32 crc32c][u8 type][body]: hard states and
//             entries, later records overriding earlier ones. fdatasync'd before save()
//             returns. A bad record that reaches the end of the file (or is followed only by
//             zero bytes) is a torn write and is cut off on open; a bad record with intact
//             data after it is corruption and open() refuses the directory.
//   snapshot  [u32 crc32c][encoded Snapshot], replaced atomically (temp + fsync + rename +
//             fsync dir). Saving a snapshot compacts the log: the log is rewritten (same
//             atomic replace) without the entries the snapshot covers.
//
// Not thread-safe; one LogStorage per data directory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lockstep/consensus/disk.h"
#include "lockstep/consensus/types.h"

namespace lockstep::consensus {

// What open() found on disk: the input to PaxosCore's constructor.
struct RecoveredState {
  HardState hard_state;
  Snapshot snapshot;           // index 0 and empty membership when there is none
  std::vector<Entry> entries;  // accepted entries above snapshot.index, by index
  bool created = false;        // the directory was empty: a brand-new replica
  uint64_t torn_bytes = 0;     // bytes cut off the log's tail on open
};

class LogStorage {
 public:
  struct Opened {
    std::unique_ptr<LogStorage> storage;  // null on error
    std::string error;
  };
  // Opens (or, when empty, initialises) the data in `disk` for this cluster and node.
  // `disk` must outlive the LogStorage.
  static Opened open(Disk& disk, uint64_t cluster_id, NodeId node_id);

  const RecoveredState& recovered() const { return recovered_; }

  // Appends the hard state (if given) and entries, then fdatasyncs. Returns only when they are
  // durable: the caller may then send the messages that depend on them.
  IoStatus save(const std::optional<HardState>& hard_state, const std::vector<Entry>& entries);

  // Stores `s` durably and drops the log entries it covers (s.index and below).
  IoStatus save_snapshot(const Snapshot& s);

  uint64_t snapshot_index() const { return snapshot_index_; }
  size_t entry_count() const { return entries_.size(); }

 private:
  LogStorage(Disk& disk) : disk_(disk) {}
  std::string open_files(uint64_t cluster_id, NodeId node_id);
  std::string load_log();

  Disk& disk_;
  RecoveredState recovered_;
  // Mirror of what the log holds, used to rewrite it on compaction.
  HardState hard_state_;
  std::vector<Entry> entries_;  // sorted by index, > snapshot_index_
  uint64_t snapshot_index_ = 0;
};

}  // namespace lockstep::consensus
