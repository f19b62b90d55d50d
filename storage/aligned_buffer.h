// AlignedBuffer: a 4 KiB-aligned heap buffer for O_DIRECT reads and writes (posix_memalign).
// RAII, movable, not copyable. The allocation is always a whole number of 4096-byte pages, so a
// read of whole pages into a buffer of any size() rounded up to a page is in bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace vectord::storage {

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;

  // Allocates `bytes` (rounded up to whole pages); contents are uninitialized.
  explicit AlignedBuffer(size_t bytes = 0) { Resize(bytes); }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }

  // Sets size() to `bytes`. Reallocates only when the capacity must grow; the first
  // min(old size, bytes) bytes are preserved. Throws std::bad_alloc when memory is exhausted
  // (like std::vector).
  void Resize(size_t bytes) {
    if (bytes > capacity_) {
      const size_t cap = RoundUp(bytes);
      void* p = nullptr;
      if (posix_memalign(&p, kAlignment, cap) != 0) throw std::bad_alloc();
      if (data_ != nullptr) {
        std::memcpy(p, data_, size_);
        std::free(data_);
      }
      data_ = static_cast<uint8_t*>(p);
      capacity_ = cap;
    }
    size_ = bytes;
  }
  // Fills the whole allocation (capacity(), not only size()) with `value`.
  void Fill(uint8_t value) {
    if (data_ != nullptr) std::memset(data_, value, capacity_);
  }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }  // a multiple of kAlignment
  bool empty() const { return size_ == 0; }

  static constexpr size_t RoundUp(size_t bytes) {
    return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace vectord::storage
