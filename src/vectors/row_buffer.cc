// RowBuffer implementation (row_buffer.h).
#include "src/vectors/row_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace vectord {
namespace {

size_t PageSize() {
  static const size_t p = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return p;
}

size_t RoundUp(size_t n) { return (n + PageSize() - 1) / PageSize() * PageSize(); }

}  // namespace

RowBuffer::~RowBuffer() { clear(); }

RowBuffer::RowBuffer(RowBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      capacity_(std::exchange(o.capacity_, 0)) {}

RowBuffer& RowBuffer::operator=(RowBuffer&& o) noexcept {
  if (this != &o) {
    clear();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
  }
  return *this;
}

void RowBuffer::clear() {
  if (data_ != nullptr) ::munmap(data_, capacity_);
  data_ = nullptr;
  size_ = capacity_ = 0;
}

void RowBuffer::Reserve(size_t n) {
  if (n <= capacity_) return;
  // Grow by half at least: amortized O(1) appends, and no copy either way.
  const size_t want = RoundUp(std::max(n, capacity_ + capacity_ / 2));
  void* p = data_ == nullptr
                ? ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                : ::mremap(data_, capacity_, want, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<uint8_t*>(p);
  capacity_ = want;
}

void RowBuffer::resize(size_t n) {
  if (n > size_) {
    Reserve(n);
    // Pages never written are zero; bytes once written and cut off by a shrink are not.
    std::memset(data_ + size_, 0, n - size_);
  }
  size_ = n;
}

void RowBuffer::append(const uint8_t* p, size_t n) {
  if (n == 0) return;
  Reserve(size_ + n);
  std::memcpy(data_ + size_, p, n);
  size_ += n;
}

void RowBuffer::erase_front(size_t n) {
  n = std::min(n, size_);
  if (n == 0) return;
  const size_t rest = size_ - n;
  RowBuffer next;
  next.append(data_ + n, rest);  // the kept rows: typically the small RAM delta
  *this = std::move(next);
}

}  // namespace vectord
