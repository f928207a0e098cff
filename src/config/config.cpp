// The loader: walks the YAML tree against the schema table, then checks what no single key can
// (duplicate backends, the slot map, the lock backends' names). The first problem found is
// reported; the API never throws.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <lockstep/config/config.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <type_traits>

#include "config/schema.h"

namespace lockstep::config {
namespace {

using schema::Key;
using schema::Kind;

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string join_path(std::string_view prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : fmt::format("{}.{}", prefix, name);
}

std::string_view parent_of(std::string_view path) {
  size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : path.substr(0, dot);
}

std::string_view leaf_of(std::string_view path) {
  size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

// The names a map at `prefix` may hold, in schema order. List item rows ("backends[].x") are
// reached through their list's own row, so "backends[]" is not a name.
std::vector<std::string_view> children_of(std::string_view prefix) {
  std::vector<std::string_view> names;
  for (const Key& key : schema::keys()) {
    std::string_view rest = key.path;
    if (!prefix.empty()) {
      if (!rest.starts_with(prefix) || rest.size() <= prefix.size() || rest[prefix.size()] != '.')
        continue;
      rest.remove_prefix(prefix.size() + 1);
    }
    std::string_view name = rest.substr(0, rest.find('.'));
    if (name.ends_with("[]")) continue;
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

bool is_section(std::string_view path) {
  for (const Key& key : schema::keys()) {
    if (key.path.size() > path.size() && key.path.starts_with(path) && key.path[path.size()] == '.')
      return true;
  }
  return false;
}

// Closest candidate within edit distance 2, if any; a distance as long as the word itself is
// just a different word ("x" vs "db"), not a typo.
std::optional<std::string_view> closest(std::string_view word,
                                        const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  int best_distance = 3;
  for (std::string_view candidate : candidates) {
    int distance = schema::edit_distance(word, candidate);
    // "warning" for "warn", "max_bulk" for "max_bulk_bytes": a clipped or extended word.
    std::string a = lowercase(word), b = lowercase(candidate);
    if (std::min(a.size(), b.size()) >= 3 && (a.starts_with(b) || b.starts_with(a))) {
      distance = std::min(distance, 2);
    }
    if (distance < best_distance && distance < static_cast<int>(word.size())) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string node_kind(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "nothing";
  return fmt::format("\"{}\"", node.Scalar());
}

std::string slot_text(int from, int to) {
  return from == to ? fmt::format("slot {}", from) : fmt::format("slots {}-{}", from, to);
}

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  bool numeric = std::all_of(host.begin(), host.end(), [](char c) {
    return c == '.' || std::isdigit(static_cast<unsigned char>(c));
  });
  if (numeric) {
    // Looks like IPv4, so it must be one: "1.2.3" or "300.1.1.1" are typos, not hostnames.
    in_addr address{};
    return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1;
  }
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label) {
      // Underscores are not RFC 1123 but container runtimes hand them out as service names.
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool valid_ipv6(std::string_view host) {
  size_t percent = host.find('%');
  std::string address(host.substr(0, percent));
  if (percent != std::string_view::npos) {
    std::string_view zone = host.substr(percent + 1);
    if (zone.empty()) return false;
    for (char c : zone) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
        return false;
    }
  }
  in6_addr parsed{};
  return inet_pton(AF_INET6, address.c_str(), &parsed) == 1;
}

// yaml-cpp's messages ("end of map not found") do not say what went wrong in config terms;
// the usual culprit, an unquoted IPv6 address, is recognisable from the offending line.
std::string syntax_hint(const std::string& text, const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  std::istringstream lines(text);
  std::string line;
  for (int i = 0; i <= mark.line && std::getline(lines, line); ++i) {
  }
  size_t open = line.find(": [");
  if (open == std::string::npos || line.find("]:", open) == std::string::npos) return "";
  return " (IPv6 addresses must be quoted, as in listen: \"[::1]:6380\")";
}

// Assigns a parsed value through a row's binding when the binding reaches into T.
using Value = std::variant<int64_t, std::string, HostPort, double, std::vector<std::string>,
                           std::vector<HostPort>>;

template <class T>
void store(const Key& key, T& target, Value value) {
  std::visit(
      [&](auto fn) {
        if constexpr (std::is_invocable_v<decltype(fn), T&>) {
          auto& field = fn(target);
          using Field = std::remove_cvref_t<decltype(field)>;
          if constexpr (std::is_integral_v<Field>) {
            // The row's bounds were checked before and fit the field (a unit test asserts it).
            field = static_cast<Field>(std::get<int64_t>(value));
          } else {
            field = std::get<Field>(std::move(value));
          }
        }
      },
      key.field);
}

class Loader {
 public:
  Loader(ConfigError& error, std::string file) : error_(error), file_(std::move(file)) {}

  std::optional<Config> load(const std::string& text);

 private:
  struct Seen {
    YAML::Mark key;
    YAML::Mark value;
  };
  using SeenMap = std::map<std::string, Seen, std::less<>>;

  struct BackendMarks {
    YAML::Mark item;
    YAML::Mark name;
    YAML::Mark address;
    YAML::Mark sentinel;
    YAML::Mark durability;
    YAML::Mark read_from;
    std::vector<YAML::Mark> replicas;
    std::vector<YAML::Mark> sentinels;
  };
  struct SlotMarks {
    YAML::Mark range;
    YAML::Mark backend;
  };

  bool fail(const YAML::Mark& mark, std::string message) {
    error_.message = std::move(message);
    error_.file = file_;
    error_.line = mark.is_null() ? 0 : mark.line + 1;
    error_.column = mark.is_null() ? 0 : mark.column + 1;
    return false;
  }

  // yaml-cpp places an empty value's mark at the next token, often on a later line; the key is
  // where the reader should look.
  static YAML::Mark value_mark(const YAML::Node& key, const YAML::Node& value) {
    return value.IsNull() || value.Mark().is_null() ? key.Mark() : value.Mark();
  }

  template <class T>
  bool walk(const YAML::Node& map, std::string_view prefix, const std::string& shown, T& target,
            SeenMap& seen);
  template <class T>
  bool apply(const Key& key, const YAML::Node& name, const YAML::Node& value,
             const std::string& shown, T& target);
  bool check_required(std::string_view prefix, const std::string& shown, const SeenMap& seen,
                      const YAML::Mark& where);
  std::string unknown_key(std::string_view prefix, const std::string& shown, std::string_view name);

  bool load_backends(const YAML::Node& name, const YAML::Node& list, Config& config);
  bool load_backend(const YAML::Node& item, const YAML::Mark& where, size_t index, Config& config);
  bool check_group(const BackendConfig& backend, const BackendMarks& marks,
                   const std::string& shown);
  bool load_slots(const YAML::Node& name, const YAML::Node& list, Config& config);
  bool load_users(const YAML::Node& name, const YAML::Node& list, Config& config);
  bool check_backends(const Config& config);
  bool check_slots(const Config& config);
  bool check_users(const Config& config, const SeenMap& root);
  bool check_locks(const Config& config);
  bool load_peers(const YAML::Node& name, const YAML::Node& map, Config& config);
  bool check_cluster(const Config& config, const SeenMap& root);

  ConfigError& error_;
  std::string file_;
  std::vector<BackendMarks> backend_marks_;
  std::vector<SlotMarks> slot_marks_;
  YAML::Mark slots_mark_;
  std::vector<YAML::Mark> user_name_marks_;
  // Where each item of a kNames list was, by key path, for checks made after the whole file
  // is read (a list may name backends that are defined further down).
  std::map<std::string, std::vector<YAML::Mark>, std::less<>> name_marks_;
  // The same for kAddresses lists, by the path as shown ("backends[1].replicas"), since the
  // backend rows repeat per item.
  std::map<std::string, std::vector<YAML::Mark>, std::less<>> address_marks_;
};

std::optional<Config> Loader::load(const std::string& text) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    fail(e.mark, fmt::format("YAML syntax error: {}{}", e.msg, syntax_hint(text, e.mark)));
    return std::nullopt;
  }
  if (documents.size() > 1) {
    fail(documents[1].Mark(), "only one YAML document is allowed");
    return std::nullopt;
  }
  if (documents.empty() || documents[0].IsNull()) {
    fail(YAML::Mark::null_mark(), "the configuration is empty; at least `backends` is required");
    return std::nullopt;
  }
  const YAML::Node& root = documents[0];
  if (!root.IsMap()) {
    fail(root.Mark(),
         fmt::format("expected a map of keys at the top level, got {}", node_kind(root)));
    return std::nullopt;
  }
  Config config;
  SeenMap seen;
  if (!walk(root, "", "", config, seen) || !check_required("", "", seen, YAML::Mark::null_mark()) ||
      !check_backends(config) || !check_slots(config) || !check_users(config, seen) ||
      !check_locks(config) || !check_cluster(config, seen)) {
    return std::nullopt;
  }
  return config;
}

template <class T>
bool Loader::walk(const YAML::Node& map, std::string_view prefix, const std::string& shown,
                  T& target, SeenMap& seen) {
  for (const auto& entry : map) {
    const YAML::Node& name = entry.first;
    const YAML::Node& value = entry.second;
    if (!name.IsScalar()) {
      return fail(name.Mark().is_null() ? map.Mark() : name.Mark(),
                  fmt::format("{}: keys must be plain names, got {}",
                              shown.empty() ? "top level" : shown, node_kind(name)));
    }
    std::string path = join_path(prefix, name.Scalar());
    std::string shown_path = join_path(shown, name.Scalar());
    // Dots and brackets in a name would let "backends[].db" match a row from the wrong level.
    if (name.Scalar().find_first_of(".[]") != std::string::npos) {
      return fail(name.Mark(), unknown_key(prefix, shown_path, name.Scalar()));
    }
    if (auto it = seen.find(path); it != seen.end()) {
      return fail(name.Mark(), fmt::format("{}: duplicate key (first at line {})", shown_path,
                                           it->second.key.line + 1));
    }
    seen[path] = Seen{name.Mark(), value_mark(name, value)};

    if (const Key* key = schema::find(path)) {
      if (!apply(*key, name, value, shown_path, target)) return false;
    } else if (is_section(path)) {
      // An empty section is what commenting out all of its keys leaves behind.
      if (value.IsNull()) continue;
      if (!value.IsMap()) {
        return fail(value_mark(name, value),
                    fmt::format("{}: expected a map with keys {}, got {}", shown_path,
                                fmt::join(children_of(path), ", "), node_kind(value)));
      }
      if (!walk(value, path, shown_path, target, seen)) return false;
    } else {
      return fail(name.Mark(), unknown_key(prefix, shown_path, name.Scalar()));
    }
  }
  return true;
}

std::string Loader::unknown_key(std::string_view prefix, const std::string& shown,
                                std::string_view name) {
  std::vector<std::string_view> siblings = children_of(prefix);
  std::string_view shown_parent = parent_of(shown);
  if (name.find('.') != std::string_view::npos && schema::find(join_path(prefix, name))) {
    return fmt::format(
        "unknown key \"{}\" (sections are nested maps: write \"{}:\" and "
        "indent \"{}:\" under it)",
        shown, name.substr(0, name.find('.')), leaf_of(name));
  }
  if (auto near = closest(name, siblings)) {
    return fmt::format("unknown key \"{}\" (did you mean \"{}\"?)", shown,
                       join_path(shown_parent, *near));
  }
  // A known key at the wrong level, such as a top-level `request_ms`.
  for (const Key& key : schema::keys()) {
    if (lowercase(leaf_of(key.path)) == lowercase(name)) {
      return fmt::format("unknown key \"{}\" (did you mean \"{}\"?)", shown, key.path);
    }
  }
  return fmt::format("unknown key \"{}\"; known keys here: {}", shown, fmt::join(siblings, ", "));
}

bool Loader::check_required(std::string_view prefix, const std::string& shown, const SeenMap& seen,
                            const YAML::Mark& where) {
  for (const Key& key : schema::keys()) {
    if (!key.required || parent_of(key.path) != prefix || seen.contains(key.path)) continue;
    return fail(where, fmt::format("{}missing required key \"{}\" ({})",
                                   shown.empty() ? "" : shown + ": ", leaf_of(key.path), key.doc));
  }
  return true;
}

template <class T>
bool Loader::apply(const Key& key, const YAML::Node& name, const YAML::Node& value,
                   const std::string& shown, T& target) {
  if constexpr (std::is_same_v<T, Config>) {
    if (key.kind == Kind::kBackends) return load_backends(name, value, target);
    if (key.kind == Kind::kSlots) return load_slots(name, value, target);
    if (key.kind == Kind::kUsers) return load_users(name, value, target);
    if (key.kind == Kind::kPeers) return load_peers(name, value, target);
  }
  const YAML::Mark where = value_mark(name, value);
  if (key.kind == Kind::kNames) {
    // Null (`key:` left blank, or `~` as dump() writes it) keeps the default, as an empty
    // section does; `[]` does not, since "no backends" is a different wish from "the default".
    if (value.IsNull()) return true;
    if (!value.IsSequence()) {
      return fail(where, fmt::format("{}: expected a list of names such as [b1, b2, b3], got {}",
                                     shown, node_kind(value)));
    }
    if (static_cast<int64_t>(value.size()) < key.min) {
      return fail(where, fmt::format("{}: the list is empty; leave the key out for the default "
                                     "({})",
                                     shown, key.default_note));
    }
    std::vector<std::string> items;
    std::vector<YAML::Mark> marks;
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node item = value[i];
      const std::string shown_item = fmt::format("{}[{}]", shown, i);
      const YAML::Mark item_mark = item.IsNull() || item.Mark().is_null() ? where : item.Mark();
      if (!item.IsScalar()) {
        return fail(item_mark,
                    fmt::format("{}: expected a name, got {}", shown_item, node_kind(item)));
      }
      if (item.Scalar().empty()) {
        return fail(item_mark, fmt::format("{}: must not be empty", shown_item));
      }
      auto earlier = std::find(items.begin(), items.end(), item.Scalar());
      if (earlier != items.end()) {
        size_t j = static_cast<size_t>(earlier - items.begin());
        return fail(item_mark, fmt::format("{}: \"{}\" is listed twice ({}[{}], line {})",
                                           shown_item, item.Scalar(), shown, j, marks[j].line + 1));
      }
      items.push_back(item.Scalar());
      marks.push_back(item_mark);
    }
    name_marks_[std::string(key.path)] = std::move(marks);
    store(key, target, std::move(items));
    return true;
  }
  if (key.kind == Kind::kAddresses) {
    // Null (`replicas:` left blank) is an empty list, as `[]` is.
    std::vector<HostPort> items;
    std::vector<YAML::Mark> marks;
    if (!value.IsNull() && !value.IsSequence()) {
      return fail(where, fmt::format("{}: expected a list of host:port such as [10.0.0.2:6379, "
                                     "10.0.0.3:6379], got {}",
                                     shown, node_kind(value)));
    }
    for (size_t i = 0; !value.IsNull() && i < value.size(); ++i) {
      const YAML::Node item = value[i];
      const std::string shown_item = fmt::format("{}[{}]", shown, i);
      const YAML::Mark item_mark = item.IsNull() || item.Mark().is_null() ? where : item.Mark();
      HostPort address;
      if (!item.IsScalar() || !parse_host_port(item.Scalar(), address)) {
        return fail(item_mark, fmt::format("{}: expected host:port (IPv4, hostname or [IPv6], "
                                           "port 1..65535), got {}",
                                           shown_item, node_kind(item)));
      }
      for (size_t j = 0; j < items.size(); ++j) {
        if (items[j].str() != address.str()) continue;
        return fail(item_mark, fmt::format("{}: {} is listed twice ({}[{}], line {})", shown_item,
                                           address.str(), shown, j, marks[j].line + 1));
      }
      items.push_back(address);
      marks.push_back(item_mark);
    }
    address_marks_[shown] = std::move(marks);
    store(key, target, std::move(items));
    return true;
  }
  if (value.IsNull()) {
    return fail(where,
                fmt::format("{}: missing value; expected {}{}", shown, schema::type_text(key),
                            key.kind == Kind::kString || key.kind == Kind::kSecret
                                ? " (write \"\" for an empty one)"
                                : ""));
  }
  if (!value.IsScalar()) {
    return fail(where, fmt::format("{}: expected {}, got {}", shown, schema::type_text(key),
                                   node_kind(value)));
  }
  const std::string& text = value.Scalar();

  switch (key.kind) {
    case Kind::kInteger:
    case Kind::kBytes: {
      bool sized = key.kind == Kind::kBytes;
      std::optional<int64_t> number =
          sized ? schema::parse_bytes(text) : schema::parse_integer(text);
      if (!number) {
        return fail(where, fmt::format("{}: expected {}, got \"{}\"", shown,
                                       sized ? "a byte size such as 1048576, 512kb, 64mb or 1gb"
                                             : "an integer",
                                       text));
      }
      if (*number < key.min || *number > key.max) {
        return fail(where, fmt::format("{}: {} is out of range; expected {}", shown, text,
                                       schema::type_text(key)));
      }
      store(key, target, *number);
      return true;
    }
    case Kind::kDouble: {
      std::optional<double> number = schema::parse_real(text);
      if (!number) {
        return fail(
            where, fmt::format("{}: expected a real number such as 0.01, got \"{}\"", shown, text));
      }
      bool above = key.real.max_open ? *number >= key.real.max : *number > key.real.max;
      if (*number < key.real.min || above) {
        return fail(where, fmt::format("{}: {} is out of range; expected {}", shown, text,
                                       schema::type_text(key)));
      }
      store(key, target, *number);
      return true;
    }
    case Kind::kString:
    case Kind::kSecret:
      if (static_cast<int64_t>(text.size()) < key.min) {
        return fail(where, fmt::format("{}: must not be empty", shown));
      }
      store(key, target, text);
      return true;
    case Kind::kChoice: {
      std::vector<std::string_view> allowed = schema::choices(key);
      std::string wanted = lowercase(text);
      for (std::string_view option : allowed) {
        if (option == wanted) {
          store(key, target, std::string(option));
          return true;
        }
      }
      std::optional<std::string_view> near = closest(wanted, allowed);
      return fail(where, fmt::format("{}: unknown value \"{}\"; expected one of {}{}", shown, text,
                                     fmt::join(allowed, ", "),
                                     near ? fmt::format(" (did you mean \"{}\"?)", *near) : ""));
    }
    case Kind::kAddress: {
      HostPort address;
      if (text.empty() && key.min == 0) {  // an optional address: off
        store(key, target, address);
        return true;
      }
      if (!parse_host_port(text, address)) {
        return fail(where, fmt::format("{}: expected host:port (IPv4, hostname or [IPv6], port "
                                       "1..65535), got \"{}\"",
                                       shown, text));
      }
      store(key, target, address);
      return true;
    }
    case Kind::kSlotRange:
      if constexpr (std::is_same_v<T, SlotRange>) {
        std::string_view range = text;
        size_t dash = range.find('-', 1);
        auto trim = [](std::string_view s) {
          while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
          while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
          return s;
        };
        std::optional<int64_t> from = schema::parse_integer(trim(range.substr(0, dash)));
        std::optional<int64_t> to = dash == std::string_view::npos
                                        ? from
                                        : schema::parse_integer(trim(range.substr(dash + 1)));
        if (!from || !to) {
          return fail(where, fmt::format("{}: expected \"from-to\" or a single slot, got \"{}\"",
                                         shown, text));
        }
        for (int64_t slot : {*from, *to}) {
          if (slot < 0 || slot >= schema::kSlotCount) {
            return fail(where, fmt::format("{}: slot {} is out of range 0..{}", shown, slot,
                                           schema::kSlotCount - 1));
          }
        }
        if (*from > *to) {
          return fail(where, fmt::format("{}: \"{}\" ends before it starts", shown, text));
        }
        target.from = static_cast<int>(*from);
        target.to = static_cast<int>(*to);
        return true;
      }
      break;
    case Kind::kBackends:
    case Kind::kSlots:
    case Kind::kUsers:
    case Kind::kNames:
    case Kind::kPeers:
    case Kind::kAddresses:
      break;
  }
  // Only reachable if a row sits at a level whose struct it does not bind into.
  return fail(where, fmt::format("{}: not valid here", shown));
}

bool Loader::load_backends(const YAML::Node& name, const YAML::Node& list, Config& config) {
  const YAML::Mark where = value_mark(name, list);
  if (list.IsNull() || (list.IsSequence() && list.size() == 0)) {
    return fail(where, "backends: at least one backend is required");
  }
  if (!list.IsSequence()) {
    return fail(where, fmt::format("backends: expected a list of \"host:port\" strings or maps, "
                                   "got {}",
                                   node_kind(list)));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    // An empty item's own mark points at the next token; the list is the best anchor left.
    YAML::Mark item_mark = item.IsNull() || item.Mark().is_null() ? where : item.Mark();
    if (!load_backend(item, item_mark, i, config)) return false;
  }
  return true;
}

bool Loader::load_backend(const YAML::Node& item, const YAML::Mark& where, size_t index,
                          Config& config) {
  const std::string shown = fmt::format("backends[{}]", index);
  BackendConfig backend;
  BackendMarks marks;
  marks.item = marks.name = marks.address = marks.sentinel = marks.durability = marks.read_from =
      where;
  if (item.IsScalar()) {
    if (!parse_host_port(item.Scalar(), backend.address)) {
      return fail(where, fmt::format("{}: expected \"host:port\" (IPv4, hostname or [IPv6], "
                                     "port 1..65535), got \"{}\"",
                                     shown, item.Scalar()));
    }
  } else if (item.IsMap()) {
    SeenMap seen;
    if (!walk(item, "backends[]", shown, backend, seen)) return false;
    if (!check_required("backends[]", shown, seen, where)) return false;
    auto mark_of = [&](std::string_view path, YAML::Mark& out) {
      if (auto it = seen.find(path); it != seen.end()) out = it->second.value;
    };
    mark_of("backends[].address", marks.address);
    mark_of("backends[].name", marks.name);
    mark_of("backends[].durability", marks.durability);
    mark_of("backends[].read_from", marks.read_from);
    if (auto it = seen.find("backends[].sentinel"); it != seen.end())
      marks.sentinel = it->second.key;
    marks.replicas = address_marks_[shown + ".replicas"];
    marks.sentinels = address_marks_[shown + ".sentinel.addresses"];
    if (!backend.username.empty() && backend.password.empty()) {
      return fail(seen.at("backends[].username").value,
                  fmt::format("{}.username: needs a password too (AUTH username password)", shown));
    }
    if (!check_group(backend, marks, shown)) return false;
  } else {
    return fail(where, fmt::format("{}: expected \"host:port\" or a map with \"address\", got {}",
                                   shown, node_kind(item)));
  }
  if (backend.name.empty()) {
    backend.name = backend.sentinel.enabled() ? backend.sentinel.master : backend.address.str();
  }
  config.backends.push_back(std::move(backend));
  backend_marks_.push_back(marks);
  return true;
}

// What one backend map must satisfy on its own: a primary or a sentinel (not both), replicas
// distinct from the primary, and durability / read settings its servers can honour.
bool Loader::check_group(const BackendConfig& backend, const BackendMarks& marks,
                         const std::string& shown) {
  const SentinelConfig& sentinel = backend.sentinel;
  if (sentinel.enabled() || !sentinel.addresses.empty()) {
    if (!backend.address.host.empty() || !backend.replicas.empty()) {
      return fail(marks.sentinel,
                  fmt::format("{}: give either `sentinel` or `address`/`replicas`, not both "
                              "(Sentinel names the primary and its replicas)",
                              shown));
    }
    if (!sentinel.enabled()) {
      return fail(marks.sentinel, fmt::format("{}.sentinel.master: required with "
                                              "sentinel.addresses (the name Sentinel monitors "
                                              "the group under)",
                                              shown));
    }
    if (sentinel.addresses.empty()) {
      return fail(marks.sentinel,
                  fmt::format("{}.sentinel.addresses: list at least one sentinel (three or more "
                              "so their majority survives one failure)",
                              shown));
    }
    return true;
  }
  if (backend.address.host.empty()) {
    return fail(marks.item, fmt::format("{}: missing required key \"address\" (the primary's "
                                        "host:port), or a `sentinel` section",
                                        shown));
  }
  for (size_t i = 0; i < backend.replicas.size(); ++i) {
    if (backend.replicas[i].str() != backend.address.str()) continue;
    const YAML::Mark mark = i < marks.replicas.size() ? marks.replicas[i] : marks.item;
    return fail(mark, fmt::format("{}.replicas[{}]: {} is the primary itself (`address`); list "
                                  "only the servers that replicate from it",
                                  shown, i, backend.replicas[i].str()));
  }
  if (backend.replicas.empty()) {
    if (backend.durability == "replica") {
      return fail(marks.durability,
                  fmt::format("{}.durability: replica needs at least one server in `replicas` "
                              "(no replica could ever confirm a write)",
                              shown));
    }
    if (backend.read_from == "replica" || backend.read_from == "prefer-replica") {
      return fail(marks.read_from,
                  fmt::format("{}.read_from: {} needs at least one server in `replicas`", shown,
                              backend.read_from));
    }
  }
  return true;
}

bool Loader::check_backends(const Config& config) {
  // Every data server belongs to one group: two groups sharing a server would have it follow
  // two primaries, and Lockstep would route two backends' keys to one keyspace.
  struct Owner {
    size_t backend;
    std::string where;  // "backends[0].address", "backends[1].replicas[2]"
    YAML::Mark mark;
  };
  std::map<std::string, Owner, std::less<>> owners;
  for (size_t i = 0; i < config.backends.size(); ++i) {
    const BackendConfig& b = config.backends[i];
    const BackendMarks& marks = backend_marks_[i];
    std::vector<std::pair<std::string, Owner>> servers;
    if (!b.address.host.empty()) {
      servers.push_back(
          {b.address.str(), {i, fmt::format("backends[{}].address", i), marks.address}});
    }
    for (size_t r = 0; r < b.replicas.size(); ++r) {
      servers.push_back({b.replicas[r].str(),
                         {i, fmt::format("backends[{}].replicas[{}]", i, r),
                          r < marks.replicas.size() ? marks.replicas[r] : marks.item}});
    }
    for (const auto& [address, owner] : servers) {
      auto [it, fresh] = owners.emplace(address, owner);
      if (fresh) continue;
      const Owner& first = it->second;
      if (owner.where.ends_with(".address") && first.where.ends_with(".address")) {
        return fail(owner.mark,
                    fmt::format("backends[{}]: duplicate backend address {} (backends[{}], line "
                                "{})",
                                i, address, first.backend, first.mark.line + 1));
      }
      return fail(owner.mark,
                  fmt::format("{}: {} is already a server of backend \"{}\" ({}, line {}); a "
                              "server belongs to one group",
                              owner.where, address, config.backends[first.backend].name,
                              first.where, first.mark.line + 1));
    }
  }
  // Sentinels are separate processes: a data server listed as a sentinel is a slip.
  for (size_t i = 0; i < config.backends.size(); ++i) {
    const std::vector<HostPort>& sentinels = config.backends[i].sentinel.addresses;
    for (size_t s = 0; s < sentinels.size(); ++s) {
      auto it = owners.find(sentinels[s].str());
      if (it == owners.end()) continue;
      const std::vector<YAML::Mark>& marks = backend_marks_[i].sentinels;
      return fail(s < marks.size() ? marks[s] : backend_marks_[i].sentinel,
                  fmt::format("backends[{}].sentinel.addresses[{}]: {} is a data server ({}), "
                              "not a sentinel",
                              i, s, sentinels[s].str(), it->second.where));
    }
  }
  for (size_t i = 0; i < config.backends.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const BackendConfig& a = config.backends[j];
      const BackendConfig& b = config.backends[i];
      if (a.name == b.name) {
        return fail(backend_marks_[i].name,
                    fmt::format("backends[{}]: duplicate backend name \"{}\" (backends[{}], line "
                                "{})",
                                i, b.name, j, backend_marks_[j].name.line + 1));
      }
    }
  }
  return true;
}

bool Loader::load_slots(const YAML::Node& name, const YAML::Node& list, Config& config) {
  slots_mark_ = value_mark(name, list);
  // `slots:` with nothing under it, or `[]`, means the default even split.
  if (list.IsNull()) return true;
  if (!list.IsSequence()) {
    return fail(
        slots_mark_,
        fmt::format("slots: expected a list of {{range, backend}} maps, got {}", node_kind(list)));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string shown = fmt::format("slots[{}]", i);
    YAML::Mark where = item.IsNull() || item.Mark().is_null() ? slots_mark_ : item.Mark();
    if (!item.IsMap()) {
      return fail(where, fmt::format("{}: expected a map like {{range: \"0-5460\", backend: b1}}, "
                                     "got {}",
                                     shown, node_kind(item)));
    }
    SlotRange slot;
    SeenMap seen;
    if (!walk(item, "slots[]", shown, slot, seen) ||
        !check_required("slots[]", shown, seen, where)) {
      return false;
    }
    config.slots.push_back(std::move(slot));
    slot_marks_.push_back(
        SlotMarks{seen.at("slots[].range").value, seen.at("slots[].backend").value});
  }
  return true;
}

bool Loader::check_slots(const Config& config) {
  const std::vector<SlotRange>& slots = config.slots;
  std::vector<std::string_view> names;
  for (const BackendConfig& backend : config.backends) names.push_back(backend.name);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (std::find(names.begin(), names.end(), slots[i].backend) != names.end()) continue;
    std::optional<std::string_view> near = closest(slots[i].backend, names);
    return fail(slot_marks_[i].backend,
                fmt::format("slots[{}].backend: unknown backend \"{}\"{}", i, slots[i].backend,
                            near ? fmt::format(" (did you mean \"{}\"?)", *near)
                                 : fmt::format("; backends are {}", fmt::join(names, ", "))));
  }
  if (slots.empty()) return true;

