// The file operations LogStorage needs, behind an interface so that tests can swap the disk:
// PosixDisk works on a real directory (fdatasync, write-temp + fsync + rename + fsync dir);
// MemDisk keeps files in memory and, on crash(), loses whatever was not synced (keeping a
// random prefix of the unsynced tail, which is how a torn write looks after a power cut).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace lockstep::consensus {

// An I/O outcome: empty error means success.
struct IoStatus {
  std::string error;
  bool ok() const { return error.empty(); }
  static IoStatus fail(std::string e) { return IoStatus{std::move(e)}; }
};

class Disk {
 public:
  virtual ~Disk() = default;
  // The whole file into `out`, or out = nullopt when it does not exist.
  virtual IoStatus read(const std::string& name, std::optional<std::string>& out) = 0;
  // Appends (creating the file); not durable until sync().
  virtual IoStatus append(const std::string& name, std::string_view bytes) = 0;
  // Makes every append to `name` durable (fdatasync).
  virtual IoStatus sync(const std::string& name) = 0;
  // Cuts the file to `size` bytes, durably.
  virtual IoStatus truncate(const std::string& name, uint64_t size) = 0;
  // Replaces the file's contents atomically and durably (temp, fsync, rename, fsync dir).
  virtual IoStatus replace(const std::string& name, std::string_view bytes) = 0;
};

// Files in one directory, created if missing.
class PosixDisk final : public Disk {
 public:
  explicit PosixDisk(std::string dir);
  ~PosixDisk() override;
  PosixDisk(const PosixDisk&) = delete;
  PosixDisk& operator=(const PosixDisk&) = delete;

  IoStatus read(const std::string& name, std::optional<std::string>& out) override;
  IoStatus append(const std::string& name, std::string_view bytes) override;
  IoStatus sync(const std::string& name) override;
  IoStatus truncate(const std::string& name, uint64_t size) override;
  IoStatus replace(const std::string& name, std::string_view bytes) override;

 private:
  class Fd;
  IoStatus open_for_append(const std::string& name, int& fd);
  void close_cached(const std::string& name);
  IoStatus sync_dir();
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
  std::map<std::string, std::unique_ptr<Fd>> append_fds_;
};

// In-memory files for tests and the simulation.
class MemDisk final : public Disk {
 public:
  IoStatus read(const std::string& name, std::optional<std::string>& out) override;
  IoStatus append(const std::string& name, std::string_view bytes) override;
  IoStatus sync(const std::string& name) override;
  IoStatus truncate(const std::string& name, uint64_t size) override;
  IoStatus replace(const std::string& name, std::string_view bytes) override;

  // Power cut: every file falls back to its synced contents plus a prefix of its unsynced
  // tail whose length is picked from `random` (0 keeps nothing unsynced).
  void crash(uint64_t random);
  // The disk is lost: every file is gone.
  void wipe() { files_.clear(); }
  // The next sync() fails without making anything durable (the process then "crashes").
  void fail_next_sync() { fail_sync_ = true; }
  // Test hooks: raw access to the current contents.
  std::string* file(const std::string& name);
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  struct File {
    std::string durable;
    std::string current;
  };
  std::map<std::string, File> files_;
  uint64_t bytes_written_ = 0;
  bool fail_sync_ = false;
};

// CRC-32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start).
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);

}  // namespace lockstep::consensus
