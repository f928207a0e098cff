// Following Redis Sentinel's choice of primary for a Sentinel-managed group
// (`backends[].sentinel`): Lockstep never promotes such a group itself.
//
// The leader asks every configured sentinel `SENTINEL GET-MASTER-ADDR-BY-NAME <master>` at
// start, every refresh interval, and whenever any sentinel publishes `+switch-master` for the
// master (the driver subscribes to that channel on each sentinel). The primary is the address a
// majority of the configured sentinels name in their latest answers. A `+switch-master` message
// is only a reason to ask again, never the answer itself: a sentinel that was down during a
// failover republishes an old switch when it comes back (redis/redis#12798, where Jedis
// followed such a message to the old master), and a majority of current answers outvotes it.
// When the agreed primary differs from the replicated one, the leader commits
// GroupChange::set_primary for it (the group is `sentinel`, so apply() accepts a server it did
// not list); every Lockstep replica then switches at the same log position, and the lease rule
// applies as for Lockstep's own failovers. Before routing writes to it, the data plane waits for
// the server's own INFO to say role master, since Sentinel announces the switch as it sends
// REPLICAOF NO ONE.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/failover/types.h"

namespace lockstep::failover {

// The master name and new address in a `+switch-master` payload ("<name> <old-ip> <old-port>
// <new-ip> <new-port>"), or nullopt if it is not one.
struct SwitchMaster {
  std::string master;
  std::string old_address;
  std::string new_address;
};
std::optional<SwitchMaster> parse_switch_master(std::string_view payload);

class SentinelFollower {
 public:
  SentinelFollower(std::string master, std::vector<std::string> sentinels);

  // One query per sentinel.
  std::vector<ServerCommand> queries() const;
  // A sentinel's answer: the address it names, or nullopt for a nil reply (it does not know the
  // master).
  void on_answer(const std::string& sentinel, std::optional<std::string> address);
  // No usable answer: the sentinel's previous answer no longer counts.
  void on_failure(const std::string& sentinel);
  // A message on a sentinel's +switch-master channel: true when it concerns this master (query
  // every sentinel again).
  bool on_switch_message(std::string_view payload) const;

  // The address a majority of the configured sentinels agree on, if any.
  std::optional<std::string> agreed_primary() const;
  const std::string& master() const { return master_; }

 private:
  std::string master_;
  std::vector<std::string> sentinels_;
  std::map<std::string, std::string> answers_;  // sentinel -> named address
};

}  // namespace lockstep::failover
