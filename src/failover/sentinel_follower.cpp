#include "lockstep/failover/sentinel_follower.h"

#include <algorithm>
#include <charconv>

namespace lockstep::failover {
namespace {

std::optional<std::string> address_of(std::string_view ip, std::string_view port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ip.empty() || ec != std::errc{} || end != port.data() + port.size() || value < 1 ||
      value > 65535)
    return std::nullopt;
  return server_address(ip, static_cast<uint16_t>(value));
}

}  // namespace

std::optional<SwitchMaster> parse_switch_master(std::string_view payload) {
  std::vector<std::string_view> words;
  while (!payload.empty()) {
    size_t space = payload.find(' ');
    std::string_view word = payload.substr(0, space);
    if (!word.empty()) words.push_back(word);
    payload = space == std::string_view::npos ? std::string_view{} : payload.substr(space + 1);
  }
  if (words.size() != 5) return std::nullopt;
  std::optional<std::string> old_address = address_of(words[1], words[2]);
  std::optional<std::string> new_address = address_of(words[3], words[4]);
  if (!old_address || !new_address) return std::nullopt;
  return SwitchMaster{std::string(words[0]), *old_address, *new_address};
}

SentinelFollower::SentinelFollower(std::string master, std::vector<std::string> sentinels)
    : master_(std::move(master)), sentinels_(std::move(sentinels)) {}

std::vector<ServerCommand> SentinelFollower::queries() const {
  std::vector<ServerCommand> out;
  for (const std::string& s : sentinels_) {
    out.push_back({s, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_}});
  }
  return out;
}

void SentinelFollower::on_answer(const std::string& sentinel, std::optional<std::string> address) {
  if (std::find(sentinels_.begin(), sentinels_.end(), sentinel) == sentinels_.end()) return;
  if (address) {
    answers_[sentinel] = std::move(*address);
  } else {
    answers_.erase(sentinel);
  }
}

void SentinelFollower::on_failure(const std::string& sentinel) {
  answers_.erase(sentinel);
}

bool SentinelFollower::on_switch_message(std::string_view payload) const {
  std::optional<SwitchMaster> message = parse_switch_master(payload);
  return message && message->master == master_;
}

std::optional<std::string> SentinelFollower::agreed_primary() const {
  std::map<std::string_view, size_t> votes;
  for (const auto& [sentinel, address] : answers_) ++votes[address];
  for (const auto& [address, count] : votes) {
    if (count >= sentinels_.size() / 2 + 1) return std::string(address);
  }
  return std::nullopt;
}

}  // namespace lockstep::failover
