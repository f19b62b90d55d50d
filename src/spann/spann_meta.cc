// The SPANN centroid file (see spann_meta.h, docs/spann.md "Centroid file").
#include "src/spann/spann_meta.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "storage/crc32c.h"

namespace vectord {
namespace {

template <typename T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(v));
}
void PutBlob(std::string* s, const std::string& b) {
  Put<uint64_t>(s, b.size());
  s->append(b);
}

struct Cursor {
  std::string_view s;
  template <typename T>
  bool Get(T* v) {
    if (s.size() < sizeof(T)) return false;
    std::memcpy(v, s.data(), sizeof(T));
    s.remove_prefix(sizeof(T));
    return true;
  }
  bool Blob(std::string_view* b) {
    uint64_t n;
    if (!Get(&n) || n > s.size()) return false;
    *b = s.substr(0, n);
    s.remove_prefix(n);
    return true;
  }
};

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open dir '" + dir + "': " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  return Status::OK();
}

}  // namespace

Status WriteSpannMeta(const std::string& dir, const SpannMeta& m) {
  std::string s(SpannMeta::kMagic, 8);
  Put<uint32_t>(&s, SpannMeta::kVersion);
  Put<uint32_t>(&s, m.dim);
  Put<uint8_t>(&s, static_cast<uint8_t>(m.dtype));
  Put<uint8_t>(&s, static_cast<uint8_t>(m.metric));
  Put<uint8_t>(&s, static_cast<uint8_t>(m.layout));
  Put<uint8_t>(&s, m.residual ? 1 : 0);
  Put<uint32_t>(&s, m.num_lists());
  Put<uint64_t>(&s, m.rows);
  PutBlob(&s, m.pq ? m.pq->Serialize() : std::string());
  PutBlob(&s, m.centroids->Serialize());
  s.append(reinterpret_cast<const char*>(m.list_hits.data()), m.list_hits.size() * 4);
  PutBlob(&s, m.build_info);
  Put<uint32_t>(&s, storage::Crc32c(0, s.data(), s.size()));

  const std::string path = dir + "/" + kSpannCentroidFile;
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("create '" + tmp + "': " + std::strerror(errno));
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = ::write(fd, s.data() + off, s.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      Status st = Status::IOError("write '" + tmp + "': " + std::strerror(errno));
      ::close(fd);
      return st;
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Status::IOError("sync '" + tmp + "': " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IOError("rename '" + tmp + "': " + std::strerror(errno));
  }
  return SyncDir(dir);
}

Result<SpannMeta> ReadSpannMeta(const std::string& dir) {
  const std::string path = dir + "/" + kSpannCentroidFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("SPANN centroid file '" + path + "' is missing");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& what) {
    return Status::Corruption("SPANN centroid file '" + path + "': " + what);
  };
  if (s.size() < 48 || std::memcmp(s.data(), SpannMeta::kMagic, 8) != 0) return bad("bad magic");
  uint32_t crc;
  std::memcpy(&crc, s.data() + s.size() - 4, 4);
  if (crc != storage::Crc32c(0, s.data(), s.size() - 4)) return bad("checksum mismatch");
  Cursor c{std::string_view(s).substr(8, s.size() - 12)};
  SpannMeta m;
  uint32_t version = 0, num_lists = 0;
  uint8_t dtype = 0, metric = 0, layout = 0, residual = 0;
  c.Get(&version);
  if (version != 1 && version != SpannMeta::kVersion) {
    return bad("unsupported version " + std::to_string(version) + " (this build reads 1 and " +
               std::to_string(SpannMeta::kVersion) + ")");
  }
  c.Get(&m.dim);
  c.Get(&dtype);
  c.Get(&metric);
  c.Get(&layout);
  c.Get(&residual);
  c.Get(&num_lists);
  c.Get(&m.rows);
  if (dtype > 3 || metric > 2 || layout > 2) {
    return bad("dtype " + std::to_string(dtype) + " metric " + std::to_string(metric) + " layout " +
               std::to_string(layout));
  }
  m.dtype = static_cast<DataType>(dtype);
  m.metric = static_cast<Distance>(metric);
  m.layout = static_cast<index::PostingLayout>(layout);
  m.residual = residual != 0;
  std::string_view blob;
  if (!c.Blob(&blob)) return bad("truncated PQ section");
  if (!blob.empty()) {
    auto pq = index::ProductQuantizer::Deserialize(blob);
    if (!pq.ok()) return pq.status().WithContext("SPANN centroid file '" + path + "'");
    m.pq = std::make_unique<index::ProductQuantizer>(std::move(pq).value());
  } else if (m.layout != index::PostingLayout::kFull) {
    return bad("PQ layout without PQ codebooks");
  }
  if (!c.Blob(&blob)) return bad("truncated centroid section");
  auto ci = index::CentroidIndex::Deserialize(blob);
  if (!ci.ok()) return ci.status().WithContext("SPANN centroid file '" + path + "'");
  m.centroids = std::move(ci).value();
  if (m.centroids->size() != num_lists || m.centroids->dim() != m.dim) {
    return bad("centroid section holds " + std::to_string(m.centroids->size()) +
               " centroids, header says " + std::to_string(num_lists));
  }
  m.list_hits.resize(num_lists);
  if (c.s.size() < size_t{num_lists} * 4) return bad("truncated list statistics");
  std::memcpy(m.list_hits.data(), c.s.data(), size_t{num_lists} * 4);
  c.s.remove_prefix(size_t{num_lists} * 4);
  if (!c.Blob(&blob)) return bad("truncated build info");
  m.build_info = std::string(blob);
  return m;
}

}  // namespace vectord
