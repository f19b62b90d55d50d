// File helpers: see file_util.h.
#include "storage/file_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vectord::storage {

Status ErrnoStatus(const std::string& path, const std::string& what) {
  return Status::IOError("'" + path + "': " + what + ": " + std::strerror(errno));
}

Status PwriteAll(int fd, const void* data, size_t n, uint64_t off, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path, "write at offset " + std::to_string(off));
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::OK();
}

Status PreadAll(int fd, void* data, size_t n, uint64_t off, const std::string& path) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path, "read at offset " + std::to_string(off));
    }
    if (r == 0) {
      return Status::Corruption("'" + path + "' is truncated at offset " + std::to_string(off));
    }
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

}  // namespace vectord::storage