  std::vector<size_t> order(slots.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return slots[a].from < slots[b].from; });
  int next = 0;             // first slot not yet covered, scanning in slot order
  size_t reach = order[0];  // the range that covers slots up to next - 1
  std::vector<std::string> gaps;
  int unassigned = 0;
  for (size_t index : order) {
    const SlotRange& slot = slots[index];
    if (slot.from < next) {
      // Point at whichever of the two overlapping entries comes later in the file.
      size_t later = std::max(index, reach);
      size_t earlier = std::min(index, reach);
      return fail(slot_marks_[later].range,
                  fmt::format("slots[{}].range: {} overlap {} of slots[{}] (line {})", later,
                              slot_text(slots[later].from, slots[later].to),
                              slot_text(slots[earlier].from, slots[earlier].to), earlier,
                              slot_marks_[earlier].range.line + 1));
    }
    if (slot.from > next) {
      gaps.push_back(slot_text(next, slot.from - 1));
      unassigned += slot.from - next;
    }
    next = slot.to + 1;
    reach = index;
  }
  if (next < schema::kSlotCount) {
    gaps.push_back(slot_text(next, schema::kSlotCount - 1));
    unassigned += schema::kSlotCount - next;
  }
  if (!gaps.empty()) {
    return fail(slots_mark_,
                fmt::format("slots: {} of {} slots are not assigned to any backend: {}", unassigned,
                            schema::kSlotCount, fmt::join(gaps, ", ")));
  }
  return true;
}

