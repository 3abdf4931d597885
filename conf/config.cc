// NodeGate configuration loader: libconfig++ text -> validated ng::conf::Config.
//
// Shape: libconfig parses the text into a tree; a Cursor walks that tree knowing the
// setting path ("services.[0].ports.[1].node_port") and line of where it stands, and
// reads typed values with range checks. Each section reader checks its group's allowed
// keys, fills the struct from config.h (absent optional settings keep the defaults
// declared there) and does the cross-checks that need more than one setting.
//
// Errors: the first problem found wins and is returned as "FILE:LINE: PATH: what".
// Readers report and return nullopt; after a problem the walk still finishes (it only
// reads, and every libconfig access is type-checked first, so libconfig never throws),
// but later problems are dropped because they are usually consequences of the first.

#include "conf/config.h"

#include <libconfig.h++>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <concepts>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

namespace ng::conf {

// ---------------------------------------------------------------------------------------
// Address helpers

namespace {

// Unsigned decimal without sign or leading zeros ("010" is rejected rather than guessed
// as octal or decimal), at most `max`.
std::optional<uint32_t> parseDecimal(std::string_view text, uint32_t max) noexcept {
  if (text.empty() || text.size() > 10 || (text.size() > 1 && text.front() == '0')) {
    return std::nullopt;
  }
  uint32_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value > max) return std::nullopt;
  return value;
}

}  // namespace

std::optional<uint32_t> parseIpv4(std::string_view text) noexcept {
  const auto address = IpAddress::parse(text);
  if (!address || !address->isV4()) return std::nullopt;
  return address->v4();
}

std::optional<Ipv4Prefix> parseIpv4Prefix(std::string_view text) noexcept {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto address = parseIpv4(text.substr(0, slash));
  const auto length = parseDecimal(text.substr(slash + 1), 32);
  if (!address || !length) return std::nullopt;
  return Ipv4Prefix{.address = *address, .length = static_cast<uint8_t>(*length)};
}

std::string formatIpv4(uint32_t address) {
  std::string text;
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (!text.empty()) text += '.';
    text += std::to_string((address >> shift) & 0xff);
  }
  return text;
}

bool isLoopbackListen(std::string_view listen) noexcept {
  const size_t colon = listen.rfind(':');
  const std::string_view host = listen.substr(0, colon == std::string_view::npos ? 0 : colon);
  if (host == "localhost" || host == "[::1]") return true;
  const auto address = parseIpv4(host);
  return address && (*address >> 24) == 127;
}

std::optional<Mac> parseMac(std::string_view text) noexcept {
  // Exactly "hh:hh:hh:hh:hh:hh", either case.
  if (text.size() != 17) return std::nullopt;
  Mac mac{};
  for (size_t i = 0; i < mac.size(); ++i) {
    const char* first = text.data() + i * 3;
    if (i > 0 && first[-1] != ':') return std::nullopt;
    auto [ptr, ec] = std::from_chars(first, first + 2, mac[i], 16);
    if (ec != std::errc{} || ptr != first + 2) return std::nullopt;
  }
  return mac;
}

std::vector<IpAddress> SnatConfig::of(IpFamily family) const {
  std::vector<IpAddress> out;
  for (const IpAddress& a : addresses) {
    if (a.family() == family) out.push_back(a);
  }
  return out;
}

std::optional<IpAddress> NodeConfig::address(IpFamily family) const {
  for (const IpAddress& a : addresses) {
    if (a.family() == family) return a;
  }
  return std::nullopt;
}

std::string formatEndpoint(const IpAddress& address, uint16_t port) {
  const std::string host = address.isV6() ? "[" + address.str() + "]" : address.str();
  return host + ":" + std::to_string(port);
}

const PortConfig* Config::port(PortRole role) const noexcept {
  for (const PortConfig& port : dataplane.ports) {
    if (port.role == role) return &port;
  }
  return nullptr;
}

namespace {

using libconfig::Setting;

constexpr unsigned kMaxWorkerLcore = 127;  // DPDK's default RTE_MAX_LCORE is 128
// Worker ids travel in one byte and the SNAT port space is split between workers
// (lb::ReplySteering::kMaxWorkers).
constexpr size_t kMaxWorkers = 64;
constexpr uint16_t kMinMtu = 68;           // RFC 791: every IPv4 link carries 68 bytes
constexpr uint16_t kMaxMtu = 9000;
constexpr uint32_t kMaxFlowCapacity = 1u << 28;
// The floor of the derived IPv6 capacity too: a smaller explicit table would be smaller
// than the one an operator gets by saying nothing.
constexpr uint32_t kMinFlow6Capacity = 1024;
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

uint32_t prefixMask(uint8_t length) {
  return length == 0 ? 0 : ~uint32_t{0} << (32 - length);
}

std::string formatPrefix(const Ipv4Prefix& prefix) {
  return formatIpv4(prefix.address) + "/" + std::to_string(prefix.length);
}

// ---------------------------------------------------------------------------------------
// Problems: the first error, formatted.

class Problems {
 public:
  explicit Problems(std::string_view source) : source_(source) {}

  // `line` 0 (the root group has no line) is shown as line 1. An empty `path` (libconfig
  // syntax errors, which name no setting) is left out.
  void report(unsigned line, std::string_view path, std::string_view what) {
    if (first_) return;
    std::string message = source_ + ":" + std::to_string(line == 0 ? 1 : line) + ": ";
    if (!path.empty()) message += std::string(path) + ": ";
    first_ = ConfigError{.message = message + std::string(what)};
  }
  [[nodiscard]] bool any() const noexcept { return first_.has_value(); }
  [[nodiscard]] ConfigError take() { return std::move(*first_); }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }

 private:
  std::string source_;
  std::optional<ConfigError> first_;
};

// ---------------------------------------------------------------------------------------
// Text preparation

bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '*'; }
bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '*';
}
bool isDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }

// True when an integer literal fits libconfig 1.5's 32-bit int without wrapping.
bool fitsInt32(std::string_view digits, int base, bool negative) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (ec != std::errc{}) return false;  // beyond 64 bits
  if (base == 16) return value <= 0x7fff'ffffu;
  return value <= (negative ? 0x8000'0000u : 0x7fff'ffffu);
}

