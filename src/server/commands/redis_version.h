// The Redis version Lockstep speaks (HELLO, INFO): its command table is Redis 7.0's.
#pragma once

#include <string_view>

namespace lockstep::server {

inline constexpr std::string_view kRedisVersion = "7.0.0";

}  // namespace lockstep::server