// User names as Redis accepts them in ACL SETUSER (no spaces or NUL), and no control
// characters either: they end up in logs.
bool valid_user_name(std::string_view name) {
  return std::none_of(name.begin(), name.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7f;
  });
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

bool Loader::load_users(const YAML::Node& name, const YAML::Node& list, Config& config) {
  const YAML::Mark where = value_mark(name, list);
  // `users:` with nothing under it, or `[]`, means no named users.
  if (list.IsNull()) return true;
  if (!list.IsSequence()) {
    return fail(where, fmt::format("users: expected a list of {{name, password, rules}} maps, "
                                   "got {}",
                                   node_kind(list)));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string shown = fmt::format("users[{}]", i);
    YAML::Mark item_mark = item.IsNull() || item.Mark().is_null() ? where : item.Mark();
    if (!item.IsMap()) {
      return fail(item_mark, fmt::format("{}: expected a map like {{name: app, password: ..., "
                                         "rules: \"on +@read ~app:*\"}}, got {}",
                                         shown, node_kind(item)));
    }
    UserConfig user;
    SeenMap seen;
    if (!walk(item, "users[]", shown, user, seen) ||
        !check_required("users[]", shown, seen, item_mark)) {
      return false;
    }
    const YAML::Mark name_mark = seen.at("users[].name").value;
    if (!valid_user_name(user.name)) {
      return fail(name_mark, fmt::format("{}.name: \"{}\" must not contain spaces or control "
                                         "characters",
                                         shown, user.name));
    }
    if (auto it = seen.find("users[].password_sha256"); it != seen.end()) {
      if (!user.password_sha256.empty() && !is_sha256_hex(user.password_sha256)) {
        return fail(it->second.value,
                    fmt::format("{}.password_sha256: expected 64 hexadecimal digits (the "
                                "SHA-256 of the password, as `sha256sum` prints it), got {} "
                                "characters",
                                shown, user.password_sha256.size()));
      }
      if (!user.password_sha256.empty() && !user.password.empty()) {
        return fail(it->second.value,
                    fmt::format("{}: give password or password_sha256, not both", shown));
      }
    }
    const YAML::Mark rules_mark = seen.at("users[].rules").value;
    user.rules_line = rules_mark.is_null() ? 0 : rules_mark.line + 1;
    user.rules_column = rules_mark.is_null() ? 0 : rules_mark.column + 1;
    config.users.push_back(std::move(user));
    user_name_marks_.push_back(name_mark);
  }
  return true;
}