// Why this pass exists: libconfig 1.5 (Debian 12) stores an integer literal without an
// 'L' suffix in a 32-bit int even when it does not fit, so "capacity = 4294967297;"
// would load as 1 and pass every range check. Marking such literals 64-bit ('L') lets
// the range checks see the real value. Only 'L' is inserted, so line numbers stay right.
// The pass knows just enough of the lexical grammar (comments, strings, names, floats)
// to touch nothing else. It also refuses @include: included files would bypass it.
std::optional<std::string> prepareText(std::string_view text, Problems& problems) {
  std::string out;
  out.reserve(text.size() + 16);
  unsigned line = 1;
  size_t i = 0;
  const size_t n = text.size();
  auto copyUntil = [&](size_t end) {
    for (; i < end && i < n; ++i) {
      if (text[i] == '\n') ++line;
      out += text[i];
    }
  };
  while (i < n) {
    const char c = text[i];
    const char next = i + 1 < n ? text[i + 1] : '\0';
    if (c == '\0') {
      problems.report(line, "", "contains a NUL byte");
      return std::nullopt;
    }
    if (c == '#' || (c == '/' && next == '/')) {
      copyUntil(text.find('\n', i));
    } else if (c == '/' && next == '*') {
      const size_t close = text.find("*/", i + 2);
      copyUntil(close == std::string_view::npos ? n : close + 2);
    } else if (c == '"') {
      size_t end = i + 1;
      while (end < n && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
      copyUntil(end + 1);
    } else if (c == '@' && text.substr(i).starts_with("@include")) {
      problems.report(line, "@include",
                      "includes are not supported; keep the configuration in one file");
      return std::nullopt;
    } else if (isNameStart(c)) {
      size_t end = i;
      while (end < n && isNameChar(text[end])) ++end;
      copyUntil(end);
    } else if (isDigit(c) || (c == '.' && isDigit(next))) {
      // A number. Floats ("1.5", ".5", "1e9") are copied untouched.
      const bool hex = c == '0' && (next == 'x' || next == 'X');
      size_t end = hex ? i + 2 : i;
      while (end < n && (hex ? std::isxdigit(static_cast<unsigned char>(text[end]))
                             : isDigit(text[end]))) {
        ++end;
      }
      const bool is_float = !hex && end < n && (text[end] == '.' || text[end] == 'e' ||
                                                 text[end] == 'E' || c == '.');
      if (is_float) {
        while (end < n && (isDigit(text[end]) || text[end] == '.' || text[end] == 'e' ||
                           text[end] == 'E' ||
                           ((text[end] == '+' || text[end] == '-') &&
                            (text[end - 1] == 'e' || text[end - 1] == 'E')))) {
          ++end;
        }
        copyUntil(end);
        continue;
      }
      const std::string_view digits = text.substr(hex ? i + 2 : i, end - (hex ? i + 2 : i));
      const bool negative = i > 0 && text[i - 1] == '-';
      const bool suffixed = end < n && text[end] == 'L';
      copyUntil(end);
      if (!suffixed && !fitsInt32(digits, hex ? 16 : 10, negative)) out += 'L';
    } else {
      copyUntil(i + 1);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Cursor: one setting, its path and line, typed readers.

enum class Need { kOptional, kRequired };

std::string_view typeName(Setting::Type type) {
  switch (type) {
    case Setting::TypeInt:
    case Setting::TypeInt64: return "an integer";
    case Setting::TypeFloat: return "a float";
    case Setting::TypeString: return "a string";
    case Setting::TypeBoolean: return "a boolean";
    case Setting::TypeGroup: return "a group";
    case Setting::TypeArray: return "an array";
    case Setting::TypeList: return "a list";
    case Setting::TypeNone: break;
  }
  return "nothing";
}

template <typename E>
using Choices = std::initializer_list<std::pair<std::string_view, E>>;

class Cursor {
 public:
  Cursor(const Setting& setting, std::string path, Problems& problems)
      : setting_(&setting), path_(std::move(path)), problems_(&problems) {}

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] unsigned line() const { return setting_->getSourceLine(); }
  [[nodiscard]] bool failed() const noexcept { return problems_->any(); }
  void fail(std::string_view what) const { problems_->report(line(), path_, what); }

  // --- This setting as a value. Each reports here and returns nullopt on a problem.

  [[nodiscard]] std::optional<std::string> asString() const {
    if (!expect(Setting::TypeString, "a string")) return std::nullopt;
    return std::string(setting_->c_str());
  }

  [[nodiscard]] std::optional<std::string> asNonEmptyString() const {
    auto text = asString();
    if (text && text->empty()) {
      fail("must not be empty");
      return std::nullopt;
    }
    return text;
  }

  [[nodiscard]] std::optional<bool> asBool() const {
    if (!expect(Setting::TypeBoolean, "a boolean (true or false)")) return std::nullopt;
    return static_cast<bool>(*setting_);
  }

  // Accepts libconfig int and int64 ("5" and "5L") alike.
  [[nodiscard]] std::optional<int64_t> asInteger(int64_t lo, int64_t hi) const {
    int64_t value = 0;
    if (setting_->getType() == Setting::TypeInt) {
      value = static_cast<int>(*setting_);
    } else if (setting_->getType() == Setting::TypeInt64) {
      value = static_cast<long long>(*setting_);
    } else {
      expect(Setting::TypeInt, "an integer");
      return std::nullopt;
    }
    const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    if (value == std::numeric_limits<int64_t>::max() ||
        value == std::numeric_limits<int64_t>::min()) {
      fail("integer is too large; allowed range is " + range);  // libconfig saturated
      return std::nullopt;
    }
    if (value < lo || value > hi) {
      fail(std::to_string(value) + " is outside " + range);
      return std::nullopt;
    }
    return value;
  }

  template <std::unsigned_integral T>
  [[nodiscard]] std::optional<T> asUint(T lo, T hi) const {
    const auto value = asInteger(lo, hi);
    if (!value) return std::nullopt;
    return static_cast<T>(*value);
  }

  // A unicast host address: every address setting names a host (node, VIP, gateway,
  // SNAT source), and the box never forwards to or from martians.
  [[nodiscard]] std::optional<uint32_t> asIpv4() const {
    auto text = asString();
    if (!text) return std::nullopt;
    auto address = parseIpv4(*text);
    if (!address) {
      fail(quoted(*text) + " is not an IPv4 address (a.b.c.d)");
    } else if (const uint8_t top = *address >> 24; top == 0 || top == 127 || top >= 224) {
      fail(quoted(*text) + " is not a unicast host address (0/8, 127/8 and 224/3 are reserved)");
      return std::nullopt;
    }
    return address;
  }

  // A unicast host address of either family (the same rule for IPv6: no multicast,
  // unspecified, loopback, IPv4-mapped or link-local address).
  [[nodiscard]] std::optional<IpAddress> asIp() const {
    auto text = asString();
    if (!text) return std::nullopt;
    // Without a colon it can only be meant as IPv4: asIpv4's messages say what is wrong.
    if (text->find(':') == std::string::npos) return asIpv4().transform([](uint32_t v4) { return IpAddress(v4); });
    auto address = IpAddress::parse(*text);
    if (!address) {
      fail(quoted(*text) + " is not an IPv6 address (e.g. fd00::1; no zone, no brackets)");
      return std::nullopt;
    }
    if (!address->isUnicastHost()) {
      fail(quoted(*text) + " is not a unicast host address (multicast, unspecified, loopback, "
           "IPv4-mapped and link-local fe80::/10 addresses are refused)");
      return std::nullopt;
    }
    return address;
  }

  // An IPv6 prefix ("fd00::1/64"); host bits allowed (a port's own address).
  [[nodiscard]] std::optional<IpPrefix> asIpv6Prefix() const {
    auto text = asString();
    if (!text) return std::nullopt;
    auto prefix = IpPrefix::parse(*text);
    if (!prefix || !prefix->address.isV6()) {
      fail(quoted(*text) + " is not an IPv6 prefix (e.g. fd00:100::1/64)");
      return std::nullopt;
    }
    return prefix;
  }

  // A prefix of either family, host bits allowed (readNetwork refuses them).
  [[nodiscard]] std::optional<IpPrefix> asIpPrefix() const {
    auto text = asString();
    if (!text) return std::nullopt;
    auto prefix = IpPrefix::parse(*text);
    if (!prefix) fail(quoted(*text) + " is not an IP prefix (a.b.c.d/len or an IPv6 prefix such as fd00::/64)");
    return prefix;
  }

  [[nodiscard]] std::optional<Ipv4Prefix> asPrefix() const {
    auto text = asString();
    if (!text) return std::nullopt;
    auto prefix = parseIpv4Prefix(*text);
    if (!prefix) fail(quoted(*text) + " is not an IPv4 prefix (a.b.c.d/len)");
    return prefix;
  }

  [[nodiscard]] std::optional<Mac> asMac() const {
    auto text = asString();
    if (!text) return std::nullopt;
    auto mac = parseMac(*text);
    if (!mac) fail(quoted(*text) + " is not a MAC address (aa:bb:cc:dd:ee:ff)");
    return mac;
  }

  template <typename E>
  [[nodiscard]] std::optional<E> asChoice(Choices<E> choices) const {
    auto text = asString();
    if (!text) return std::nullopt;
    std::string names;
    for (const auto& [name, value] : choices) {
      if (name == *text) return value;
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    fail(quoted(*text) + " is not one of " + names);
    return std::nullopt;
  }

  // --- This setting as an aggregate.

  // Checks that this is a group whose members all appear in `keys`.
  bool expectGroup(std::initializer_list<std::string_view> keys) const {
    if (!expect(Setting::TypeGroup, "a group { ... }")) return false;
    for (int i = 0; i < setting_->getLength(); ++i) {
      const std::string_view name = (*setting_)[i].getName();
      if (std::ranges::find(keys, name) == keys.end()) {
        child((*setting_)[i], name).fail("unknown setting " + quoted(name));
        return false;
      }
    }
    return true;
  }

  // The elements of an array [ ... ] or list ( ... ), paths "this.[i]".
  [[nodiscard]] std::optional<std::vector<Cursor>> elements() const {
    if (!setting_->isArray() && !setting_->isList()) {
      fail("expected a list ( ... ) or an array [ ... ], got " +
           std::string(typeName(setting_->getType())));
      return std::nullopt;
    }
    std::vector<Cursor> items;
    for (int i = 0; i < setting_->getLength(); ++i) {
      items.emplace_back((*setting_)[i], path_ + ".[" + std::to_string(i) + "]", *problems_);
    }
    return items;
  }

  // Member `key` of this group; a missing required member is reported at this group.
  [[nodiscard]] std::optional<Cursor> member(std::string_view key, Need need) const {
    const std::string name(key);
    if (!setting_->exists(name)) {
      if (need == Need::kRequired) {
        problems_->report(line(), join(key), "required setting is missing");
      }
      return std::nullopt;
    }
    return child((*setting_)[name.c_str()], key);
  }

  [[nodiscard]] std::optional<Cursor> group(std::string_view key, Need need,
                                            std::initializer_list<std::string_view> keys) const {
    auto found = member(key, need);
    if (found && !found->expectGroup(keys)) return std::nullopt;
    return found;
  }

  [[nodiscard]] std::optional<std::vector<Cursor>> elements(std::string_view key,
                                                            Need need) const {
    auto found = member(key, need);
    if (!found) return std::nullopt;
    return found->elements();
  }

  // Reads member `key` with `reader` (a Cursor -> optional<T> function) into `out`.
  // An absent optional member leaves `out` alone, so it keeps its config.h default.
  template <typename T, typename Reader>
  bool read(std::string_view key, Need need, T& out, Reader&& reader) const {
    auto found = member(key, need);
    if (!found) return false;
    auto value = std::invoke(reader, *found);
    if (!value) return false;
    out = std::move(*value);
    return true;
  }

  // Same for an array or list of values; a present setting replaces the default.
  template <typename T, typename Reader>
  bool readEach(std::string_view key, Need need, std::vector<T>& out, Reader&& reader) const {
    auto items = elements(key, need);
    if (!items) return false;
    std::vector<T> values;
    for (const Cursor& item : *items) {
      auto value = std::invoke(reader, item);
      if (!value) return false;
      values.push_back(std::move(*value));
    }
    out = std::move(values);
    return true;
  }

  // Shorthands for the common cases.
  bool requiredString(std::string_view key, std::string& out) const {
    return read(key, Need::kRequired, out, &Cursor::asNonEmptyString);
  }
  bool optionalString(std::string_view key, std::string& out) const {
    return read(key, Need::kOptional, out, &Cursor::asString);
  }
  template <std::unsigned_integral T>
  bool requiredUint(std::string_view key, T& out, T lo, T hi) const {
    return read(key, Need::kRequired, out, [&](const Cursor& c) { return c.asUint(lo, hi); });
  }
  template <std::unsigned_integral T>
  bool optionalUint(std::string_view key, T& out, T lo, T hi) const {
    return read(key, Need::kOptional, out, [&](const Cursor& c) { return c.asUint(lo, hi); });
  }

 private:
  [[nodiscard]] std::string join(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  [[nodiscard]] Cursor child(const Setting& setting, std::string_view key) const {
    return Cursor(setting, join(key), *problems_);
  }
  bool expect(Setting::Type type, std::string_view wanted) const {
    const Setting::Type actual = setting_->getType();
    const bool integer = type == Setting::TypeInt &&
                         (actual == Setting::TypeInt || actual == Setting::TypeInt64);
    if (actual == type || integer) return true;
    fail("expected " + std::string(wanted) + ", got " + std::string(typeName(actual)));
    return false;
  }

  const Setting* setting_;
  std::string path_;
  Problems* problems_;
};

// ---------------------------------------------------------------------------------------
// Readers for the schema's own value kinds.

std::optional<Mode> readMode(const Cursor& c) {
  return c.asChoice<Mode>({{"fullnat", Mode::kFullNat}, {"tunnel", Mode::kTunnel}});
}

// Linux interface names: 1..15 bytes (IFNAMSIZ - 1), no '/', ':' or whitespace, not
// "." or "..".
constexpr size_t kMaxInterfaceName = 15;

bool isInterfaceName(std::string_view name) {
  const bool bad_char = std::ranges::any_of(name, [](char ch) {
    return ch == '/' || ch == ':' || !std::isgraph(static_cast<unsigned char>(ch));
  });
  return !name.empty() && name.size() <= kMaxInterfaceName && !bad_char && name != "." && name != "..";
}

std::string interfaceNameRule(std::string_view name) {
  return quoted(name) + " is not a Linux interface name (1..15 characters, no '/', ':' or spaces)";
}

std::optional<std::string> readInterfaceName(const Cursor& c) {
  auto text = c.asNonEmptyString();
  if (!text) return std::nullopt;
  if (!isInterfaceName(*text)) {
    c.fail(interfaceNameRule(*text));
    return std::nullopt;
  }
  return text;
}

std::optional<PortRole> readRole(const Cursor& c) {
  return c.asChoice<PortRole>(
      {{"external", PortRole::kExternal}, {"internal", PortRole::kInternal}});
}

std::optional<Protocol> readProtocol(const Cursor& c) {
  auto text = c.asString();
  if (!text) return std::nullopt;
  if (*text == "TCP") return Protocol::kTcp;
  if (*text == "UDP") return Protocol::kUdp;
  c.fail("protocol " + quoted(*text) + " is not supported; use TCP or UDP");
  return std::nullopt;
}

std::optional<TrafficPolicy> readTrafficPolicy(const Cursor& c) {
  return c.asChoice<TrafficPolicy>(
      {{"Cluster", TrafficPolicy::kCluster}, {"Local", TrafficPolicy::kLocal}});
}

// "host:port": host is an IPv4 address, a DNS name or a bracketed IPv6 address.
std::optional<std::string> readListen(const Cursor& c) {
  auto text = c.asString();
  if (!text) return std::nullopt;
  const std::string_view value = *text;
  const size_t colon = value.rfind(':');
  const std::string_view host = value.substr(0, colon == std::string_view::npos ? 0 : colon);
  bool host_ok = !host.empty();
  if (host.starts_with('[')) {
    host_ok = host.size() > 2 && host.ends_with(']');
  } else if (host.find_first_not_of("0123456789.") == std::string_view::npos) {
    host_ok = host_ok && parseIpv4(host).has_value();  // looks numeric: must be an IPv4
  } else {
    for (char ch : host) host_ok = host_ok && (isNameChar(ch) || ch == '.') && ch != '*';
  }
  if (colon == std::string_view::npos || !host_ok) {
    c.fail(quoted(value) + " is not host:port (e.g. 127.0.0.1:9080)");
    return std::nullopt;
  }
  if (!parseDecimal(value.substr(colon + 1), 65535).value_or(0)) {
    c.fail("port " + quoted(value.substr(colon + 1)) + " in " + quoted(value) +
           " is not a number in 1..65535");
    return std::nullopt;
  }
  return text;
}

// ---------------------------------------------------------------------------------------
// Sections. Order matters only for cross-checks: ports, then SNAT, nodes, services.

// Addresses the box itself answers for, with what owns them ("port 'ext'").
using OwnedAddresses = std::map<IpAddress, std::string>;

void readWorkers(const Cursor& dataplane, std::vector<unsigned>& workers) {
  auto setting = dataplane.member("workers", Need::kOptional);
  if (!setting) return;
  auto items = setting->elements();
  if (!items) return;
  if (items->empty()) {
    setting->fail("at least one worker lcore is required");
    return;
  }
  std::vector<unsigned> lcores;
  for (const Cursor& item : *items) {
    // 0 gets its own message, so read the wider range and check the bounds here.
    const auto lcore = item.asUint(0u, std::numeric_limits<unsigned>::max());
    if (!lcore) return;
    if (*lcore == 0) {
      item.fail("lcore 0 is the main (control) lcore and cannot be a worker");
      return;
    }
    if (*lcore > kMaxWorkerLcore) {
      item.fail(std::to_string(*lcore) + " is outside 1.." + std::to_string(kMaxWorkerLcore));
      return;
    }
    if (std::ranges::find(lcores, *lcore) != lcores.end()) {
      item.fail("lcore " + std::to_string(*lcore) + " is listed twice");
      return;
    }
    lcores.push_back(*lcore);
  }
  if (lcores.size() > kMaxWorkers) {
    setting->fail(std::to_string(lcores.size()) + " workers; at most " + std::to_string(kMaxWorkers));
    return;
  }
  workers = std::move(lcores);
}

void readPort(const Cursor& item, PortConfig& port) {
  if (!item.expectGroup({"name", "device", "role", "address", "gateway", "address6", "gateway6", "mtu",
                         "kernel_iface"})) return;
  item.requiredString("name", port.name);
  item.read("kernel_iface", Need::kOptional, port.kernel_iface, readInterfaceName);
  item.requiredString("device", port.device);
  item.read("role", Need::kRequired, port.role, readRole);
  item.read("address", Need::kRequired, port.address, &Cursor::asPrefix);
  item.read("gateway", Need::kOptional, port.gateway, &Cursor::asIpv4);
  item.read("address6", Need::kOptional, port.address6, &Cursor::asIpv6Prefix);
  item.read("gateway6", Need::kOptional, port.gateway6, [](const Cursor& c) -> std::optional<IpAddress> {
    // A router's link-local address is the usual IPv6 next hop, so it is allowed here.
    auto text = c.asString();
    auto address = text ? IpAddress::parse(*text) : std::nullopt;
    if (address && address->isV6() && address->isLinkLocal()) return address;
    address = c.asIp();
    if (address && !address->isV6()) {
      c.fail(quoted(address->str()) + " is not an IPv6 address");
      return std::nullopt;
    }
    return address;
  });
  item.optionalUint("mtu", port.mtu, kMinMtu, kMaxMtu);
  if (item.failed()) return;
  if (port.address6) {
    if (!port.address6->address.isUnicastHost()) {
      item.member("address6", Need::kOptional)
          ->fail(quoted(port.address6->address.str()) + " is not a unicast host address");
      return;
    }
    if (port.address6->length > 127) {
      item.member("address6", Need::kOptional)->fail("a /128 leaves no room for neighbours; use the link's prefix (e.g. /64)");
      return;
    }
  }
  if (port.gateway6) {
    auto at = item.member("gateway6", Need::kOptional);
    if (!port.address6) {
      at->fail("gateway6 needs address6 (the port's own IPv6 address)");
      return;
    }
    if (!port.gateway6->isLinkLocal() && !port.address6->contains(*port.gateway6)) {
      at->fail("gateway6 " + port.gateway6->str() + " is neither link-local nor inside the port's prefix " +
               port.address6->network().str());
      return;
    }
  }
  if (!port.gateway) return;
  const uint32_t mask = prefixMask(port.address.length);
  if ((*port.gateway & mask) != (port.address.address & mask)) {
    const Ipv4Prefix subnet{.address = port.address.address & mask,
                            .length = port.address.length};
    item.member("gateway", Need::kOptional)
        ->fail("gateway " + formatIpv4(*port.gateway) + " is not inside the port's subnet " +
               formatPrefix(subnet));
  }
}

void readPorts(const Cursor& dataplane, std::vector<PortConfig>& ports) {
  std::map<std::string, std::string> kernel_ifaces;  // kernel interface -> path
  auto setting = dataplane.member("ports", Need::kRequired);
  if (!setting) return;
  auto items = setting->elements();
  if (!items) return;
  std::map<std::string, std::string> names;    // name -> path of the port that has it
  std::map<std::string, std::string> devices;  // device -> path
  std::map<PortRole, std::string> roles;       // role -> path
  for (const Cursor& item : *items) {
    PortConfig port;
    readPort(item, port);
    if (item.failed()) return;
    if (auto [it, fresh] = names.try_emplace(port.name, item.path()); !fresh) {
      item.member("name", Need::kOptional)
          ->fail("port name " + quoted(port.name) + " is already used by " + it->second);
      return;
    }
    if (auto [it, fresh] = devices.try_emplace(port.device, item.path()); !fresh) {
      item.member("device", Need::kOptional)
          ->fail("device " + quoted(port.device) + " is already used by " + it->second);
      return;
    }
    // Neighbours are learned per port by subnet, so the segments must not overlap.
    for (const PortConfig& other : ports) {
      const uint8_t len = std::min(port.address.length, other.address.length);
      const uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
      if ((port.address.address & mask) == (other.address.address & mask)) {
        item.member("address", Need::kOptional)
            ->fail(formatIpv4(port.address.address) + "/" + std::to_string(port.address.length) +
                   " overlaps port " + quoted(other.name) + " (" + formatIpv4(other.address.address) +
                   "/" + std::to_string(other.address.length) +
                   "); the external and internal segments must be different subnets");
        return;
      }
      if (port.address6 && other.address6 && port.address6->overlaps(*other.address6)) {
        item.member("address6", Need::kOptional)
            ->fail(port.address6->str() + " overlaps port " + quoted(other.name) + " (" + other.address6->str() +
                   "); the external and internal segments must be different subnets");
        return;
      }
    }
    const auto iface_at = item.member("kernel_iface", Need::kOptional);
    if (port.kernel_iface.empty()) {
      // Left empty when the port's name makes no interface name: an error only with the
      // exception path enabled (readDataplane).
      const std::string derived = "ng-" + port.name.substr(0, kMaxInterfaceName - 3);
      if (isInterfaceName(derived)) port.kernel_iface = derived;
    }
    if (!port.kernel_iface.empty()) {
      if (auto [it, fresh] = kernel_ifaces.try_emplace(port.kernel_iface, item.path()); !fresh) {
      (iface_at ? *iface_at : item)
          .fail("kernel interface " + quoted(port.kernel_iface) + " is already used by " + it->second);
        return;
      }
    }
    if (auto [it, fresh] = roles.try_emplace(port.role, item.path()); !fresh) {
      item.member("role", Need::kOptional)
          ->fail(std::string("a second ") +
                 (port.role == PortRole::kExternal ? "external" : "internal") + " port (" +
                 it->second + " is one already); exactly one external and one internal " +
                 "port are required");
      return;
    }
    ports.push_back(std::move(port));
  }
  for (const auto& [role, name] :
       {std::pair{PortRole::kExternal, "external"}, std::pair{PortRole::kInternal, "internal"}}) {
    if (!roles.contains(role)) {
      setting->fail(std::string("no ") + name +
                    " port; exactly one external and one internal port are required");
      return;
    }
  }
}

void readSnat(const Cursor& dataplane, DataplaneConfig& out) {
  if (auto snat = dataplane.group("snat", Need::kOptional, {"addresses"})) {
    if (auto items = snat->elements("addresses", Need::kOptional)) {
      for (const Cursor& item : *items) {
        const auto address = item.asIp();
        if (!address) return;
        if (std::ranges::find(out.snat.addresses, *address) != out.snat.addresses.end()) {
          item.fail(address->str() + " is listed twice");
          return;
        }
        if (out.snat.of(address->family()).size() == kMaxSnatAddresses) {
          item.fail("at most " + std::to_string(kMaxSnatAddresses) + " SNAT addresses per family are supported");
          return;
        }
        out.snat.addresses.push_back(*address);
      }
    }
  }
  if (out.snat.addresses.empty()) {
    for (const PortConfig& port : out.ports) {
      if (port.role != PortRole::kInternal) continue;
      out.snat.addresses.push_back(port.address.address);
      if (port.address6) out.snat.addresses.push_back(port.address6->address);
    }
  }
}

constexpr uint32_t kMaxMbufs = 16u << 20;

void readFlows(const Cursor& dataplane, FlowConfig& flows) {
  auto group = dataplane.group("flows", Need::kOptional,
                               {"capacity", "capacity6", "tcp_timeout", "tcp_transitory_timeout",
                                "udp_timeout", "tcp_half_open_timeout", "half_open_budget"});
  if (!group) return;
  group->optionalUint("capacity", flows.capacity, 1u, kMaxFlowCapacity);
  group->optionalUint("capacity6", flows.capacity6, kMinFlow6Capacity, kMaxFlowCapacity);
  group->optionalUint("tcp_timeout", flows.tcp_timeout, 1u, kU32Max);
  group->optionalUint("tcp_transitory_timeout", flows.tcp_transitory_timeout, 1u, kU32Max);
  group->optionalUint("udp_timeout", flows.udp_timeout, 1u, kU32Max);
  group->optionalUint("tcp_half_open_timeout", flows.tcp_half_open_timeout, 1u, 3600u);
  group->optionalUint("half_open_budget", flows.half_open_budget, 1u, 100u);
}

// dataplane.tunnel.source6: at most 65536 outer sources (/112), like source's /16.
void readTunnelSource6(const Cursor& source6, TunnelConfig& tunnel, const OwnedAddresses& owned) {
  auto prefix = source6.asIpv6Prefix();
  if (!prefix) return;
  const std::string text = prefix->str();
  if (prefix->length < 112) {
    source6.fail(quoted(text) + " is wider than /112; a flow needs one address, 65536 are plenty");
    return;
  }
  if (prefix->hasHostBits()) {
    source6.fail(quoted(text) + " has host bits set (did you mean " + prefix->network().str() + "?)");
    return;
  }
  if (!prefix->address.isUnicastHost() && !(prefix->length < 128 && prefix->address.plus(1).isUnicastHost())) {
    source6.fail(quoted(text) + " is not global unicast (::/128, ::1, ff00::/8, fe80::/10 and ::ffff:0:0/96 "
                 "are refused)");
    return;
  }
  for (const auto& [address, what] : owned) {
    if (prefix->contains(address)) {
      source6.fail(quoted(text) + " contains " + address.str() + ", which is " + what +
                   "; outer sources must be addresses of their own");
      return;
    }
  }
  tunnel.source6 = *prefix;
}

// dataplane.tunnel: checked against the box's own addresses (`owned`: ports, SNAT).
void readTunnel(const Cursor& dataplane, TunnelConfig& tunnel, const OwnedAddresses& owned) {
  auto group = dataplane.group("tunnel", Need::kOptional, {"source", "source6", "icmp_rate", "icmp_burst"});
  if (!group) return;
  group->optionalUint("icmp_rate", tunnel.icmp_rate, 0u, 1'000'000u);
  group->optionalUint("icmp_burst", tunnel.icmp_burst, 1u, 100'000u);
  if (auto source6 = group->member("source6", Need::kOptional)) readTunnelSource6(*source6, tunnel, owned);
  auto source = group->member("source", Need::kOptional);
  if (!source) return;
  auto prefix = source->asPrefix();
  if (!prefix) return;
  const std::string text = formatPrefix(*prefix);
  if (prefix->length < 16) {
    source->fail(quoted(text) + " is wider than /16; a flow needs one address, 65536 are plenty");
    return;
  }
  if ((prefix->address & ~prefixMask(prefix->length)) != 0) {
    source->fail(quoted(text) + " has host bits set (did you mean " +
                 formatPrefix(Ipv4Prefix{.address = prefix->address & prefixMask(prefix->length),
                                         .length = prefix->length}) +
                 "?)");
    return;
  }
  if (const uint8_t top = prefix->address >> 24; top == 0 || top == 127 || top >= 224) {
    source->fail(quoted(text) + " is not unicast (0/8, 127/8 and 224/3 are reserved)");
    return;
  }
  for (const auto& [address, what] : owned) {
    if (address.isV4() && (address.v4() & prefixMask(prefix->length)) == prefix->address) {
      source->fail(quoted(text) + " contains " + address.str() + ", which is " + what +
                   "; outer sources must be addresses of their own");
      return;
    }
  }
  tunnel.source = *prefix;
}

void readExceptionPath(const Cursor& dataplane, ExceptionPathConfig& out) {
  auto group = dataplane.group("exception_path", Need::kOptional, {"enabled", "rate_pps", "burst"});
  if (!group) return;
  group->read("enabled", Need::kOptional, out.enabled, &Cursor::asBool);
  group->optionalUint("rate_pps", out.rate_pps, 1u, 1'000'000u);
  group->optionalUint("burst", out.burst, 1u, 65'536u);
}

void readDataplane(const Cursor& root, DataplaneConfig& out, OwnedAddresses& owned) {
  auto dataplane = root.group("dataplane", Need::kRequired,
                              {"eal", "workers", "ports", "mode", "snat", "flows", "mbufs", "idle_sleep_us",
                               "tunnel", "exception_path", "garp_interval_s"});
  if (!dataplane) return;
  readExceptionPath(*dataplane, out.exception_path);
  dataplane->optionalUint("garp_interval_s", out.garp_interval_s, 0u, 3600u);
  dataplane->readEach("eal", Need::kOptional, out.eal, &Cursor::asString);
  dataplane->optionalUint("mbufs", out.mbufs, 0u, kMaxMbufs);
  dataplane->optionalUint("idle_sleep_us", out.idle_sleep_us, 0u, 10'000u);
  readWorkers(*dataplane, out.workers);
  readPorts(*dataplane, out.ports);
  dataplane->read("mode", Need::kOptional, out.mode, readMode);
  readSnat(*dataplane, out);
  readFlows(*dataplane, out.flows);
  if (out.exception_path.enabled && !dataplane->failed()) {
    const auto items = dataplane->elements("ports", Need::kOptional);
    for (size_t i = 0; items && i < out.ports.size() && i < items->size(); ++i) {
      if (out.ports[i].kernel_iface.empty()) {
        (*items)[i].fail("port name " + quoted(out.ports[i].name) +
                         " makes no kernel interface name for the exception path; set kernel_iface");
        return;
      }
    }
  }
  for (const PortConfig& port : out.ports) {
    owned.try_emplace(port.address.address, "the address of port " + quoted(port.name));
    if (port.address6) owned.try_emplace(port.address6->address, "the IPv6 address of port " + quoted(port.name));
  }
  for (const IpAddress& address : out.snat.addresses) owned.try_emplace(address, "a SNAT address");
  readTunnel(*dataplane, out.tunnel, owned);
}

void readApi(const Cursor& root, ApiConfig& api) {
  auto group = root.group("api", Need::kOptional, {"listen", "token_file", "tls_cert", "tls_key"});
  if (!group) return;
  group->read("listen", Need::kOptional, api.listen, readListen);
  group->optionalString("token_file", api.token_file);
  group->optionalString("tls_cert", api.tls_cert);
  group->optionalString("tls_key", api.tls_key);
  if (group->failed()) return;
  if (api.tls_cert.empty() != api.tls_key.empty()) {
    group->member(api.tls_cert.empty() ? "tls_key" : "tls_cert", Need::kOptional)
        ->fail("tls_cert and tls_key go together: set both or neither");
    return;
  }
  // Anyone who can reach a non-loopback API could change the box: demand a token.
  if (!isLoopbackListen(api.listen) && api.token_file.empty()) {
    group->member("listen", Need::kOptional)
        ->fail(quoted(api.listen) + " is not a loopback address; set api.token_file so "
               "mutating calls need a bearer token");
  }
}

void readHealth(const Cursor& root, HealthConfig& health) {
  auto group = root.group("health", Need::kOptional,
                          {"interval_ms", "timeout_ms", "rise", "fall", "cluster_probe",
                           "kube_proxy_port", "source_address", "all_down", "drain_timeout_s"});
  if (!group) return;
  group->optionalUint("interval_ms", health.interval_ms, 100u, 3'600'000u);
  group->optionalUint("timeout_ms", health.timeout_ms, 10u, 3'600'000u);
  group->optionalUint("rise", health.rise, 1u, 100u);
  group->optionalUint("fall", health.fall, 1u, 100u);
  group->read("cluster_probe", Need::kOptional, health.cluster_probe, [](const Cursor& c) {
    return c.asChoice<ClusterProbe>(
        {{"kube-proxy", ClusterProbe::kKubeProxy}, {"tcp", ClusterProbe::kTcp}, {"none", ClusterProbe::kNone}});
  });
  group->optionalUint("kube_proxy_port", health.kube_proxy_port, uint16_t{1}, uint16_t{65535});
  group->read("source_address", Need::kOptional, health.source_address, &Cursor::asIpv4);
  group->read("all_down", Need::kOptional, health.all_down, [](const Cursor& c) {
    return c.asChoice<AllDownPolicy>({{"fail-open", AllDownPolicy::kFailOpen}, {"drop", AllDownPolicy::kDrop}});
  });
  group->optionalUint("drain_timeout_s", health.drain_timeout_s, 0u, 86'400u);
  if (group->failed()) return;
  if (health.timeout_ms >= health.interval_ms) {
    auto at = group->member("timeout_ms", Need::kOptional);
    if (!at) at = group->member("interval_ms", Need::kOptional);
    at->fail("timeout_ms " + std::to_string(health.timeout_ms) + " must be less than interval_ms (" +
               std::to_string(health.interval_ms) + ")");
  }
}

// A pool CIDR or a source range names a block of addresses, so its host bits must be zero.
std::optional<IpPrefix> readNetwork(const Cursor& c) {
  auto prefix = c.asIpPrefix();
  if (prefix && prefix->hasHostBits()) {
    c.fail(quoted(prefix->str()) + " has host bits set (did you mean " + prefix->network().str() + "?)");
    return std::nullopt;
  }
  return prefix;
}

// "address" (one, either family) or "addresses" (one per family, for dual stack), and
// the same for a Service's "vip" / "vips": exactly one of the two settings.
std::optional<std::vector<IpAddress>> readAddressOrPair(const Cursor& item, std::string_view one,
                                                        std::string_view many) {
  auto single = item.member(one, Need::kOptional);
  auto list = item.member(many, Need::kOptional);
  if (single && list) {
    list->fail("set either " + std::string(one) + " or " + std::string(many) + ", not both");
    return std::nullopt;
  }
  if (!single && !list) {
    (void)item.member(one, Need::kRequired);  // reports "required setting is missing" at `one`
    return std::nullopt;
  }
  std::vector<IpAddress> out;
  if (single) {
    auto address = single->asIp();
    if (!address) return std::nullopt;
    out.push_back(*address);
    return out;
  }
  auto items = list->elements();
  if (!items) return std::nullopt;
  if (items->empty() || items->size() > 2) {
    list->fail("expected one address per family (one IPv4, one IPv6, or one of each), got " +
               std::to_string(items->size()));
    return std::nullopt;
  }
  for (const Cursor& element : *items) {
    auto address = element.asIp();
    if (!address) return std::nullopt;
    if (!out.empty() && out.front().family() == address->family()) {
      element.fail(std::string("a second ") + ipFamilyName(address->family()) + " address (" + address->str() +
                   " after " + out.front().str() + "); at most one per family");
      return std::nullopt;
    }
    out.push_back(*address);
  }
  std::ranges::sort(out);  // IPv4 first
  return out;
}

void readPools(const Cursor& root, std::vector<PoolConfig>& pools) {
  auto items = root.elements("pools", Need::kOptional);
  if (!items) return;
  std::map<std::string, std::string> names;  // name -> path
  for (const Cursor& item : *items) {
    if (!item.expectGroup({"name", "cidrs"})) return;
    PoolConfig pool;
    item.requiredString("name", pool.name);
    item.readEach("cidrs", Need::kRequired, pool.cidrs, readNetwork);
    if (item.failed()) return;
    if (pool.cidrs.empty()) {
      item.member("cidrs", Need::kOptional)->fail("at least one CIDR is required");
      return;
    }
    // A pool that starts in multicast, loopback, unspecified or link-local space is a
    // mistake, and allocation would walk it address by address looking for a host.
    auto cidr_items = item.elements("cidrs", Need::kOptional);
    for (size_t i = 0; i < pool.cidrs.size(); ++i) {
      if (!pool.cidrs[i].address.isUnicastHost()) {
        (*cidr_items)[i].fail(quoted(pool.cidrs[i].str()) + " does not start with a unicast host address " +
                              "(multicast, loopback, unspecified, link-local and 0/8 blocks cannot hold VIPs)");
        return;
      }
    }
    if (auto [it, fresh] = names.try_emplace(pool.name, item.path()); !fresh) {
      item.member("name", Need::kOptional)
          ->fail("pool name " + quoted(pool.name) + " is already used by " + it->second);
      return;
    }
    pools.push_back(std::move(pool));
  }
}

void readKubernetes(const Cursor& root, KubernetesConfig& kubernetes) {
  auto group = root.group("kubernetes", Need::kOptional,
                          {"enabled", "kubeconfig", "context", "server", "ca_file", "token_file", "class",
                           "node_address"});
  if (!group) return;
  group->read("enabled", Need::kOptional, kubernetes.enabled, &Cursor::asBool);
  group->optionalString("kubeconfig", kubernetes.kubeconfig);
  group->optionalString("context", kubernetes.context);
  group->optionalString("server", kubernetes.server);
  group->optionalString("ca_file", kubernetes.ca_file);
  group->optionalString("token_file", kubernetes.token_file);
  group->read("class", Need::kOptional, kubernetes.class_name, &Cursor::asString);
  group->read("node_address", Need::kOptional, kubernetes.node_address, [](const Cursor& c) {
    return c.asChoice<NodeAddressType>(
        {{"InternalIP", NodeAddressType::kInternalIp}, {"ExternalIP", NodeAddressType::kExternalIp}});
  });
  if (group->failed()) return;
  if (!kubernetes.server.empty()) {
    auto at = group->member("server", Need::kOptional);
    if (!kubernetes.kubeconfig.empty()) {
      at->fail("set either kubeconfig or server, not both");
    } else if (!kubernetes.server.starts_with("https://")) {
      // A bearer token must never travel in clear text (KUBERNETES.md).
      at->fail(quoted(kubernetes.server) + " is not an https:// URL");
    } else if (kubernetes.ca_file.empty()) {
      group->member("server", Need::kOptional)->fail("needs ca_file: the server's certificate is always verified");
    }
  } else if (!kubernetes.ca_file.empty() || !kubernetes.token_file.empty()) {
    auto at = group->member(kubernetes.ca_file.empty() ? "token_file" : "ca_file", Need::kOptional);
    at->fail("needs server (with a kubeconfig or in cluster, the CA and token come from there)");
  }
}

void readNodes(const Cursor& root, std::vector<NodeConfig>& nodes, const OwnedAddresses& owned,
               const TunnelConfig& tunnel) {
  auto items = root.elements("nodes", Need::kOptional);
  if (!items) return;
  std::map<std::string, std::string> names;  // name -> path
  std::map<IpAddress, std::string> addresses;  // address -> path and name
  for (const Cursor& item : *items) {
    if (!item.expectGroup({"name", "address", "addresses", "mac"})) return;
    NodeConfig node;
    item.requiredString("name", node.name);
    if (auto list = readAddressOrPair(item, "address", "addresses")) node.addresses = std::move(*list);
    item.read("mac", Need::kOptional, node.mac, &Cursor::asMac);
    if (item.failed()) return;
    if (auto [it, fresh] = names.try_emplace(node.name, item.path()); !fresh) {
      item.member("name", Need::kOptional)
          ->fail("node name " + quoted(node.name) + " is already used by " + it->second);
      return;
    }
    auto address_setting = item.member("address", Need::kOptional);
    if (!address_setting) address_setting = item.member("addresses", Need::kOptional);
    for (const IpAddress& a : node.addresses) {
      if (auto it = owned.find(a); it != owned.end()) {
        address_setting->fail("node address " + a.str() + " is " + it->second);
        return;
      }
      if (tunnel.source && a.isV4() && (a.v4() & prefixMask(tunnel.source->length)) == tunnel.source->address) {
        address_setting->fail("node address " + a.str() + " is inside dataplane.tunnel.source " +
                              formatPrefix(*tunnel.source) + " (the box's outer source addresses)");
        return;
      }
      if (tunnel.source6 && tunnel.source6->contains(a)) {
        address_setting->fail("node address " + a.str() + " is inside dataplane.tunnel.source6 " +
                              tunnel.source6->str() + " (the box's outer source addresses)");
        return;
      }
      if (auto [it, fresh] = addresses.try_emplace(a, item.path() + " " + quoted(node.name)); !fresh) {
        address_setting->fail("node address " + a.str() + " is already used by " + it->second);
        return;
      }
    }
    nodes.push_back(std::move(node));
  }
}

void readServicePorts(const Cursor& service, std::vector<ServicePortConfig>& ports) {
  auto items = service.elements("ports", Need::kRequired);
  if (!items) return;
  for (const Cursor& item : *items) {
    if (!item.expectGroup({"name", "protocol", "port", "node_port"})) return;
    ServicePortConfig port;
    item.optionalString("name", port.name);
    item.read("protocol", Need::kRequired, port.protocol, readProtocol);
    item.requiredUint("port", port.port, uint16_t{1}, uint16_t{65535});
    item.requiredUint("node_port", port.node_port, uint16_t{1}, uint16_t{65535});
    if (item.failed()) return;
    const bool named_twice = !port.name.empty() && std::ranges::any_of(ports, [&](auto& p) {
      return p.name == port.name;
    });
    if (named_twice) {
      item.member("name", Need::kOptional)
          ->fail("port name " + quoted(port.name) + " is used twice in this service");
      return;
    }
    ports.push_back(std::move(port));
  }
  if (ports.empty()) {
    service.member("ports", Need::kOptional)->fail("at least one port is required");
  }
}

void readServiceNodes(const Cursor& service, const std::vector<NodeConfig>& nodes,
                      std::vector<std::string>& names) {
  auto items = service.elements("nodes", Need::kOptional);
  if (!items) return;
  for (const Cursor& item : *items) {
    auto name = item.asString();
    if (!name) return;
    if (std::ranges::none_of(nodes, [&](const NodeConfig& n) { return n.name == *name; })) {
      item.fail("unknown node " + quoted(*name) + " (not defined in nodes)");
      return;
    }
    if (std::ranges::find(names, *name) != names.end()) {
      item.fail("node " + quoted(*name) + " is listed twice");
      return;
    }
    names.push_back(std::move(*name));
  }
}

// loadBalancerSourceRanges, either family (ServiceConfig::source_ranges says how a VIP
// applies them).
void readSourceRanges(const Cursor& service, std::vector<IpPrefix>& ranges) {
  auto items = service.elements("source_ranges", Need::kOptional);
  if (!items) return;
  for (const Cursor& item : *items) {
    auto prefix = readNetwork(item);
    if (!prefix) return;
    if (std::ranges::find(ranges, *prefix) != ranges.end()) {
      item.fail("source range " + prefix->str() + " is listed twice");
      return;
    }
    ranges.push_back(*prefix);
  }
}

std::optional<SessionAffinity> readSessionAffinity(const Cursor& c) {
  return c.asChoice<SessionAffinity>(
      {{"None", SessionAffinity::kNone}, {"ClientIP", SessionAffinity::kClientIp}});
}

bool hasInternalAddress6(const DataplaneConfig& dataplane) {
  return std::ranges::any_of(dataplane.ports,
                             [](const PortConfig& p) { return p.role == PortRole::kInternal && p.address6; });
}

bool vipInTunnelSource6(const TunnelConfig& tunnel, const IpAddress& vip) {
  return tunnel.source6 && tunnel.source6->contains(vip);
}

void readServices(const Cursor& root, Config& config, const OwnedAddresses& owned) {
  auto items = root.elements("services", Need::kOptional);
  if (!items) return;
  std::map<std::string, std::string> ids;  // "namespace/name" -> path
  // (vip, protocol, port) -> "path (namespace/name)" of the service port that has it
  std::map<std::tuple<IpAddress, Protocol, uint16_t>, std::string> frontends;
  for (const Cursor& item : *items) {
    if (!item.expectGroup({"namespace", "name", "vip", "vips", "ports", "external_traffic_policy",
                           "health_check_node_port", "mode", "nodes", "source_ranges",
                           "session_affinity", "session_affinity_timeout"})) {
      return;
    }
    ServiceConfig service;
    item.requiredString("namespace", service.namespace_name);
    item.requiredString("name", service.name);
    if (auto vips = readAddressOrPair(item, "vip", "vips")) service.vips = std::move(*vips);
    readServicePorts(item, service.ports);
    item.read("external_traffic_policy", Need::kOptional, service.external_traffic_policy,
              readTrafficPolicy);
    item.optionalUint("health_check_node_port", service.health_check_node_port, uint16_t{1},
                      uint16_t{65535});
    if (!item.failed() && service.external_traffic_policy == TrafficPolicy::kLocal &&
        service.health_check_node_port == 0) {
      item.member("external_traffic_policy", Need::kOptional)
          ->fail("Local needs health_check_node_port (the node port kube-proxy answers "
                 "/healthz on for this Service)");
    }
    item.read("mode", Need::kOptional, service.mode, readMode);
    readServiceNodes(item, config.nodes, service.node_names);
    readSourceRanges(item, service.source_ranges);
    item.read("session_affinity", Need::kOptional, service.session_affinity, readSessionAffinity);
    item.optionalUint("session_affinity_timeout", service.session_affinity_timeout, 1u,
                      kMaxSessionAffinityTimeout);
    if (item.failed()) return;
    // Like Kubernetes, which rejects sessionAffinityConfig when sessionAffinity is None:
    // a timeout without affinity is a mistake, not a setting to ignore.
    if (service.session_affinity == SessionAffinity::kNone) {
      if (auto timeout = item.member("session_affinity_timeout", Need::kOptional)) {
        timeout->fail("applies only with session_affinity = \"ClientIP\" (session_affinity is \"None\")");
        return;
      }
    }

    const std::string id = service.namespace_name + "/" + service.name;
    if (auto [it, fresh] = ids.try_emplace(id, item.path()); !fresh) {
      item.member("name", Need::kOptional)
          ->fail("service " + id + " is already defined at " + it->second);
      return;
    }
    auto vip_setting = item.member("vip", Need::kOptional);
    if (!vip_setting) vip_setting = item.member("vips", Need::kOptional);
    for (const IpAddress& address : service.vips) {
      const std::string vip = address.str();
      if (auto it = owned.find(address); it != owned.end()) {
        vip_setting->fail("VIP " + vip + " is " + it->second);
        return;
      }
      for (const NodeConfig& node : config.nodes) {
        if (std::ranges::find(node.addresses, address) != node.addresses.end()) {
          vip_setting->fail("VIP " + vip + " is the address of node " + quoted(node.name));
          return;
        }
      }
      if (address.isV6() && service.mode.value_or(config.dataplane.mode) == Mode::kTunnel &&
          !config.dataplane.tunnel.source6 && !hasInternalAddress6(config.dataplane)) {
        vip_setting->fail("VIP " + vip + " needs an IPv6 outer source for tunnel mode (IPv6-in-IPv6): give the "
                          "internal port an address6, or set dataplane.tunnel.source6");
        return;
      }
      if (vipInTunnelSource6(config.dataplane.tunnel, address)) {
        vip_setting->fail("VIP " + vip + " is inside dataplane.tunnel.source6 " + config.dataplane.tunnel.source6->str());
        return;
      }
      if (address.isV6() && service.mode.value_or(config.dataplane.mode) == Mode::kFullNat &&
          config.dataplane.snat.of(IpFamily::kIpv6).empty()) {
        vip_setting->fail("VIP " + vip + " needs an IPv6 SNAT source for full-NAT: give the internal port an "
                          "address6, or list one in dataplane.snat.addresses");
        return;
      }
      // A static VIP whose family none of its nodes has could never serve: say so now.
      bool any_node = false, family_node = false;
      for (const NodeConfig& node : config.nodes) {
        if (!service.node_names.empty() && std::ranges::find(service.node_names, node.name) == service.node_names.end()) {
          continue;
        }
        any_node = true;
        family_node = family_node || node.address(address.family()).has_value();
      }
      if (any_node && !family_node) {
        vip_setting->fail("VIP " + vip + " is " + ipFamilyName(address.family()) + " but none of its nodes has an " +
                          ipFamilyName(address.family()) + " address");
        return;
      }
      auto port_items = item.elements("ports", Need::kOptional);
      for (size_t i = 0; i < service.ports.size(); ++i) {
        const ServicePortConfig& port = service.ports[i];
        const Cursor& port_item = (*port_items)[i];
        const auto key = std::tuple{address, port.protocol, port.port};
        auto [it, fresh] = frontends.try_emplace(key, port_item.path() + " (" + id + ")");
        if (!fresh) {
          port_item.fail(formatEndpoint(address, port.port) + (port.protocol == Protocol::kTcp ? "/TCP" : "/UDP") +
                         " is already used by " + it->second);
          return;
        }
      }
    }
    config.services.push_back(std::move(service));
  }
}

void readConfig(const Cursor& root, Config& config) {
  if (!root.expectGroup({"dataplane", "api", "state_dir", "health", "pools", "kubernetes",
                         "nodes", "services"})) {
    return;
  }
  OwnedAddresses owned;
  readDataplane(root, config.dataplane, owned);
  readApi(root, config.api);
  root.read("state_dir", Need::kOptional, config.state_dir, &Cursor::asNonEmptyString);
  readHealth(root, config.health);
  readPools(root, config.pools);
  readKubernetes(root, config.kubernetes);
  if (root.failed()) return;  // nodes and services are checked against the dataplane
  readNodes(root, config.nodes, owned, config.dataplane.tunnel);
  if (root.failed()) return;
  readServices(root, config, owned);
}

}  // namespace

std::expected<Config, ConfigError> parseConfig(std::string_view text,
                                               std::string_view source_name) {
  Problems problems(source_name);
  const auto prepared = prepareText(text, problems);
  if (!prepared) return std::unexpected(problems.take());

  libconfig::Config tree;
  try {
    tree.readString(*prepared);
  } catch (const libconfig::ParseException& e) {
    problems.report(static_cast<unsigned>(e.getLine()), "", e.getError());
    return std::unexpected(problems.take());
  } catch (const libconfig::ConfigException& e) {
    problems.report(1, "", e.what());
    return std::unexpected(problems.take());
  }

  Config config;
  config.source = std::string(source_name);
  try {
    readConfig(Cursor(tree.getRoot(), "", problems), config);
  } catch (const libconfig::SettingException& e) {
    // Not expected: every access is type-checked first. Kept so a slip is an error, not
    // a crash of the control thread during a reload.
    problems.report(1, e.getPath(), std::string("internal error: ") + e.what());
  }
  if (problems.any()) return std::unexpected(problems.take());
  return config;
}

std::expected<Config, ConfigError> loadConfig(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    return std::unexpected(ConfigError{.message = path + ": cannot open: " + std::strerror(errno)});
  }
  std::string text;
  char buffer[16384];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, got);
  if (std::ferror(file.get())) {
    return std::unexpected(ConfigError{.message = path + ": cannot read: " + std::strerror(errno)});
  }
  return parseConfig(text, path);
}

}  // namespace ng::conf
