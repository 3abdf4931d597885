#include "dataplane/dpdk/kernel_iface.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "dataplane/dpdk/eal.h"

namespace ng::dpdk {
namespace {

std::string macText(const fwd::Mac& mac) {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                mac[5]);
  return text;
}

std::string ipText(uint32_t address) {
  in_addr a{.s_addr = htonl(address)};
  char text[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &a, text, sizeof(text)) ? text : "?";
}

[[noreturn]] void fail(const std::string& iface, const std::string& what, int err) {
  throw std::runtime_error("exception path: kernel interface " + iface + ": " + what + ": " + std::strerror(err));
}

sockaddr_in inetAddress(uint32_t address) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(address);
  return sin;
}

// The kernel must not speak IPv6 on the wire while the data plane does not handle it (no
// router solicitations or MLD reports leaving by the data port). Done before the link
// goes up, so not even the first ones leave. No IPv6 in the kernel: nothing to turn off.
void disableIpv6(const std::string& iface) {
  const std::string path = "/proc/sys/net/ipv6/conf/" + iface + "/disable_ipv6";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    log(RTE_LOG_NOTICE, "%s: IPv6 not turned off (%s: %s)", iface.c_str(), path.c_str(), std::strerror(errno));
    return;
  }
  if (::write(fd, "1", 1) != 1) {
    log(RTE_LOG_WARNING, "%s: IPv6 not turned off (%s)", iface.c_str(), std::strerror(errno));
  }
  ::close(fd);
}

class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

void configureKernelSide(const KernelInterfaceSpec& spec) {
  Socket sock;
  if (sock.fd() < 0) fail(spec.iface, "socket(AF_INET)", errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, spec.iface.c_str(), IFNAMSIZ - 1);
  // Address first (the kernel derives a classful mask), then the real prefix, which
  // also installs the connected route for the port's subnet.
  const sockaddr_in address = inetAddress(spec.address);
  std::memcpy(&ifr.ifr_addr, &address, sizeof(address));
  if (::ioctl(sock.fd(), SIOCSIFADDR, &ifr) != 0) fail(spec.iface, "SIOCSIFADDR " + ipText(spec.address), errno);
  const uint32_t mask = spec.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - spec.prefix_len);
  const sockaddr_in netmask = inetAddress(mask);
  std::memcpy(&ifr.ifr_netmask, &netmask, sizeof(netmask));
  if (::ioctl(sock.fd(), SIOCSIFNETMASK, &ifr) != 0) {
    fail(spec.iface, "SIOCSIFNETMASK /" + std::to_string(spec.prefix_len), errno);
  }
  // Up (the PMD's start did it already; harmless twice, and it tells us when it failed).
  if (::ioctl(sock.fd(), SIOCGIFFLAGS, &ifr) != 0) fail(spec.iface, "SIOCGIFFLAGS", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(sock.fd(), SIOCSIFFLAGS, &ifr) != 0) fail(spec.iface, "SIOCSIFFLAGS up", errno);

  if (spec.default_gateway == 0) return;
  // A default route through the port's gateway, so management traffic from beyond the
  // segment is answered. An existing default route (a management interface's) wins:
  // that is the operator's decision.
  rtentry route{};
  const sockaddr_in any = inetAddress(0);
  const sockaddr_in gateway = inetAddress(spec.default_gateway);
  std::memcpy(&route.rt_dst, &any, sizeof(any));
  std::memcpy(&route.rt_genmask, &any, sizeof(any));
  std::memcpy(&route.rt_gateway, &gateway, sizeof(gateway));
  route.rt_flags = RTF_UP | RTF_GATEWAY;
  std::string dev = spec.iface;
  route.rt_dev = dev.data();
  if (::ioctl(sock.fd(), SIOCADDRT, &route) != 0) {
    if (errno != EEXIST) fail(spec.iface, "default route via " + ipText(spec.default_gateway), errno);
    log(RTE_LOG_NOTICE, "%s: the kernel has a default route already; not adding one via %s", spec.iface.c_str(),
        ipText(spec.default_gateway).c_str());
  }
}

}  // namespace

