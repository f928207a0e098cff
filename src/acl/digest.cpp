// Password digests: SHA-256 as Redis stores ACL passwords, via OpenSSL's EVP interface.
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdlib>

#include "lockstep/acl/acl.h"

namespace lockstep::acl {

Digest sha256(std::string_view text) {
  Digest out{};
  unsigned int size = 0;
  // EVP_Digest fails only when OpenSSL cannot allocate. No digest is a safe stand-in (a made-up
  // one could match a stored one), so stop as on any other allocation failure.
  if (EVP_Digest(text.data(), text.size(), out.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != out.size()) {
    std::abort();
  }
  return out;
}

std::optional<Digest> parse_sha256_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Digest out{};
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::string to_hex(const Digest& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (unsigned char byte : digest) {
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xf];
  }
  return out;
}

}  // namespace lockstep::acl
