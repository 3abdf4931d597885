#pragma once
// One worker over the fixture topology whose frames run behind real headroom, the way an
// mbuf holds them: tunnel mode writes its outer header there, so its tests (tunnel_test,
// tunnel6_test) need the frame to leave as the worker would send it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "test/dataplane/fwd/fixtures.h"

namespace ng::test {

inline constexpr size_t kHeadroom = 128;  // RTE_PKTMBUF_HEADROOM

struct HeadroomHarness {
  Env env = makeEnv();
  fwd::WorkerContext ctx;

  // `capacity6` 0: the WorkerContext default; `internal_mtu`: the internal port's MTU
  // (the tunnel's).
  explicit HeadroomHarness(uint32_t capacity, uint32_t capacity6 = 0, uint16_t internal_mtu = 1500)
      : ctx(0, withMtu(env.ports, internal_mtu), capacity, 0, fwd::kBackendStatsCapacity, capacity6) {
    fwd::onSnapshot(ctx, *env.snapshot, 0);
  }
  static std::vector<fwd::PortInfo> withMtu(std::vector<fwd::PortInfo> ports, uint16_t mtu) {
    ports[kInt].mtu = mtu;
    return ports;
  }
  // Runs `frame` received on the external port, `headroom` bytes of it usable; on
  // kForward `out` gets the frame as it would leave (start and length from the Action).
  fwd::Action run(const Bytes& frame, Bytes* out = nullptr, uint32_t now = 1000, size_t headroom = kHeadroom) {
    Bytes buffer(kHeadroom);
    buffer.insert(buffer.end(), frame.begin(), frame.end());
    const fwd::Action a = fwd::processFrame(ctx, *env.snapshot, kExt,
                                            std::span<std::byte>(buffer.data() + kHeadroom, frame.size()), now, headroom);
    if (out != nullptr && a.kind == fwd::Action::Kind::kForward) {
      const size_t start = kHeadroom - a.prepended;
      const size_t length = a.length != 0 ? a.length : frame.size();
      out->assign(buffer.begin() + static_cast<ptrdiff_t>(start),
                  buffer.begin() + static_cast<ptrdiff_t>(start + length));
    }
    return a;
  }
  [[nodiscard]] uint64_t drops(fwd::DropReason r) const { return ctx.counters.drops[static_cast<size_t>(r)].get(); }
};

}  // namespace ng::test
