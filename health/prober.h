#pragma once
// The seam between the health engine and the network (STYLE.md principle 4): the real
// implementation is AsioProber; tests pass fakes that script outcomes.

#include <chrono>
#include <functional>
#include <memory>

#include "health/probe_outcome.h"
#include "health/probe_spec.h"

namespace asio {
class io_context;
}

namespace ng::health {

class Prober {
 public:
  virtual ~Prober() = default;

  // Starts one probe of `spec`. Called on the engine's io_context thread only, and the
  // prober runs its I/O on that same io_context (no threads of its own).
  // Contract: `done` is called exactly once, on that thread, never from inside probe()
  // itself, and within about `timeout` (the prober enforces it, e.g. with a timer). The
  // engine may have many probes of different specs in flight at once, never two of the
  // same spec. Destruction: the engine destroys the prober first, while the io_context
  // still exists (so that a prober can close sockets it keeps between probes), then the
  // io_context and with it unfinished handlers, which are never run after the prober is
  // gone. Whatever an in-flight probe needs it must own (handlers hold it).
  virtual void probe(const ProbeSpec& spec, std::chrono::milliseconds timeout,
                     std::function<void(ProbeOutcome)> done) = 0;

  // A handle on what the prober keeps for `spec` between probes (a kept-alive connection,
  // the parsed address), made or found now. The engine asks once per target and hands it
  // to probeWith() for each probe of that target, so that a probe need not look its
  // state up again (a hash lookup over thousands of specs per probe). Opaque to the
  // engine, which may hold it past forget(spec) and past the prober (it then refers to
  // nothing open). Engine thread only. By default nothing is kept: nullptr.
  virtual std::shared_ptr<void> keep(const ProbeSpec& spec) {
    (void)spec;
    return nullptr;
  }
  // probe() for a spec whose keep() handle is `kept` (the same contract). By default
  // the handle is not needed.
  virtual void probeWith(const ProbeSpec& spec, const std::shared_ptr<void>& kept,
                         std::chrono::milliseconds timeout, std::function<void(ProbeOutcome)> done) {
    (void)kept;
    probe(spec, timeout, std::move(done));
  }

  // The engine no longer probes `spec` (it left the target set): let go of whatever is
  // kept for it between probes, such as a kept-alive connection. A probe of it still in
  // flight completes as usual and keeps nothing. Engine thread only; by default nothing
  // is kept, so there is nothing to do.
  virtual void forget(const ProbeSpec& spec) { (void)spec; }
};

}  // namespace ng::health