bool Loader::check_users(const Config& config, const SeenMap& root) {
  for (size_t i = 0; i < config.users.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (config.users[i].name != config.users[j].name) continue;
      return fail(user_name_marks_[i],
                  fmt::format("users[{}]: duplicate user name \"{}\" (users[{}], line {})", i,
                              config.users[i].name, j, user_name_marks_[j].line + 1));
    }
    if (config.users[i].name == "default" && !config.password.empty()) {
      const YAML::Mark password_mark = root.at("password").key;
      return fail(user_name_marks_[i],
                  fmt::format("users[{}]: a user named \"default\" replaces the top-level "
                              "password (line {}); give the password to this user instead",
                              i, password_mark.line + 1));
    }
  }
  return true;
}

// Runs after all of `backends` is known, since `locks:` may come first in the file.
bool Loader::check_locks(const Config& config) {
  std::vector<std::string_view> names;
  for (const BackendConfig& backend : config.backends) names.push_back(backend.name);
  const std::vector<YAML::Mark>& marks = name_marks_["locks.backends"];
  for (size_t i = 0; i < config.locks.backends.size(); ++i) {
    const std::string& wanted = config.locks.backends[i];
    if (std::find(names.begin(), names.end(), wanted) != names.end()) continue;
    const YAML::Mark mark = i < marks.size() ? marks[i] : YAML::Mark::null_mark();
    // Addresses are the default names, so writing a named backend's address is a likely slip;
    // it is refused rather than resolved so one backend cannot appear under two spellings.
    for (const BackendConfig& backend : config.backends) {
      if (backend.address.str() != wanted) continue;
      return fail(mark, fmt::format("locks.backends[{}]: {} is the address of backend \"{}\"; "
                                    "list backends by name",
                                    i, wanted, backend.name));
    }
    std::optional<std::string_view> near = closest(wanted, names);
    return fail(mark, fmt::format("locks.backends[{}]: unknown backend \"{}\"{}", i, wanted,
                                  near ? fmt::format(" (did you mean \"{}\"?)", *near)
                                       : fmt::format("; backends are {}", fmt::join(names, ", "))));
  }
  return true;
}

