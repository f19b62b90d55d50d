// File helpers: see file_util.h.
#include "storage/file_util.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
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

Result<std::string> ReadWholeFile(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(what + " '" + path + "' is missing");
    return ErrnoStatus(path, "open");
  }
  struct stat sb;
  if (::fstat(fd, &sb) != 0) {
    ::close(fd);
    return ErrnoStatus(path, "stat");
  }
  std::string data(static_cast<size_t>(sb.st_size), '\0');
  Status st = PreadAll(fd, data.data(), data.size(), 0, path);
  ::close(fd);
  VECTORD_RETURN_IF_ERROR(st);
  return data;
}

Status WriteFileAtomic(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(tmp, "create");
  Status st = PwriteAll(fd, data.data(), data.size(), 0, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoStatus(tmp, "fsync");
  ::close(fd);
  if (!st.ok()) return st;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(path, "rename");
  return Status::OK();
}

Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(dir, "open directory");
  Status st;
  if (::fsync(fd) != 0) st = ErrnoStatus(dir, "fsync directory");
  ::close(fd);
  return st;
}

Status SyncParentDir(const std::string& path) {
  std::string copy = path;
  return SyncDirectory(::dirname(copy.data()));
}

}  // namespace vectord::storage
