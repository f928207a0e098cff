// A backend added at runtime (LOCKSTEP BACKEND ADD ... CREDENTIALS <ref>) that requires AUTH:
// only the reference is replicated, each replica resolves it from its environment (or its
// YAML), and the secret never appears in the log on disk or in BACKEND LIST.
#include <fmt/format.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("cluster: a backend added at runtime is reached with credentials resolved locally",
          "[integration][issue6][cluster]") {
  RedisServer plain;
  RedisOptions secured_options;
  secured_options.password = "vault-pw-123";
  RedisServer secured(secured_options);
  // Lockstep inherits the test's environment.
  REQUIRE(setenv("LOCKSTEP_CREDENTIALS_VAULT_1", "vault-pw-123", 1) == 0);
  // A one-replica cluster, so the replicated log is on disk where the test can read it.
  TempDir data;
  LockstepOptions lo;
  const uint16_t peer = free_port();
  lo.extra_yaml = fmt::format(
      "cluster:\n  id: 1\n  listen: 127.0.0.1:{}\n  data_dir: {}\n  secret: test-secret\n"
      "  peers: {{1: 127.0.0.1:{}}}\n",
      peer, data.file("node"), peer);
  LockstepProcess proxy({plain.address()}, lo);
  unsetenv("LOCKSTEP_CREDENTIALS_VAULT_1");
  Client c = proxy.client();

  Reply bad =
      lockstep_admin(c, {"BACKEND", "ADD", "x", secured.address(), "CREDENTIALS", "no spaces"});
  CHECK(bad.error_starts_with("ERR"));
  REQUIRE(
      lockstep_admin(c, {"BACKEND", "ADD", "vault", secured.address(), "CREDENTIALS", "vault-1"})
          .is_ok());
  Reply list = lockstep_admin(c, {"BACKEND", "LIST"});
  INFO("BACKEND LIST: " << list);
  bool listed = false;
  for (const auto& e : list.elements) {
    CHECK(e.str.find("vault-pw-123") == std::string::npos);
    if (e.str.starts_with("vault "))
      listed = e.str.find("credentials=vault-1") != std::string::npos;
  }
  CHECK(listed);

  // Move the slot of one key to the secured backend (it is empty) and use it.
  const std::string key = "creds:key";
  const int slot = slot_of(key);
  REQUIRE(
      lockstep_admin(c, {"SLOTS", "ASSIGN", fmt::format("{}-{}", slot, slot), "vault"}).is_ok());
  Reply set;
  CHECK(wait_until(
      [&] {
        set = c("SET", key, "v1");
        return set.is_ok();
      },
      5s, 20ms));
  INFO("SET through the secured backend: " << set);
  CHECK(c("GET", key).str == "v1");
  Client direct = secured.client();
  REQUIRE(direct("AUTH", "vault-pw-123").is_ok());
  CHECK(direct("GET", key).str == "v1");  // it really landed there
  // Nothing the replica wrote to its data dir (log, snapshots) holds the secret; the reference
  // is there.
  std::string on_disk;
  for (const auto& f : std::filesystem::recursive_directory_iterator(data.path()))
    if (f.is_regular_file()) on_disk += read_file(f.path().string());
  CHECK(on_disk.find("vault-1") != std::string::npos);
  CHECK(on_disk.find("vault-pw-123") == std::string::npos);
}
