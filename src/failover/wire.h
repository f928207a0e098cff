// Little-endian fixed-width writer and a bounds-checked reader for the failover values'
// encodings (group_state, health_report, config_lease). The same layout as the consensus
// encodings (src/consensus/wire.h, private to that subsystem): integers fixed-width
// little-endian, strings length-prefixed. A reader fails, and keeps failing, on the first
// short or hostile input; decoders check done() at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep::failover::wire {

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void i64(int64_t v) { put(static_cast<uint64_t>(v), 8); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  void put(uint64_t v, int n) {
    char b[8];
    for (int i = 0; i < n; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_.append(b, static_cast<size_t>(n));
  }
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint8_t u8() { return need(1) ? static_cast<uint8_t>(in_[pos_++]) : 0; }
  uint32_t u32() { return static_cast<uint32_t>(get(4)); }
  uint64_t u64() { return get(8); }
  int64_t i64() { return static_cast<int64_t>(get(8)); }
  std::string str() {
    uint32_t n = u32();
    if (!need(n)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A count of items each at least `min_item_bytes` long: a count the rest of the input cannot
  // hold fails, so a hostile count cannot make a decoder reserve gigabytes.
  uint32_t count(size_t min_item_bytes) {
    uint32_t n = u32();
    if (ok_ && min_item_bytes > 0 && n > (in_.size() - pos_) / min_item_bytes) ok_ = false;
    return ok_ ? n : 0;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }
  void fail() { ok_ = false; }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  uint64_t get(int n) {
    if (!need(static_cast<size_t>(n))) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(in_[pos_ + i])} << (8 * i);
    pos_ += static_cast<size_t>(n);
    return v;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace lockstep::failover::wire
