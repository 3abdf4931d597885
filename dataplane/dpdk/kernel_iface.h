#pragma once
// The exception path's kernel side (fwd/exception.h): for one data port, a kernel network
// interface that carries the port's MAC, MTU and address, so the kernel's ARP, TCP and
// routing behave as if it owned the data port. Frames for the box that the data plane
// does not handle go to it (workers transmit on it), and what the kernel sends on it
// leaves by the data port, unchanged (workers receive from it).
//
// Why DPDK's net_tap PMD: it creates a kernel TAP netdev with a given name and MAC and
// maps its queues to DPDK queues (IFF_MULTI_QUEUE: one queue pair per worker, so no
// worker shares a queue and no ring between workers is needed); it works in a network
// namespace with nothing but /dev/net/tun. virtio-user needs /dev/vhost-net (absent on
// many VMs and containers, among them the CI machine) for a comparable kernel interface,
// and KNI is gone from DPDK 23.11. The PMD's rte_flow support needs tc qdiscs the kernel
// may lack; the PMD logs that and runs without it (nothing here uses rte_flow).
//
// Who configures it: nodegate itself, at boot, with ioctls (no netlink library): IPv6
// off (the data plane does not handle IPv6 yet, so the kernel must not speak it on the
// wire - the IPv6 branch should turn it back on and pass NDP), the port's address and
// prefix, the link up (the PMD's start), and for the external port the default route
// via its gateway when it has one and the kernel has none. The interface lives as long
// as the process: the kernel removes a TAP whose last file descriptor closes, so it
// disappears when nodegate exits, even on SIGKILL.
//
// Threading: create and destroy on the control thread; workers borrow port().id().
// Failure: create() throws std::runtime_error naming the interface and the error
// (start-up only).

#include <rte_mempool.h>

#include <cstdint>
#include <optional>
#include <string>

#include "dataplane/dpdk/port.h"
#include "dataplane/fwd/snapshot.h"

namespace ng::dpdk {

struct KernelInterfaceSpec {
  std::string iface;        // kernel interface name, 1..15 characters
  fwd::Mac mac{};           // the data port's MAC
  uint32_t address = 0;     // the data port's address (host order) and prefix
  uint8_t prefix_len = 24;
  uint32_t default_gateway = 0;  // 0 = add no route
  uint16_t mtu = 1500;
  uint16_t queues = 1;      // one RX/TX queue pair per worker
  unsigned index = 0;       // distinguishes the vdev names ("net_tap_ng<index>")
};

// With a data port that is itself a kernel netdev read through AF_PACKET
// (`net_af_packet...,iface=NAME`), the kernel sees every frame of the port as well as
// the data plane does. Once the kernel owns the port's address (on the TAP), Linux's weak
// host model would accept IP packets for it on NAME too and answer them a second time
// (duplicate pings, RSTs for connections it only half sees). Strict reverse-path
// filtering on NAME stops that: the sources are routed through the TAP, not NAME, so the
// kernel drops what arrives on NAME before it reaches a socket, while AF_PACKET still
// gets every frame (taps run before IP input). Sets net.ipv4.conf.NAME.rp_filter = 1
// and warns when conf.all.rp_filter = 2 (loose), which would override it. Other devices
// (NICs bound to DPDK, pcap, rings): nothing to do. Never throws.
void keepKernelOffDataPort(const std::string& device) noexcept;

class KernelInterface {
 public:
  // Creates the TAP (a net_tap vdev, hot-plugged), opens it as a Port with `spec.queues` queue pairs
  // drawing from `pool`, and configures the kernel side (see the header comment).
  static KernelInterface create(const KernelInterfaceSpec& spec, rte_mempool* pool);

  KernelInterface(KernelInterface&& other) noexcept;
  KernelInterface& operator=(KernelInterface&&) = delete;
  KernelInterface(const KernelInterface&) = delete;
  KernelInterface& operator=(const KernelInterface&) = delete;
  // Closes the port (the kernel interface goes with it) and removes the vdev.
  ~KernelInterface();

  [[nodiscard]] const Port& port() const noexcept { return *port_; }
  [[nodiscard]] const std::string& iface() const noexcept { return iface_; }

 private:
  KernelInterface() = default;
  std::string vdev_;
  std::string iface_;
  std::optional<Port> port_;
};

}  // namespace ng::dpdk
