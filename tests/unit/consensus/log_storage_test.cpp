// LogStorage on real files (PosixDisk in a temp directory) and on MemDisk: round trips, torn
// tails, checksum damage, identity checks, snapshot + compaction + restart.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "lockstep/consensus/log_storage.h"

using namespace lockstep::consensus;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lockstep-consensus-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

Entry entry(uint64_t index, uint64_t round, std::string data) {
  Entry e;
  e.index = index;
  e.ballot = Ballot{round, 1};
  e.type = EntryType::kCommand;
  e.id = ProposalId{1, index};
  e.data = std::move(data);
  return e;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

}  // namespace

TEST_CASE("LogStorage round-trips hard state and entries on real files", "[consensus][storage]") {
  TempDir dir;
  {
    PosixDisk disk(dir.path.string());
    auto o = LogStorage::open(disk, 9, 2);
    REQUIRE(o.storage);
    CHECK(o.storage->recovered().created);
    REQUIRE(o.storage->save(HardState{Ballot{3, 1}, 2}, {entry(1, 3, "a"), entry(2, 3, "b")}).ok());
    // A later record for the same slot wins.
    REQUIRE(
        o.storage->save(HardState{Ballot{4, 2}, 2}, {entry(2, 4, "b2"), entry(3, 4, "c")}).ok());
  }
  PosixDisk disk(dir.path.string());
  auto o = LogStorage::open(disk, 9, 2);
  REQUIRE(o.storage);
  const auto& r = o.storage->recovered();
  CHECK_FALSE(r.created);
  CHECK(r.torn_bytes == 0);
  CHECK(r.hard_state == HardState{Ballot{4, 2}, 2});
  REQUIRE(r.entries.size() == 3);
  CHECK(r.entries[1] == entry(2, 4, "b2"));
  CHECK(r.entries[2].data == "c");
}

TEST_CASE("LogStorage refuses another cluster's or node's directory", "[consensus][storage]") {
  TempDir dir;
  PosixDisk disk(dir.path.string());
  REQUIRE(LogStorage::open(disk, 9, 2).storage);
  auto other_node = LogStorage::open(disk, 9, 3);
  CHECK_FALSE(other_node.storage);
  CHECK(other_node.error.find("belongs to cluster 9 node 2") != std::string::npos);
  CHECK_FALSE(LogStorage::open(disk, 8, 2).storage);
}

TEST_CASE("LogStorage cuts a torn tail and keeps everything before it", "[consensus][storage]") {
  TempDir dir;
  {
    PosixDisk disk(dir.path.string());
    auto o = LogStorage::open(disk, 1, 1);
    REQUIRE(o.storage->save(HardState{Ballot{1, 1}, 0}, {entry(1, 1, "one")}).ok());
    REQUIRE(o.storage->save(std::nullopt, {entry(2, 1, std::string(100, 'x'))}).ok());
  }
  fs::path log = dir.path / "log";
  std::string bytes = read_file(log);
  size_t full = bytes.size();

  SECTION("a record cut short") {
    write_file(log, bytes.substr(0, full - 30));
  }
  SECTION("the last record's bytes garbled (checksum mismatch at the end)") {
    bytes[full - 5] ^= 0x40;
    write_file(log, bytes);
  }
  SECTION("zeros after the last record (a file extended but never written)") {
    write_file(log, bytes.substr(0, full - 130) + std::string(64, '\0'));
  }
  PosixDisk disk(dir.path.string());
  auto o = LogStorage::open(disk, 1, 1);
  REQUIRE(o.storage);
  const auto& r = o.storage->recovered();
  CHECK(r.torn_bytes > 0);
  REQUIRE(r.entries.size() == 1);
  CHECK(r.entries[0].data == "one");
  CHECK(r.hard_state.promised == Ballot{1, 1});
  // The cut is durable: appending after it yields a clean log.
  REQUIRE(o.storage->save(std::nullopt, {entry(2, 1, "two")}).ok());
  PosixDisk again(dir.path.string());
  auto o2 = LogStorage::open(again, 1, 1);
  REQUIRE(o2.storage);
  CHECK(o2.storage->recovered().torn_bytes == 0);
  CHECK(o2.storage->recovered().entries.size() == 2);
}

