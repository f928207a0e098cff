// Byte encodings of the consensus values, for the log file and for peer messages. Integers
// are fixed-width little-endian, strings and lists are length-prefixed. Decoders check every
// length against the input and return nullopt on anything malformed (a peer's bytes are never
// trusted); they never throw.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lockstep/consensus/types.h"

namespace lockstep::consensus {

std::string encode_entry(const Entry& e);
std::optional<Entry> decode_entry(std::string_view bytes);

std::string encode_membership(const Membership& m);
std::optional<Membership> decode_membership(std::string_view bytes);

std::string encode_snapshot(const Snapshot& s);
std::optional<Snapshot> decode_snapshot(std::string_view bytes);

std::string encode_hard_state(const HardState& h);
std::optional<HardState> decode_hard_state(std::string_view bytes);

std::string encode_message(const Message& m);
std::optional<Message> decode_message(std::string_view bytes);

}  // namespace lockstep::consensus