bool Loader::load_peers(const YAML::Node& name, const YAML::Node& map, Config& config) {
  const YAML::Mark where = value_mark(name, map);
  if (map.IsNull()) return true;
  if (!map.IsMap()) {
    return fail(where, fmt::format("cluster.peers: expected a map of replica id to host:port such "
                                   "as {{1: 127.0.0.1:16380, 2: 127.0.0.1:16381}}, got {}",
                                   node_kind(map)));
  }
  for (const auto& entry : map) {
    const YAML::Node& id = entry.first;
    const YAML::Node& address = entry.second;
    const YAML::Mark mark = id.Mark().is_null() ? where : id.Mark();
    std::optional<int64_t> number =
        id.IsScalar() ? schema::parse_integer(id.Scalar()) : std::nullopt;
    if (!number || *number < 1 || *number > 1000000000) {
      return fail(mark, fmt::format("cluster.peers: replica ids are integers 1..1000000000, got "
                                    "\"{}\"",
                                    id.IsScalar() ? id.Scalar() : node_kind(id)));
    }
    if (config.cluster.peers.contains(*number)) {
      return fail(mark, fmt::format("cluster.peers: replica {} is listed twice", *number));
    }
    HostPort hp;
    if (!address.IsScalar() || !parse_host_port(address.Scalar(), hp)) {
      return fail(value_mark(id, address),
                  fmt::format("cluster.peers.{}: expected host:port, got \"{}\"", *number,
                              address.IsScalar() ? address.Scalar() : node_kind(address)));
    }
    config.cluster.peers[*number] = hp;
  }
  return true;
}

