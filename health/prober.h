#pragma once
// The seam between the health engine and the network (STYLE.md principle 4): the real
// implementation is AsioProber; tests pass fakes that script outcomes.

#include <chrono>
#include <functional>

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
  // same spec. Whatever an in-flight probe needs it must own (handlers hold it): the
  // engine destroys the io_context, and with it unfinished handlers, before the prober.
  virtual void probe(const ProbeSpec& spec, std::chrono::milliseconds timeout,
                     std::function<void(ProbeOutcome)> done) = 0;
};

}  // namespace ng::health
