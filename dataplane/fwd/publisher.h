#pragma once
// The seam between the control plane and the workers: publishing a new snapshot.
//
// Real implementation: dataplane/dpdk/rcu_publisher.h (atomic pointer store + rte_rcu_qsbr
// grace period). Tests use an in-process fake. Called from the control thread only.

#include <cstdint>
#include <memory>

#include "dataplane/fwd/snapshot.h"

namespace ng::fwd {

class SnapshotPublisher {
 public:
  virtual ~SnapshotPublisher() = default;
  // Makes `next` the snapshot workers read from their next burst on, then frees the
  // previous one once no worker can still hold it. Blocks the caller (control thread)
  // for at most one grace period.
  virtual void publish(std::unique_ptr<const ForwardingSnapshot> next) = 0;
  // The snapshot most recently published (control thread's view), or nullptr.
  [[nodiscard]] virtual const ForwardingSnapshot* current() const noexcept = 0;
};

}  // namespace ng::fwd