TEST_CASE("LogStorage refuses a log damaged in the middle", "[consensus][storage]") {
  TempDir dir;
  {
    PosixDisk disk(dir.path.string());
    auto o = LogStorage::open(disk, 1, 1);
    for (uint64_t i = 1; i <= 3; ++i)
      REQUIRE(o.storage->save(std::nullopt, {entry(i, 1, "v")}).ok());
  }
  fs::path log = dir.path / "log";
  std::string bytes = read_file(log);
  bytes[20] ^= 0x01;  // inside the first record's payload; intact records follow
  write_file(log, bytes);
  PosixDisk disk(dir.path.string());
  auto o = LogStorage::open(disk, 1, 1);
  CHECK_FALSE(o.storage);
  CHECK(o.error.find("checksum mismatch with intact records after it") != std::string::npos);
}

TEST_CASE("LogStorage refuses a damaged snapshot", "[consensus][storage]") {
  TempDir dir;
  {
    PosixDisk disk(dir.path.string());
    auto o = LogStorage::open(disk, 1, 1);
    Snapshot s;
    s.index = 5;
    s.data = "state";
    REQUIRE(o.storage->save_snapshot(s).ok());
  }
  std::string bytes = read_file(dir.path / "snapshot");
  bytes.back() ^= 0x20;
  write_file(dir.path / "snapshot", bytes);
  PosixDisk disk(dir.path.string());
  auto o = LogStorage::open(disk, 1, 1);
  CHECK_FALSE(o.storage);
  CHECK(o.error.find("snapshot") != std::string::npos);
}

TEST_CASE("Snapshot, compaction and restart", "[consensus][storage]") {
  TempDir dir;
  Membership m;
  m.members = {Member{1, "a:1", true}, Member{2, "b:1", true}};
  {
    PosixDisk disk(dir.path.string());
    auto o = LogStorage::open(disk, 1, 1);
    std::vector<Entry> es;
    for (uint64_t i = 1; i <= 10; ++i) es.push_back(entry(i, 2, "v" + std::to_string(i)));
    REQUIRE(o.storage->save(HardState{Ballot{2, 1}, 10}, es).ok());
    size_t before = fs::file_size(dir.path / "log");
    REQUIRE(o.storage->save_snapshot(Snapshot{7, m, "state@7"}).ok());
    CHECK(o.storage->entry_count() == 3);
    CHECK(fs::file_size(dir.path / "log") < before);
    CHECK_FALSE(fs::exists(dir.path / "snapshot.tmp"));
    // An older snapshot never replaces a newer one.
    REQUIRE(o.storage->save_snapshot(Snapshot{3, m, "old"}).ok());
    REQUIRE(o.storage->save(std::nullopt, {entry(11, 2, "v11")}).ok());
  }
  PosixDisk disk(dir.path.string());
  auto o = LogStorage::open(disk, 1, 1);
  REQUIRE(o.storage);
  const auto& r = o.storage->recovered();
  CHECK(r.snapshot == Snapshot{7, m, "state@7"});
  REQUIRE(r.entries.size() == 4);
  CHECK(r.entries.front().index == 8);
  CHECK(r.entries.back().data == "v11");
  CHECK(r.hard_state.promised == Ballot{2, 1});
  CHECK(r.hard_state.commit == 10);
}

TEST_CASE("MemDisk loses unsynced writes on a crash, leaving a torn tail", "[consensus][storage]") {
  MemDisk disk;
  {
    auto o = LogStorage::open(disk, 1, 1);
    REQUIRE(o.storage->save(HardState{Ballot{1, 1}, 0}, {entry(1, 1, "durable")}).ok());
    disk.fail_next_sync();
    CHECK_FALSE(o.storage->save(std::nullopt, {entry(2, 1, std::string(50, 'y'))}).ok());
  }
  disk.crash(37);  // keeps 37 bytes of the unsynced record: a torn write
  auto o = LogStorage::open(disk, 1, 1);
  REQUIRE(o.storage);
  CHECK(o.storage->recovered().torn_bytes == 37);
  REQUIRE(o.storage->recovered().entries.size() == 1);
  CHECK(o.storage->recovered().entries[0].data == "durable");

  disk.wipe();
  auto fresh = LogStorage::open(disk, 1, 1);
  REQUIRE(fresh.storage);
  CHECK(fresh.storage->recovered().created);
}

TEST_CASE("CRC-32C matches the standard check value", "[consensus][storage]") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("6789", crc32c("12345")) == 0xE3069283u);
}
