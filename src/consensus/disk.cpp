// PosixDisk, MemDisk and CRC-32C; see disk.h.
//
// CRC-32C is written out here (a 1 KiB table, bitwise-generated at first use) rather than
// taken from zlib: zlib only has the IEEE polynomial, and this keeps the consensus library
// free of a new package dependency. Castagnoli detects more error patterns in short records.
#include "lockstep/consensus/disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace lockstep::consensus {

// ---- CRC-32C --------------------------------------------------------------------------------

namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t crc32c(std::string_view bytes, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (char ch : bytes) crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

// ---- PosixDisk ------------------------------------------------------------------------------

class PosixDisk::Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

namespace {

IoStatus errno_status(const std::string& what, const std::string& path) {
  return IoStatus::fail(what + " " + path + ": " + std::strerror(errno));
}

IoStatus write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("write", path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

PosixDisk::PosixDisk(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);  // a failure shows up on the first access
}

PosixDisk::~PosixDisk() = default;

void PosixDisk::close_cached(const std::string& name) {
  append_fds_.erase(name);
}

IoStatus PosixDisk::open_for_append(const std::string& name, int& fd) {
  auto it = append_fds_.find(name);
  if (it == append_fds_.end()) {
    int raw = ::open(path(name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (raw < 0) return errno_status("open", path(name));
    it = append_fds_.emplace(name, std::make_unique<Fd>(raw)).first;
  }
  fd = it->second->get();
  return {};
}

IoStatus PosixDisk::read(const std::string& name, std::optional<std::string>& out) {
  out.reset();
  int raw = ::open(path(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return {};
    return errno_status("open", path(name));
  }
  Fd fd(raw);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("read", path(name));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  out = std::move(data);
  return {};
}

IoStatus PosixDisk::append(const std::string& name, std::string_view bytes) {
  int fd = -1;
  if (auto s = open_for_append(name, fd); !s.ok()) return s;
  return write_all(fd, bytes, path(name));
}

IoStatus PosixDisk::sync(const std::string& name) {
  int fd = -1;
  if (auto s = open_for_append(name, fd); !s.ok()) return s;
  if (::fdatasync(fd) != 0) return errno_status("fdatasync", path(name));
  return {};
}

IoStatus PosixDisk::truncate(const std::string& name, uint64_t size) {
  close_cached(name);
  int raw = ::open(path(name).c_str(), O_WRONLY | O_CLOEXEC);
  if (raw < 0) return errno_status("open", path(name));
  Fd fd(raw);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    return errno_status("ftruncate", path(name));
  if (::fdatasync(fd.get()) != 0) return errno_status("fdatasync", path(name));
  return {};
}

IoStatus PosixDisk::sync_dir() {
  int raw = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (raw < 0) return errno_status("open", dir_);
  Fd fd(raw);
  if (::fsync(fd.get()) != 0) return errno_status("fsync", dir_);
  return {};
}

IoStatus PosixDisk::replace(const std::string& name, std::string_view bytes) {
  close_cached(name);
  std::string tmp = path(name) + ".tmp";
  {
    int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (raw < 0) return errno_status("open", tmp);
    Fd fd(raw);
    if (auto s = write_all(fd.get(), bytes, tmp); !s.ok()) return s;
    if (::fsync(fd.get()) != 0) return errno_status("fsync", tmp);
  }
  if (::rename(tmp.c_str(), path(name).c_str()) != 0) return errno_status("rename", tmp);
  return sync_dir();
}

// ---- MemDisk --------------------------------------------------------------------------------

IoStatus MemDisk::read(const std::string& name, std::optional<std::string>& out) {
  auto it = files_.find(name);
  if (it == files_.end())
    out.reset();
  else
    out = it->second.current;
  return {};
}

IoStatus MemDisk::append(const std::string& name, std::string_view bytes) {
  files_[name].current.append(bytes);
  bytes_written_ += bytes.size();
  return {};
}

IoStatus MemDisk::sync(const std::string& name) {
  if (fail_sync_) {
    fail_sync_ = false;
    return IoStatus::fail("simulated power cut before fdatasync of " + name);
  }
  auto& f = files_[name];
  f.durable = f.current;
  return {};
}

IoStatus MemDisk::truncate(const std::string& name, uint64_t size) {
  auto& f = files_[name];
  if (size < f.current.size()) f.current.resize(size);
  f.durable = f.current;
  return {};
}

IoStatus MemDisk::replace(const std::string& name, std::string_view bytes) {
  auto& f = files_[name];
  f.current.assign(bytes);
  f.durable = f.current;
  bytes_written_ += bytes.size();
  return {};
}

void MemDisk::crash(uint64_t random) {
  for (auto& [name, f] : files_) {
    std::string kept = f.durable;
    if (f.current.size() > f.durable.size() &&
        f.current.compare(0, f.durable.size(), f.durable) == 0) {
      size_t tail = f.current.size() - f.durable.size();
      size_t keep = static_cast<size_t>(random % (tail + 1));
      kept.append(f.current, f.durable.size(), keep);
    }
    f.durable = kept;
    f.current = std::move(kept);
  }
}

std::string* MemDisk::file(const std::string& name) {
  auto it = files_.find(name);
  return it == files_.end() ? nullptr : &it->second.current;
}

}  // namespace lockstep::consensus
