#include "control/ipam.h"

#include <algorithm>

namespace ng::control {
namespace {

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

void Ipam::setStatic(std::map<conf::IpAddress, std::string> owners) { static_ = std::move(owners); }

std::optional<std::string> Ipam::poolOf(const conf::IpAddress& address) const {
  for (const conf::PoolConfig& pool : pools_) {
    for (const conf::IpPrefix& cidr : pool.cidrs) {
      if (cidr.contains(address)) return pool.name;
    }
  }
  return std::nullopt;
}

std::string Ipam::conflict(const conf::IpAddress& address, const AllocationRequest& request) const {
  const std::string text = address.str();
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

std::expected<conf::IpAddress, std::string> Ipam::allocate(const AllocationRequest& request) {
  std::optional<conf::IpAddress> chosen;
  const auto current = addressOf(request.owner, request.family);
  if (request.requested) {
    const conf::IpAddress want = *request.requested;
    if (want.family() != request.family) {
      return std::unexpected(want.str() + " is not an " + conf::ipFamilyName(request.family) + " address");
    }
    if (!poolOf(want) && current != want) return std::unexpected(want.str() + " is not in any pool");
    if (std::string why = conflict(want, request); !why.empty()) return std::unexpected(why);
    chosen = want;
  } else if (current && conflict(*current, request).empty()) {
    chosen = current;
  } else {
    // Lowest free address first. Each candidate that is taken is skipped in O(log n), so
    // a pool of any size (an IPv6 /64) costs at most one step per address in use.
    for (const conf::PoolConfig& pool : pools_) {
      for (const conf::IpPrefix& cidr : pool.cidrs) {
        if (cidr.family() != request.family) continue;
        const conf::IpPrefix net = cidr.network();
        for (conf::IpAddress a = net.address; net.contains(a); a = a.plus(1)) {
          if (a.isUnicastHost() && conflict(a, request).empty()) {
            chosen = a;
            break;
          }
          if (a.plus(1) == net.address) break;  // wrapped: /0 exhausted
        }
        if (chosen) break;
      }
      if (chosen) break;
    }
    if (!chosen) {
      return std::unexpected(std::string("no free ") + conf::ipFamilyName(request.family) + " address in any pool");
    }
  }
  adopt(request, *chosen);
  return *chosen;
}

void Ipam::adopt(const AllocationRequest& request, const conf::IpAddress& address) {
  release(request.owner, address.family());
  holders_[address].push_back(Holder{.owner = request.owner, .sharing_key = request.sharing_key,
                                     .ports = request.ports});
  by_owner_[{request.owner, address.family()}] = address;
}

void Ipam::release(const std::string& owner, conf::IpFamily family) {
  auto it = by_owner_.find({owner, family});
  if (it == by_owner_.end()) return;
  auto& list = holders_[it->second];
  std::erase_if(list, [&](const Holder& h) { return h.owner == owner; });
  if (list.empty()) holders_.erase(it->second);
  by_owner_.erase(it);
}

void Ipam::release(const std::string& owner) {
  release(owner, conf::IpFamily::kIpv4);
  release(owner, conf::IpFamily::kIpv6);
}

std::optional<conf::IpAddress> Ipam::addressOf(const std::string& owner, conf::IpFamily family) const {
  auto it = by_owner_.find({owner, family});
  if (it == by_owner_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ng::control
