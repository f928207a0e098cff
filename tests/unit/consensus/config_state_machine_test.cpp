// ConfigStateMachine: commands, errors, epochs, encodings, snapshot/restore.
#include <catch2/catch.hpp>

#include "lockstep/consensus/codec.h"
#include "lockstep/consensus/config_state_machine.h"

using namespace lockstep::consensus;

TEST_CASE("Config commands change the state and bump the epoch", "[consensus][config_sm]") {
  ConfigStateMachine sm;
  CHECK(sm.epoch() == 0);
  CHECK(sm.apply(ConfigCommand::add_backend("b1", "10.0.0.1:6379", "secret/b1")).ok());
  CHECK(sm.apply(ConfigCommand::add_backend("b2", "10.0.0.2:6379")).ok());
  CHECK(sm.epoch() == 2);
  CHECK(sm.apply(ConfigCommand::assign_slots(0, 16383, "b1")).ok());
  CHECK(sm.apply(ConfigCommand::assign_slots(100, 199, "b2")).ok());
  auto ranges = sm.slot_ranges();
  REQUIRE(ranges.size() == 3);
  CHECK(ranges[0] == SlotRange{0, 99, "b1"});
  CHECK(ranges[1] == SlotRange{100, 199, "b2"});
  CHECK(ranges[2] == SlotRange{200, 16383, "b1"});
  CHECK(*sm.slot_owner(150) == "b2");
  CHECK(*sm.slot_owner(16383) == "b1");
  // Giving the range back merges the neighbours again.
  CHECK(sm.apply(ConfigCommand::assign_slots(100, 199, "b1")).ok());
  CHECK(sm.slot_ranges().size() == 1);

  CHECK(sm.apply(ConfigCommand::set_setting("locks.drift_factor", "0.01")).ok());
  CHECK(sm.setting("locks.drift_factor") == "0.01");
  CHECK(sm.apply(ConfigCommand::set_backend_state("b2", BackendState::kDraining)).ok());
  CHECK(sm.backends().at("b2").state == BackendState::kDraining);
  CHECK(sm.backends().at("b1").credentials_ref == "secret/b1");
  CHECK(sm.apply(ConfigCommand::remove_backend("b2")).ok());
  CHECK(sm.epoch() == 8);
}

TEST_CASE("Invalid config commands are refused without changing anything",
          "[consensus][config_sm]") {
  ConfigStateMachine sm;
  REQUIRE(sm.apply(ConfigCommand::add_backend("b1", "h:1")).ok());
  REQUIRE(sm.apply(ConfigCommand::assign_slots(0, 10, "b1")).ok());
  std::string before = sm.snapshot();
  CHECK(sm.apply(ConfigCommand::add_backend("b1", "h:2")).error ==
        "ERR backend 'b1' already exists");
  CHECK(sm.apply(ConfigCommand::remove_backend("nope")).error == "ERR unknown backend 'nope'");
  CHECK(sm.apply(ConfigCommand::remove_backend("b1")).error ==
        "ERR backend 'b1' still owns slots 0-10; assign them to another backend first");
  CHECK(sm.apply(ConfigCommand::assign_slots(5, 16384, "b1"))
            .error.rfind("ERR invalid slot range 5-16384", 0) == 0);
  CHECK(
      sm.apply(ConfigCommand::assign_slots(9, 3, "b1")).error.rfind("ERR invalid slot range", 0) ==
      0);
  CHECK(sm.apply(ConfigCommand::assign_slots(0, 3, "ghost")).error ==
        "ERR unknown backend 'ghost'");
  CHECK(sm.apply(ConfigCommand::bump_incarnation(4)).error == "ERR no replica 4");
  sm.set_validator([](std::string_view path, std::string_view value) -> std::string {
    if (path == "timeouts.request_ms" && value == "0")
      return "ERR timeouts.request_ms: must be >= 1";
    return {};
  });
  CHECK(sm.apply(ConfigCommand::set_setting("timeouts.request_ms", "0")).error ==
        "ERR timeouts.request_ms: must be >= 1");
  CHECK(sm.snapshot() == before);
  CHECK(sm.apply(ConfigCommand::set_setting("timeouts.request_ms", "5")).ok());
}

TEST_CASE("Membership entries set the replicas and keep incarnations", "[consensus][config_sm]") {
  ConfigStateMachine sm;
  Membership m;
  m.members = {Member{1, "a:1", true}, Member{2, "b:1", false}};
  Entry e;
  e.type = EntryType::kMembership;
  e.data = encode_membership(m);
  CHECK(sm.apply_entry(e).ok());
  CHECK(sm.apply(ConfigCommand::bump_incarnation(2)).ok());
  m.members[1].voter = true;
  e.data = encode_membership(m);
  CHECK(sm.apply_entry(e).ok());
  CHECK(sm.replicas().at(2) == ReplicaInfo{"b:1", true, 1});
  CHECK(sm.epoch() == 3);
  Entry noop;
  CHECK(sm.apply_entry(noop).ok());
  CHECK(sm.epoch() == 3);
  Entry junk;
  junk.type = EntryType::kCommand;
  junk.data = "\x09garbage";
  CHECK_FALSE(sm.apply_entry(junk).ok());
}

TEST_CASE("Commands and snapshots round-trip through bytes", "[consensus][config_sm]") {
  ConfigCommand c = ConfigCommand::assign_slots(3, 77, "b9");
  CHECK(decode_command(encode_command(c)) == c);
  CHECK_FALSE(decode_command("").has_value());
  std::string bytes = encode_command(c);
  CHECK_FALSE(decode_command(bytes.substr(0, bytes.size() - 1)).has_value());

  ConfigStateMachine sm;
  REQUIRE(sm.apply(ConfigCommand::add_backend("b1", "h:1", "cred")).ok());
  REQUIRE(sm.apply(ConfigCommand::assign_slots(0, 8000, "b1")).ok());
  REQUIRE(sm.apply(ConfigCommand::set_setting("a.b", "c")).ok());
  Membership m;
  m.members = {Member{3, "x:1", true}};
  sm.apply_membership(m);
  ConfigStateMachine copy;
  REQUIRE(copy.restore(sm.snapshot()));
  CHECK(copy.snapshot() == sm.snapshot());
  CHECK(copy.epoch() == sm.epoch());
  CHECK(*copy.slot_owner(8000) == "b1");
  CHECK(copy.slot_owner(8001) == nullptr);
  std::string snap = sm.snapshot();
  CHECK_FALSE(copy.restore(snap.substr(0, snap.size() - 3)));
  CHECK(copy.snapshot() == snap);  // a failed restore leaves the state alone
  CHECK(copy.restore(""));
  CHECK(copy.epoch() == 0);
}