bool Loader::check_cluster(const Config& config, const SeenMap& root) {
  const ClusterConfig& c = config.cluster;
  auto mark = [&](const char* path) {
    auto it = root.find(path);
    if (it != root.end()) return it->second.value;
    it = root.find("cluster");
    return it != root.end() ? it->second.key : YAML::Mark::null_mark();
  };
  if (!c.enabled()) {
    if (!c.peers.empty() || !c.listen.host.empty() || !c.data_dir.empty()) {
      return fail(mark("cluster.id"),
                  "cluster: the cluster section needs cluster.id (this "
                  "replica's id, as listed in cluster.peers)");
    }
    return true;
  }
  if (c.listen.host.empty())
    return fail(mark("cluster.id"), "cluster.listen: required with cluster.id (peer traffic)");
  if (c.data_dir.empty())
    return fail(mark("cluster.id"), "cluster.data_dir: required with cluster.id");
  if (!c.peers.contains(c.id)) {
    return fail(mark("cluster.peers"),
                fmt::format("cluster.peers: must list this replica (cluster.id {})", c.id));
  }
  if (c.peers.size() > 1 && c.secret.empty()) {
    return fail(mark("cluster.secret"),
                "cluster.secret: required with more than one peer (it authenticates peer traffic)");
  }
  if (c.election_timeout_ms <= c.heartbeat_ms) {
    return fail(mark("cluster.election_timeout_ms"),
                "cluster.election_timeout_ms: must be longer than cluster.heartbeat_ms");
  }
  if (c.heartbeat_ms < c.tick_ms) {
    return fail(mark("cluster.heartbeat_ms"),
                "cluster.heartbeat_ms: must be at least cluster.tick_ms");
  }
  return true;
}

}  // namespace

