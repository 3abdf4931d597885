#include "dataplane/lb/huge_array.h"

#include <sys/mman.h>

#include <cstdint>

namespace ng::lb::detail {
namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

void* mapHuge(size_t bytes, void** mapping, size_t* mapped) {
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Over-map by one huge page so the array can start on a 2 MiB boundary, which THP needs.
  const size_t total = rounded + kHugePage;
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (base + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  // Best effort: with THP disabled the kernel refuses and 4 KiB pages serve.
  (void)madvise(reinterpret_cast<void*>(aligned), rounded, MADV_HUGEPAGE);
  *mapping = p;
  *mapped = total;
  return reinterpret_cast<void*>(aligned);
}

void unmapHuge(void* mapping, size_t mapped) noexcept { munmap(mapping, mapped); }

}  // namespace ng::lb::detail
