// Hash slots as Redis Cluster defines them (CRC16-XMODEM of the key, or of its {hash tag},
// modulo 16384) and the map from slot to backend. A SlotMap is immutable once built; a new
// configuration builds a new one, and requests in flight keep the one they started with.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::proxy {

constexpr int kSlotCount = 16384;

uint16_t crc16(const char* data, size_t len);
// The slot of a key: only the part between the first '{' and the next '}' is hashed when that
// part is non-empty (Redis Cluster's hash-tag rule).
uint16_t key_slot(std::string_view key);

struct SlotRangeIdx {
  int from;
  int to;
  int backend;
};

class SlotMap {
 public:
  // Backend i owns [i*16384/n, (i+1)*16384/n - 1]: contiguous, even, deterministic.
  static SlotMap even(int backends);
  // Every slot must be covered exactly once; returns nullopt (and a reason) otherwise.
  static std::optional<SlotMap> from_ranges(const std::vector<SlotRangeIdx>& ranges, int backends,
                                            std::string& error);

  int owner(uint16_t slot) const { return owner_[slot]; }
  int owner_of_key(std::string_view key) const { return owner_[key_slot(key)]; }
  int backends() const { return backends_; }
  // The contiguous ranges, for INFO and CLUSTER-like introspection.
  std::vector<SlotRangeIdx> ranges() const;
  bool operator==(const SlotMap&) const = default;

 private:
  std::array<uint16_t, kSlotCount> owner_{};
  int backends_ = 0;
};

}  // namespace lockstep::proxy
