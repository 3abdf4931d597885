#pragma once
// A fixed-size array in memory backed by transparent huge pages (2 MiB) where the kernel
// allows it, for the large per-worker tables (flow table index and records).
//
// Why: a million-flow table spans ~80 MiB; with 4 KiB pages every random lookup misses
// the TLB and pays a page walk, and the walks evict everything else the worker touches
// (neighbour cache, snapshot). 2 MiB pages cut the entries needed 512-fold. DPDK's own
// hugepage memory is not used here so this library stays free of DPDK; with THP set to
// "never" the array still works on 4 KiB pages.
//
// Allocation happens at construction only (control thread, start-up); elements are
// value-initialised there, so no page is first touched on the hot path.

#include <cstddef>
#include <new>
#include <utility>

namespace ng::lb {

namespace detail {
// Maps at least `bytes` of zeroed, 2 MiB-aligned memory and asks for huge pages.
// Returns the aligned address; `*mapping`/`*mapped` receive what to unmap. Throws
// std::bad_alloc on failure.
void* mapHuge(size_t bytes, void** mapping, size_t* mapped);
void unmapHuge(void* mapping, size_t mapped) noexcept;
}  // namespace detail

template <typename T>
class HugeArray {
 public:
  HugeArray() = default;
  explicit HugeArray(size_t n) : size_(n) {
    data_ = static_cast<T*>(detail::mapHuge(n * sizeof(T), &mapping_, &mapped_));
    for (size_t i = 0; i < n; ++i) new (data_ + i) T();
  }
  ~HugeArray() { reset(); }
  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;
  HugeArray(HugeArray&& o) noexcept { swap(o); }
  HugeArray& operator=(HugeArray&& o) noexcept {
    reset();
    swap(o);
    return *this;
  }

  T& operator[](size_t i) noexcept { return data_[i]; }
  const T& operator[](size_t i) const noexcept { return data_[i]; }
  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] size_t size() const noexcept { return size_; }

 private:
  // Element types are trivially destructible (asserted where the element type is
  // complete: the table's .cc), so releasing the mapping is enough.
  void reset() noexcept {
    if (mapping_ != nullptr) detail::unmapHuge(mapping_, mapped_);
    data_ = nullptr;
    mapping_ = nullptr;
    mapped_ = 0;
    size_ = 0;
  }
  void swap(HugeArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapping_, o.mapping_);
    std::swap(mapped_, o.mapped_);
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;
  size_t mapped_ = 0;
};

}  // namespace ng::lb
