// Checkpoint and journal records of the living SPANN index (spann_journal.h).
#include "src/spann/spann_journal.h"

#include <algorithm>
#include <cstring>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord {
namespace {

constexpr char kCheckpointMagic[8] = {'V', 'D', 'S', 'C', 'K', 'P', 'T', '1'};
constexpr uint32_t kCheckpointVersion = 1;
constexpr uint8_t kEditRecord = 1;  // the only record kind so far

class Writer {
 public:
  template <typename T>
  void Pod(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void Bytes(const void* p, size_t n) { s.append(static_cast<const char*>(p), n); }
  std::string s;
};

class Reader {
 public:
  explicit Reader(std::string_view v) : s(v) {}
  template <typename T>
  bool Pod(T* v) {
    if (s.size() < sizeof(T)) return false;
    std::memcpy(v, s.data(), sizeof(T));
    s.remove_prefix(sizeof(T));
    return true;
  }
  bool Bytes(void* p, size_t n) {
    if (s.size() < n) return false;
    if (n > 0) std::memcpy(p, s.data(), n);
    s.remove_prefix(n);
    return true;
  }
  // A count whose elements take at least `each` bytes: refused when the rest cannot hold them.
  bool Count(uint64_t* n, size_t each) {
    return Pod(n) && *n <= s.size() / std::max<size_t>(1, each);
  }
  std::string_view s;
};

void PutInfo(Writer* w, const storage::PostingListInfo& i) {
  w->Pod(i.first_page);
  w->Pod(i.pages);
  w->Pod(i.count);
  w->Pod(i.bytes);
}

bool GetInfo(Reader* r, storage::PostingListInfo* i) {
  return r->Pod(&i->first_page) && r->Pod(&i->pages) && r->Pod(&i->count) && r->Pod(&i->bytes);
}

}  // namespace

std::string EncodeSpannEdit(const SpannEdit& e, uint32_t dim) {
  Writer w;
  w.Pod(kEditRecord);
  w.Pod(e.durable_rows);
  w.Pod(e.assign_version);
  w.Pod(uint64_t{e.lists.size()});
  for (const auto& [id, info] : e.lists) {
    w.Pod(id);
    PutInfo(&w, info);
  }
  w.Pod(uint64_t{e.nav.size()});
  for (const auto& step : e.nav) {
    w.Pod(uint64_t{step.removed.size()});
    w.Bytes(step.removed.data(), step.removed.size() * 4);
    w.Pod(uint64_t{step.added_ids.size()});
    w.Bytes(step.added_ids.data(), step.added_ids.size() * 4);
    w.Bytes(step.added.data(), step.added_ids.size() * size_t{dim} * 4);
  }
  w.Pod(uint64_t{e.versions.size()});
  for (const auto& [row, v] : e.versions) {
    w.Pod(row);
    w.Pod(v);
  }
  w.Pod(uint64_t{e.counters.size()});
  w.Bytes(e.counters.data(), e.counters.size() * 8);
  return std::move(w.s);
}

Result<SpannEdit> DecodeSpannEdit(std::string_view record, uint32_t dim) {
  auto bad = [](const std::string& what) {
    return Status::Corruption("SPANN journal record: " + what);
  };
  Reader r(record);
  SpannEdit e;
  uint8_t kind = 0;
  uint64_t n = 0;
  if (!r.Pod(&kind) || kind != kEditRecord) return bad("unknown kind " + std::to_string(kind));
  if (!r.Pod(&e.durable_rows) || !r.Pod(&e.assign_version)) return bad("truncated header");
  if (!r.Count(&n, 20)) return bad("bad list count");
  e.lists.resize(n);
  for (auto& [id, info] : e.lists) {
    if (!r.Pod(&id) || !GetInfo(&r, &info)) return bad("truncated list");
  }
  if (!r.Count(&n, 16)) return bad("bad navigation step count");
  e.nav.resize(n);
  for (auto& step : e.nav) {
    if (!r.Count(&n, 4)) return bad("bad removal count");
    step.removed.resize(n);
    if (!r.Bytes(step.removed.data(), n * 4)) return bad("truncated removals");
    if (!r.Count(&n, 4 + size_t{dim} * 4)) return bad("bad addition count");
    step.added_ids.resize(n);
    step.added.resize(n * dim);
    if (!r.Bytes(step.added_ids.data(), n * 4) || !r.Bytes(step.added.data(), n * dim * 4)) {
      return bad("truncated additions");
    }
  }
  if (!r.Count(&n, 5)) return bad("bad version count");
  e.versions.resize(n);
  for (auto& [row, v] : e.versions) {
    if (!r.Pod(&row) || !r.Pod(&v)) return bad("truncated versions");
  }
  if (!r.Count(&n, 8)) return bad("bad counter count");
  e.counters.resize(n);
  if (!r.Bytes(e.counters.data(), n * 8)) return bad("truncated counters");
  if (!r.s.empty()) return bad(std::to_string(r.s.size()) + " trailing bytes");
  return e;
}

Status WriteSpannCheckpoint(const std::string& dir, const SpannCheckpoint& c) {
  Writer w;
  w.Bytes(kCheckpointMagic, 8);
  w.Pod(kCheckpointVersion);
  w.Pod(c.next_seq);
  w.Pod(c.durable_rows);
  w.Pod(c.assign_version);
  w.Pod(uint64_t{c.directory.size()});
  for (const auto& info : c.directory) PutInfo(&w, info);
  w.Pod(uint64_t{c.versions.size()});
  w.Bytes(c.versions.data(), c.versions.size());
  w.Pod(uint64_t{c.navigation.size()});
  w.Bytes(c.navigation.data(), c.navigation.size());
  w.Pod(uint64_t{c.counters.size()});
  w.Bytes(c.counters.data(), c.counters.size() * 8);
  const uint32_t crc = storage::Crc32c(0, w.s.data(), w.s.size());
  w.Pod(crc);
  return storage::WriteFileAtomic(dir + "/" + kSpannCheckpointFile, w.s);
}

Result<SpannCheckpoint> ReadSpannCheckpoint(const std::string& dir) {
  const std::string path = dir + "/" + kSpannCheckpointFile;
  VECTORD_ASSIGN_OR_RETURN(std::string data, storage::ReadWholeFile(path, "SPANN checkpoint"));
  auto bad = [&](const std::string& what) {
    return Status::Corruption("SPANN checkpoint '" + path + "': " + what);
  };
  if (data.size() < 12 || std::memcmp(data.data(), kCheckpointMagic, 8) != 0) {
    return bad("bad magic");
  }
  uint32_t stored = 0;
  std::memcpy(&stored, data.data() + data.size() - 4, 4);
  if (storage::Crc32c(0, data.data(), data.size() - 4) != stored) return bad("checksum mismatch");
  Reader r(std::string_view(data).substr(8, data.size() - 12));
  uint32_t version = 0;
  if (!r.Pod(&version) || version != kCheckpointVersion) {
    return bad("unsupported version " + std::to_string(version));
  }
  SpannCheckpoint c;
  uint64_t n = 0;
  if (!r.Pod(&c.next_seq) || !r.Pod(&c.durable_rows) || !r.Pod(&c.assign_version)) {
    return bad("truncated header");
  }
  if (!r.Count(&n, 16)) return bad("bad directory size");
  c.directory.resize(n);
  for (auto& info : c.directory) {
    if (!GetInfo(&r, &info)) return bad("truncated directory");
  }
  if (!r.Count(&n, 1) || n != c.durable_rows) return bad("versions do not match the rows");
  c.versions.resize(n);
  if (!r.Bytes(c.versions.data(), n)) return bad("truncated versions");
  if (!r.Count(&n, 1)) return bad("bad navigation size");
  c.navigation.resize(n);
  if (!r.Bytes(c.navigation.data(), n)) return bad("truncated navigation");
  if (!r.Count(&n, 8)) return bad("bad counter count");
  c.counters.resize(n);
  if (!r.Bytes(c.counters.data(), n * 8)) return bad("truncated counters");
  if (!r.s.empty()) return bad(std::to_string(r.s.size()) + " trailing bytes");
  return c;
}

}  // namespace vectord