namespace {

std::string readSysctl(const std::string& path) {
  std::string value;
  if (std::FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[32] = {};
    if (std::fgets(buf, sizeof(buf), f)) value = buf;
    std::fclose(f);
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return value;
}

}  // namespace

void keepKernelOffDataPort(const std::string& device) noexcept {
  try {
    if (device.rfind("net_af_packet", 0) != 0) return;
    const size_t at = device.find("iface=");
    if (at == std::string::npos) return;
    const std::string iface = device.substr(at + 6, device.find(',', at) - (at + 6));
    const std::string path = "/proc/sys/net/ipv4/conf/" + iface + "/rp_filter";
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr || std::fputs("1", f) < 0) {
      log(RTE_LOG_WARNING, "%s: could not set %s to 1 (%s): the kernel may answer the port's traffic twice",
          iface.c_str(), path.c_str(), std::strerror(errno));
    }
    if (f != nullptr) std::fclose(f);
    if (readSysctl("/proc/sys/net/ipv4/conf/all/rp_filter") == "2") {
      log(RTE_LOG_WARNING, "net.ipv4.conf.all.rp_filter is 2 (loose), which overrides %s's strict filter: "
          "the kernel may answer traffic of data port %s twice", iface.c_str(), iface.c_str());
    }
  } catch (const std::exception&) {
    // std::string allocation failed at start-up: nothing useful to do.
  }
}

KernelInterface KernelInterface::create(const KernelInterfaceSpec& spec, rte_mempool* pool) {
  if (spec.iface.empty() || spec.iface.size() >= IFNAMSIZ) {
    throw std::invalid_argument("exception path: bad kernel interface name '" + spec.iface + "'");
  }
  if (::if_nametoindex(spec.iface.c_str()) != 0) {
    // The PMD would fail with a less helpful message (or, with a stale persistent TAP,
    // attach to it): name the conflict.
    throw std::runtime_error("exception path: kernel interface " + spec.iface +
                             " already exists; remove it or choose another ports.[].kernel_iface");
  }
  KernelInterface k;
  k.iface_ = spec.iface;
  const std::string vdev = "net_tap_ng" + std::to_string(spec.index);
  const std::string args = "iface=" + spec.iface + ",mac=" + macText(spec.mac);
  if (int ret = rte_eal_hotplug_add("vdev", vdev.c_str(), args.c_str()); ret != 0) {
    throw std::runtime_error("exception path: creating the TAP " + spec.iface + " (" + vdev + "," + args +
                             ") failed: " + rte_strerror(ret < 0 ? -ret : ret) +
                             " (needs /dev/net/tun and CAP_NET_ADMIN)");
  }
  k.vdev_ = vdev;  // from here on the destructor removes it
  disableIpv6(spec.iface);
  k.port_.emplace(Port::open(vdev, spec.queues, spec.queues, spec.mtu, pool));
  configureKernelSide(spec);
  log(RTE_LOG_INFO, "exception path: kernel interface %s (%s) %s/%u, MAC %s, %u queue pair(s)", spec.iface.c_str(),
      vdev.c_str(), ipText(spec.address).c_str(), unsigned{spec.prefix_len}, macText(spec.mac).c_str(),
      unsigned{spec.queues});
  return k;
}

KernelInterface::KernelInterface(KernelInterface&& other) noexcept
    : vdev_(std::exchange(other.vdev_, {})), iface_(std::move(other.iface_)), port_(std::move(other.port_)) {
  other.port_.reset();
}

KernelInterface::~KernelInterface() {
  port_.reset();  // stops and closes the port; the kernel removes the TAP with its last fd
  if (!vdev_.empty()) {
    if (int ret = rte_eal_hotplug_remove("vdev", vdev_.c_str()); ret != 0 && ret != -ENOENT) {
      log(RTE_LOG_WARNING, "%s: rte_eal_hotplug_remove: %s", vdev_.c_str(), rte_strerror(-ret));
    }
  }
}

}  // namespace ng::dpdk