std::string HostPort::str() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

bool parse_host_port(const std::string& text, HostPort& out) {
  std::string_view view = text;
  std::string_view host;
  std::string_view port;
  if (view.starts_with('[')) {
    size_t close = view.find(']');
    if (close == std::string_view::npos || close + 1 >= view.size() || view[close + 1] != ':')
      return false;
    host = view.substr(1, close - 1);
    port = view.substr(close + 2);
    if (!valid_ipv6(host)) return false;
  } else {
    size_t colon = view.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = view.substr(0, colon);
    port = view.substr(colon + 1);
    // An unbracketed IPv6 address is ambiguous ("::1:6379"), so it is refused.
    if (host.find(':') != std::string_view::npos || !valid_hostname(host)) return false;
  }
  if (port.empty() || port.size() > 5 || port.front() == '-') return false;
  std::optional<int64_t> number = schema::parse_integer(port);
  if (!number || *number < 1 || *number > 65535) return false;
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(*number);
  return true;
}

std::vector<HostPort> BackendConfig::servers() const {
  std::vector<HostPort> out;
  if (!address.host.empty()) out.push_back(address);
  out.insert(out.end(), replicas.begin(), replicas.end());
  return out;
}

const std::string& Config::effective_read_from(const BackendConfig& backend) const {
  static const std::string kPrimary = "primary";
  const std::string& wanted = backend.read_from == "default" ? read_from : backend.read_from;
  // A group of one has nowhere else to read from.
  if (backend.replicas.empty() && !backend.sentinel.enabled()) return kPrimary;
  return wanted;
}

int Config::effective_read_max_lag_ms(const BackendConfig& backend) const {
  return backend.read_max_lag_ms < 0 ? read_max_lag_ms : backend.read_max_lag_ms;
}

int Config::effective_workers() const {
  if (workers > 0) return workers;
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

std::string ConfigError::format() const {
  const std::string& name = file.empty() ? std::string("<config>") : file;
  if (line <= 0) return fmt::format("{}: {}", name, message);
  if (column <= 0) return fmt::format("{}:{}: {}", name, line, message);
  return fmt::format("{}:{}:{}: {}", name, line, column, message);
}

std::optional<Config> parse_string(const std::string& yaml, ConfigError& error,
                                   const std::string& file_name) {
  error = ConfigError{};
  try {
    return Loader(error, file_name).load(yaml);
  } catch (const std::exception& e) {
    // yaml-cpp can throw on conversions the loader does not expect, and allocation can fail.
    error = ConfigError{fmt::format("internal error while loading: {}", e.what()), file_name};
    return std::nullopt;
  }
}

std::optional<Config> load_file(const std::string& path, ConfigError& error) {
  error = ConfigError{};
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = ConfigError{fmt::format("cannot open: {}", std::strerror(errno)), path};
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad() || text.bad()) {
    error = ConfigError{fmt::format("cannot read: {}", std::strerror(errno)), path};
    return std::nullopt;
  }
  return parse_string(text.str(), error, path);
}

