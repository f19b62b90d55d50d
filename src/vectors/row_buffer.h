// RowBuffer: a growable byte array for a collection's in-RAM rows whose growth never copies them.
// A std::vector doubles by allocating anew and copying: at hundreds of MB (multi-vector FDE rows,
// 20 KiB each) one append under the collection's write lock then took ~1 s. RowBuffer keeps its
// bytes in an anonymous private mapping and grows it with mremap(MREMAP_MAYMOVE), which moves page
// table entries, not bytes. Like a vector, data() may change on growth; callers re-read it under
// the lock that guards appends. Not thread-safe by itself.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vectord {

class RowBuffer {
 public:
  RowBuffer() = default;
  ~RowBuffer();
  RowBuffer(const RowBuffer&) = delete;
  RowBuffer& operator=(const RowBuffer&) = delete;
  RowBuffer(RowBuffer&& o) noexcept;
  RowBuffer& operator=(RowBuffer&& o) noexcept;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

  // New bytes are zero. Throws std::bad_alloc when the mapping cannot grow.
  void resize(size_t n);
  void append(const uint8_t* p, size_t n);
  // Drops the first n bytes (a prefix moved elsewhere), giving their pages back.
  void erase_front(size_t n);
  void clear();

 private:
  void Reserve(size_t n);

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;  // bytes mapped, a multiple of the page size
};

}  // namespace vectord
