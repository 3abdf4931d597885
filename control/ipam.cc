#include "control/ipam.h"

#include <algorithm>

namespace ng::control {
namespace {

uint32_t maskOf(uint8_t length) { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }

bool inPrefix(uint32_t address, const conf::Ipv4Prefix& p) {
  return (address & maskOf(p.length)) == (p.address & maskOf(p.length));
}

std::string portsText(const std::vector<PortKey>& ports) {
  std::string text;
  for (const auto& [protocol, port] : ports) {
    if (!text.empty()) text += ", ";
    text += std::to_string(port) + (protocol == conf::Protocol::kTcp ? "/TCP" : "/UDP");
  }
  return text;
}

}  // namespace

Ipam::Ipam(std::vector<conf::PoolConfig> pools) : pools_(std::move(pools)) {}

void Ipam::setPools(std::vector<conf::PoolConfig> pools) { pools_ = std::move(pools); }

void Ipam::setStatic(std::map<uint32_t, std::string> owners) { static_ = std::move(owners); }

std::optional<std::string> Ipam::poolOf(uint32_t address) const {
  for (const conf::PoolConfig& pool : pools_) {
    for (const conf::Ipv4Prefix& cidr : pool.cidrs) {
      if (inPrefix(address, cidr)) return pool.name;
    }
  }
  return std::nullopt;
}

std::string Ipam::conflict(uint32_t address, const AllocationRequest& request) const {
  const std::string text = conf::formatIpv4(address);
  if (auto it = static_.find(address); it != static_.end()) {
    return text + " is the static VIP of " + it->second + " (config file)";
  }
  auto it = holders_.find(address);
  if (it == holders_.end()) return "";
  for (const Holder& h : it->second) {
    if (h.owner == request.owner) continue;
    if (request.sharing_key.empty() || h.sharing_key != request.sharing_key) {
      return text + " is in use by " + h.owner +
             (h.sharing_key.empty() ? "" : " (sharing key '" + h.sharing_key + "')");
    }
    for (const PortKey& port : request.ports) {
      if (std::ranges::find(h.ports, port) != h.ports.end()) {
        return text + " is shared with " + h.owner + ", which already uses port " + portsText({port});
      }
    }
  }
  return "";
}

std::expected<uint32_t, std::string> Ipam::allocate(const AllocationRequest& request) {
  std::optional<uint32_t> chosen;
  if (request.requested) {
    const uint32_t want = *request.requested;
    const auto current = addressOf(request.owner);
    if (!poolOf(want) && current != want) {
      return std::unexpected(conf::formatIpv4(want) + " is not in any pool");
    }
    if (std::string why = conflict(want, request); !why.empty()) return std::unexpected(why);
    chosen = want;
  } else if (auto current = addressOf(request.owner); current && conflict(*current, request).empty()) {
    chosen = current;
  } else {
    for (const conf::PoolConfig& pool : pools_) {
      for (const conf::Ipv4Prefix& cidr : pool.cidrs) {
        const uint64_t first = cidr.address & maskOf(cidr.length);
        const uint64_t count = uint64_t{1} << (32 - cidr.length);
        for (uint64_t a = first; a < first + count && !chosen; ++a) {
          if (conflict(static_cast<uint32_t>(a), request).empty()) chosen = static_cast<uint32_t>(a);
        }
        if (chosen) break;
      }
      if (chosen) break;
    }
    if (!chosen) return std::unexpected(std::string("no free address in any pool"));
  }
  release(request.owner);
  adopt(request, *chosen);
  return *chosen;
}

void Ipam::adopt(const AllocationRequest& request, uint32_t address) {
  release(request.owner);
  holders_[address].push_back(Holder{.owner = request.owner, .sharing_key = request.sharing_key,
                                     .ports = request.ports});
  by_owner_[request.owner] = address;
}

void Ipam::release(const std::string& owner) {
  auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return;
  auto& list = holders_[it->second];
  std::erase_if(list, [&](const Holder& h) { return h.owner == owner; });
  if (list.empty()) holders_.erase(it->second);
  by_owner_.erase(it);
}

std::optional<uint32_t> Ipam::addressOf(const std::string& owner) const {
  auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ng::control
