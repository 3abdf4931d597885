#pragma once
// VIP pools (IPAM) for load balancers declared through the API and by the Kubernetes
// controller: automatic allocation, requested addresses, and MetalLB's sharing rule, per
// address family (a dual-stack Service holds one address of each family).
//
// Rules:
//   - A requested address is honoured when it lies in a pool and is free, or is held
//     only by Services with the same sharing key whose ports do not collide; otherwise
//     the request is refused with the reason (never stolen from its holder).
//   - Automatic allocation takes the lowest free address of the request's family from the
//     first pool that has one (pools in configuration order; a pool may mix families),
//     so results are deterministic.
//   - Static VIPs of config-file Services are taken, never shared.
// Control thread only; plain data, no I/O.

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "conf/config.h"

namespace ng::control {

// One (protocol, port) a holder uses on its address; collisions refuse sharing.
using PortKey = std::pair<conf::Protocol, uint16_t>;

struct AllocationRequest {
  std::string owner;                         // "namespace/name"
  conf::IpFamily family = conf::IpFamily::kIpv4;
  std::optional<conf::IpAddress> requested;  // loadBalancerIP / annotation; of `family`
  std::string sharing_key;                   // "" = not shareable
  std::vector<PortKey> ports;
};

class Ipam {
 public:
  explicit Ipam(std::vector<conf::PoolConfig> pools = {});

  // Replaces the pools (reload). Existing allocations stay, even outside the new pools
  // (an address in use is never moved under a running Service); poolOf() tells.
  void setPools(std::vector<conf::PoolConfig> pools);
  // Addresses of config-file Services: taken, not shareable. Replaces the previous set.
  void setStatic(std::map<conf::IpAddress, std::string> owners);

  // Allocates (or keeps) the owner's address of the request's family. The owner's
  // current address is kept when it still satisfies the request. Error: a sentence
  // naming the address and the reason.
  [[nodiscard]] std::expected<conf::IpAddress, std::string> allocate(const AllocationRequest& request);
  // Re-adopts an address from persisted state without the pool check (restart); the
  // family is the address's.
  void adopt(const AllocationRequest& request, const conf::IpAddress& address);
  void release(const std::string& owner);                          // every family
  void release(const std::string& owner, conf::IpFamily family);

  [[nodiscard]] std::optional<conf::IpAddress> addressOf(const std::string& owner, conf::IpFamily family) const;
  [[nodiscard]] std::optional<std::string> poolOf(const conf::IpAddress& address) const;

 private:
  struct Holder {
    std::string owner;
    std::string sharing_key;
    std::vector<PortKey> ports;
  };
  // Why `request` may not use `address` ("" = it may).
  [[nodiscard]] std::string conflict(const conf::IpAddress& address, const AllocationRequest& request) const;

  std::vector<conf::PoolConfig> pools_;
  std::map<conf::IpAddress, std::string> static_;           // address -> config Service
  std::map<conf::IpAddress, std::vector<Holder>> holders_;  // address -> API Services on it
  std::map<std::pair<std::string, conf::IpFamily>, conf::IpAddress> by_owner_;
};

}  // namespace ng::control
