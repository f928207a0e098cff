// Backends that survive their own failure: replica groups, health checks, failover decided once
// through the Paxos log, planned switchovers, and read routing over replicas.
//
// WHAT IT GUARANTEES
//  - A group's primary changes only by a committed log entry (GroupChange::set_primary, a
//    compare-and-set on the group's generation), so every Lockstep replica routes a backend to
//    the same primary from the same log position, and two leaders cannot fail a group over
//    twice for one fault.
//  - A primary is failed over only when a majority of Lockstep replicas see it down for
//    failover.down_after_ms; a replica cut off from a healthy primary triggers nothing. The new
//    primary is the reachable replica of the failed one with the highest replication offset. A
//    group fails over at most once per failover.min_interval_ms.
//  - No write is acknowledged by a demoted primary after its successor was promoted: Lockstep
//    replicas write only under a configuration lease, and a failover is carried out only after
//    every lease that could still be valid has run out (config_lease.h has the argument).
//  - Carrying out a committed change is idempotent and restartable: a new leader re-derives the
//    missing REPLICAOF steps from what the servers say (group_reconciler.h). The old primary is
//    made a replica of the new one when it returns, and gets no request before.
//  - A planned switchover loses no acknowledged write and pauses writes only around the switch
//    (switchover.h).
//
// HOW DATA FLOWS (one box per core; the driver, in src/server, does every I/O)
//
//   every replica, every health.interval_ms         the leader, every health.interval_ms
//   ---------------------------------------         ------------------------------------
//   PING + INFO replication  -> ServerHealth  --report (health_report.h)-->  FailoverDecider
//     (parse_replication_info)   ReplicationLag                                  | decision
//   ServerHealth + lag -> ReadSelector (reads)                                   v
//   ConfigLease rounds <-> peers (writes allowed?)        propose GroupChange through Paxos
//                                                                                | applied
//   applied GroupChange -> ReplicationGroups (every replica: routing table)      v
//                                                         GroupReconciler (REPLICAOF steps,
//   LOCKSTEP FAILOVER -> Switchover (leader)                after the lease wait)
//   Sentinel groups -> SentinelFollower (leader) -> propose set_primary
//
// WHAT IT DELIBERATELY DOES NOT DO
//  No sockets, timers or clocks: every core takes time as an argument and returns commands.
//  No Redis Cluster support, no chained replication topologies of its own (every replica follows
//  the primary directly), no automatic re-adding of a removed server. Durability (`WAIT 1`
//  batched behind pipelined writes) is the data plane's: this subsystem only says which server
//  is the primary and whether writes are allowed.
//
// WIRING (the libuv driver, in src/server once it is restructured)
//  Health: one control connection per server per Lockstep replica (not per worker). Every
//   health.interval_ms send PING and INFO replication; feed ServerHealth::on_reply/on_failure/
//   on_info with the send time, and the primary's master_repl_offset to that group's
//   ReplicationLag (reset() it when the group's primary changes). Workers report connection
//   failures and replies on live traffic to the same ServerHealth (through the loop's queue).
//   Every interval build a HealthReport (make_view for every server) and send it to the leader;
//   the leader calls FailoverDecider::on_report for it and for its own.
//  Lease: every ConfigLease::renew_interval() broadcast start_round() to the voters; answer
//   requests with ConfigLease::answer(request, self, accepted fence index); feed acks. Keep
//   set_voters / set_applied_index current from the consensus driver. A write is sent to a
//   primary only while valid(now), and its reply (and WAIT reply) is passed to the client only
//   if valid(now) still holds when it arrives; otherwise the client gets refusal(now). Reads are
//   not fenced.
//  Leader: every interval call FailoverDecider::evaluate(groups, now); propose decision->change(
//   wall ms) for each kDecided, on_proposal_failed when refused or timed out; log kNoCandidate /
//   kAllDown details once per change of verdict. For each group keep a GroupReconciler:
//   set_target(group, ConfigLease::promotion_not_before(applied_at, lease_ms, members)) when a
//   change is applied, feed it the leader's own INFO replies and reachability, send poll()'s
//   commands on the control connection (log each `why`), and feed on_reply. On
//   kCandidateBehind call FailoverDecider::redirect and propose its result. Run reconcilers only
//   while leader and lease-valid; skip a group whose Switchover owns_group().
//  Routing (every replica): writes go to ReplicationGroups' primary once its ServerHealth info
//   says role primary (until then, and on -READONLY from it during a switch, hold the write
//   until request_ms and retry); reads go where ReadSelector::pick says, with candidates built
//   from the group's servers (replicating = role replica, master == primary, link up;
//   staleness from ReplicationLag). When a change is applied, FailoverDecider::
//   on_primary_changed(backend, generation, now, wall_now - changed_at_ms) on every replica (so
//   a future leader knows the rate limit), and lock backends whose primary changed go to
//   quarantine (a promoted replica may lack the last grants).
//  LOCKSTEP FAILOVER <backend> [TO <addr>]: the leader builds a Switchover with the lease wait
//   (promotion_not_before(0, lease_ms, members)), sends its commands on control connections,
//   proposes its decision, and answers the client from state()/error()/pause_ms().
//
// WIRING (the consensus log; src/consensus is not changed by this subsystem)
//  ConfigStateMachine embeds a ReplicationGroups value and one new ConfigCommand kind,
//  kGroupChange, whose `value` holds encode_change(change). apply() decodes it
//  (decode_change; undecodable = "ERR undecodable replica group change") and returns
//  ReplicationGroups::apply's text: that is the apply-time validation (unknown backend, server
//  in two groups, stale generation, removing the primary ...), the same on every replica. The
//  snapshot appends ReplicationGroups::encode() and restore() decodes it. kAddBackend /
//  kRemoveBackend also define / remove the group (the seed from the file: GroupChange::define
//  with address and replicas). PaxosCore's acceptors report, in lease acks, the highest log
//  index they accepted of a fence entry: a kMembership entry, or a kCommand whose
//  ConfigCommand is kGroupChange with GroupChange::is_fence(); at restart, at least the
//  snapshot index.
#pragma once

#include "lockstep/failover/config_lease.h"
#include "lockstep/failover/failover_decider.h"
#include "lockstep/failover/group_reconciler.h"
#include "lockstep/failover/health_report.h"
#include "lockstep/failover/read_selector.h"
#include "lockstep/failover/replication_groups.h"
#include "lockstep/failover/replication_info.h"
#include "lockstep/failover/replication_lag.h"
#include "lockstep/failover/sentinel_follower.h"
#include "lockstep/failover/server_health.h"
#include "lockstep/failover/switchover.h"
#include "lockstep/failover/types.h"