namespace {

// Writes one list item's keys (the "prefix[]." rows) as a block map under "  - ".
// A nested section inside an item ("backends[].sentinel") is written as an indented block map.
template <class T>
void dump_items(std::string& out, std::string_view prefix, std::vector<T> items) {
  for (T& item : items) {
    bool first = true;
    std::string_view section = prefix;
    for (const Key& key : schema::keys()) {
      if (!key.path.starts_with(prefix) || key.path.size() <= prefix.size() ||
          key.path[prefix.size()] != '.') {
        continue;
      }
      std::optional<std::string> value = schema::render(key, item);
      if (!value) continue;
      std::string_view parent = parent_of(key.path);
      bool nested = parent != prefix;
      if (nested && parent != section) out += fmt::format("    {}:\n", leaf_of(parent));
      section = parent;
      std::string_view indent = first ? "  - " : nested ? "      " : "    ";
      out += fmt::format("{}{}: {}\n", indent, leaf_of(key.path), *value);
      first = false;
    }
  }
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string dump(const Config& config) {
  Config copy = config;  // bindings hand out mutable references
  std::string out = "# Effective Lockstep configuration; secrets are shown as <redacted>.\n";
  std::string_view section;
  for (const Key& key : schema::keys()) {
    if (key.path.find("[]") != std::string_view::npos) continue;
    std::string_view parent = parent_of(key.path);
    if (parent != section) {
      if (!parent.empty()) out += fmt::format("{}:\n", parent);
      section = parent;
    }
    std::string indent(parent.empty() ? 0 : 2, ' ');
    std::string_view name = leaf_of(key.path);
    if (key.kind == Kind::kBackends) {
      out += fmt::format("{}{}:{}\n", indent, name, copy.backends.empty() ? " []" : "");
      dump_items(out, "backends[]", copy.backends);
    } else if (key.kind == Kind::kSlots) {
      out += fmt::format("{}{}:{}\n", indent, name, copy.slots.empty() ? " []  # even split" : "");
      dump_items(out, "slots[]", copy.slots);
    } else if (key.kind == Kind::kUsers) {
      out += fmt::format("{}{}:{}\n", indent, name, copy.users.empty() ? " []" : "");
      dump_items(out, "users[]", copy.users);
    } else if (key.kind == Kind::kPeers) {
      std::string items;
      for (const auto& [id, hp] : copy.cluster.peers)
        items += fmt::format("{}{}: {}", items.empty() ? "" : ", ", id, schema::quote(hp.str()));
      out += fmt::format("{}{}: {{{}}}\n", indent, name, items);
    } else if (std::optional<std::string> value = schema::render(key, copy)) {
      // A null list is the default; the note says which, since "~" alone reads as "none".
      bool note = key.kind == Kind::kNames && *value == "~" && !key.default_note.empty();
      out += fmt::format("{}{}: {}{}\n", indent, name, *value,
                         note ? fmt::format("  # {}", key.default_note) : "");
    }
  }
  return out;
}

std::string set_scalar(Config& config, const std::string& path, const std::string& value,
                       std::string* normalized) {
  const Key* key = schema::find(path);
  if (key == nullptr || path.find('[') != std::string::npos ||
      std::holds_alternative<std::monostate>(key->field)) {
    return fmt::format("unknown configuration key '{}'", path);
  }
  // The value goes through the real loader, in a document holding just this key (and the one
  // required key), so every rule of the schema applies exactly as in a file.
  std::string doc = "backends: [\"127.0.0.1:1\"]\n";
  std::string shown = schema::quote(value);
  if (key->kind == Kind::kNames) {
    // A list of backend names, written "a,b,c" ("" = the default). The document defines
    // backends of those names so the loader's own checks pass; whether they exist where the
    // value is used is for the caller to check (the replicated backends, say).
    std::vector<std::string> items;
    for (size_t pos = 0; pos < value.size();) {
      size_t comma = value.find(',', pos);
      if (comma == std::string::npos) comma = value.size();
      std::string item = value.substr(pos, comma - pos);
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      items.push_back(std::move(item));
      pos = comma + 1;
    }
    if (value.empty()) {
      shown = "~";
    } else {
      doc = "backends:\n";
      std::vector<std::string> quoted;
      for (size_t i = 0; i < items.size(); ++i) {
        doc += fmt::format("  - {{name: {}, address: \"127.0.0.1:{}\"}}\n", schema::quote(items[i]),
                           i + 1);
        quoted.push_back(schema::quote(items[i]));
      }
      shown = fmt::format("[{}]", fmt::join(quoted, ", "));
    }
  }
  std::string_view parent = parent_of(path);
  if (parent.empty()) {
    doc += fmt::format("{}: {}\n", path, shown);
  } else {
    doc += fmt::format("{}:\n  {}: {}\n", parent, leaf_of(path), shown);
  }
  ConfigError error;
  std::optional<Config> parsed = parse_string(doc, error, "<value>");
  if (!parsed) return error.message;
  std::visit(
      [&](auto fn) {
        if constexpr (std::is_invocable_v<decltype(fn), Config&>) fn(config) = fn(*parsed);
      },
      key->field);
  if (normalized) *normalized = get_scalar(config, path).value_or(value);
  return {};
}

std::optional<std::string> get_scalar(const Config& config, const std::string& path) {
  const Key* key = schema::find(path);
  if (key == nullptr || std::holds_alternative<std::monostate>(key->field)) return std::nullopt;
  Config copy = config;
  std::optional<std::string> text;
  std::visit(
      [&](auto fn) {
        if constexpr (std::is_invocable_v<decltype(fn), Config&>) {
          const auto& field = fn(copy);
          using Field = std::remove_cvref_t<decltype(field)>;
          if constexpr (std::is_same_v<Field, std::string>) {
            text = field;
          } else if constexpr (std::is_same_v<Field, HostPort>) {
            text = field.host.empty() ? "" : field.str();
          } else if constexpr (std::is_same_v<Field, double>) {
            text = schema::format_real(field);
          } else if constexpr (std::is_integral_v<Field>) {
            text = key->kind == Kind::kBytes ? schema::format_bytes(field) : std::to_string(field);
          } else {
            text = fmt::format("{}", fmt::join(field, ","));
          }
        }
      },
      key->field);
  return text;
}

std::string reference_markdown() {
  std::string out = "| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n";
  for (const Key& key : schema::keys()) {
    std::string shown_default = !key.default_note.empty() ? std::string(key.default_note)
                                : key.required            ? std::string("(required)")
                                               : fmt::format("`{}`", schema::default_text(key));
    out += fmt::format("| `{}` | {} | {} | {} |\n", key.path, markdown_cell(schema::type_text(key)),
                       markdown_cell(shown_default), markdown_cell(key.doc));
  }
  return out;
}

}  // namespace lockstep::config
