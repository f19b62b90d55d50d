// Point store checkpoint files: see point_checkpoint.h and docs/formats.md.
#include "src/points/point_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord::points {
namespace {

constexpr char kMagic[8] = {'V', 'D', 'P', 'T', 'C', 'K', 'P', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kHeaderBytes = 64;
constexpr uint32_t kHeaderCrcAt = 60;
constexpr uint8_t kFieldTag = 'F', kEndTag = 'E';
constexpr size_t kBufBytes = size_t{1} << 20;

uint8_t TypeCode(PayloadSchemaType t) { return static_cast<uint8_t>(t); }

}  // namespace

Result<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Create(const std::string& path,
                                                                   const CheckpointHeader& h) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return storage::ErrnoStatus(tmp, "create");
  std::unique_ptr<CheckpointWriter> w(new CheckpointWriter(path, fd));
  uint8_t b[kHeaderBytes] = {};
  std::memcpy(b, kMagic, 8);
  storage::PutU32(b + 8, kVersion);
  storage::PutU32(b + 12, h.cid);
  storage::PutU64(b + 16, h.seq);
  storage::PutU64(b + 24, h.rows);
  storage::PutU64(b + 32, h.next_run_id);
  storage::PutU32(b + kHeaderCrcAt, storage::Crc32c(0, b, kHeaderCrcAt));
  w->Put(b, kHeaderBytes);
  return w;
}

CheckpointWriter::~CheckpointWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink((path_ + ".tmp").c_str());
}

void CheckpointWriter::Put(const void* p, size_t n) {
  crc_ = storage::Crc32c(crc_, p, n);
  const char* c = static_cast<const char*>(p);
  buf_.insert(buf_.end(), c, c + n);
  MaybeFlush();
}

void CheckpointWriter::MaybeFlush() {
  // Bounded buffer: a field of many values is written as it is serialized.
  if (buf_.size() >= kBufBytes && status_.ok()) status_ = Flush();
}

void CheckpointWriter::PutString(const std::string& s) {
  PutU32(static_cast<uint32_t>(s.size()));
  Put(s.data(), s.size());
}

void CheckpointWriter::PutBitmap(const Roaring& r) {
  const size_t n = r.getSizeInBytes(true);
  PutU32(static_cast<uint32_t>(n));
  const size_t at = buf_.size();
  buf_.resize(at + n);
  r.write(buf_.data() + at, true);
  crc_ = storage::Crc32c(crc_, buf_.data() + at, n);
  MaybeFlush();
}

Status CheckpointWriter::Flush() {
  VECTORD_RETURN_IF_ERROR(status_);
  if (buf_.empty()) return Status::OK();
  VECTORD_RETURN_IF_ERROR(
      storage::PwriteAll(fd_, buf_.data(), buf_.size(), written_, path_ + ".tmp"));
  written_ += buf_.size();
  buf_.clear();
  return Status::OK();
}

Status CheckpointWriter::AddLive(const Roaring& live) {
  PutBitmap(live);
  return Flush();
}

Status CheckpointWriter::AddField(const index::FieldIndex& f,
                                  const std::vector<RangeRuns::FileRun>& runs) {
  const uint8_t tag[4] = {kFieldTag, TypeCode(f.type()), 0, 0};
  Put(tag, 4);
  PutString(f.field());
  PutBitmap(f.indexed());
  PutBitmap(f.uncovered());
  uint32_t n = 0;
  f.ForEachKeyword([&](const std::string&, const Roaring&) { ++n; });
  PutU32(n);
  f.ForEachKeyword([&](const std::string& k, const Roaring& r) {
    PutString(k);
    PutBitmap(r);
  });
  n = 0;
  f.ForEachInteger([&](int64_t, const Roaring&) { ++n; });
  PutU32(n);
  f.ForEachInteger([&](int64_t k, const Roaring& r) {
    PutU64(static_cast<uint64_t>(k));
    PutBitmap(r);
  });
  const Roaring none;
  const Roaring* b0 = f.FindBool(false);
  const Roaring* b1 = f.FindBool(true);
  PutBitmap(b0 ? *b0 : none);
  PutBitmap(b1 ? *b1 : none);
  PutU32(static_cast<uint32_t>(runs.size()));
  for (const auto& r : runs) {
    PutU64(r.id);
    PutU64(r.entries);
    PutBitmap(*r.dead);
  }
  return Flush();
}

Status CheckpointWriter::Finish() {
  const std::string tmp = path_ + ".tmp";
  const uint8_t end[4] = {kEndTag, 0, 0, 0};
  Put(end, 4);
  const uint64_t crc_at = written_ + buf_.size() + 8;
  PutU64(crc_at);
  const uint32_t crc = crc_;
  buf_.insert(buf_.end(), reinterpret_cast<const char*>(&crc),
              reinterpret_cast<const char*>(&crc) + 4);
  VECTORD_RETURN_IF_ERROR(Flush());
  if (::fdatasync(fd_) != 0) return storage::ErrnoStatus(tmp, "fdatasync");
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return storage::ErrnoStatus(path_, "rename");
  finished_ = true;
  return storage::SyncDirectory(std::filesystem::path(path_).parent_path().string());
}

namespace {

// Sequential reader of a checkpoint file: bounds-checked, with the running CRC of what it read.
class Reader {
 public:
  Reader(std::string path, std::string data) : path_(std::move(path)), data_(std::move(data)) {}
  Status Bad(const std::string& what) const {
    return Status::Corruption("point store checkpoint '" + path_ + "': " + what +
                              (pos_ > 0 ? " (offset " + std::to_string(pos_) + ")" : ""));
  }
  bool Get(void* p, size_t n) {
    if (data_.size() - pos_ < n) return false;
    std::memcpy(p, data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool GetU32(uint32_t* v) { return Get(v, 4); }
  bool GetU64(uint64_t* v) { return Get(v, 8); }
  bool GetString(std::string* s) {
    uint32_t n;
    if (!GetU32(&n) || data_.size() - pos_ < n) return false;
    s->assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool GetBitmap(Roaring* r) {
    uint32_t n;
    if (!GetU32(&n) || data_.size() - pos_ < n) return false;
    // The serialization must fill exactly its n bytes.
    if (roaring_bitmap_portable_deserialize_size(data_.data() + pos_, n) != n) return false;
    try {
      *r = Roaring::readSafe(data_.data() + pos_, n);
    } catch (const std::exception&) {
      return false;
    }
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }
  size_t size() const { return data_.size(); }
  const char* data() const { return data_.data(); }

 private:
  const std::string path_;
  const std::string data_;
  size_t pos_ = 0;
};

}  // namespace

Result<CheckpointState> ReadCheckpoint(const std::string& path) {
  VECTORD_ASSIGN_OR_RETURN(std::string bytes,
                           storage::ReadWholeFile(path, "point store checkpoint"));
  Reader in(path, std::move(bytes));
  // Trailer first: nothing is parsed from a file whose checksum fails.
  if (in.size() < kHeaderBytes + 12) return in.Bad("shorter than header and trailer");
  uint64_t crc_at;
  uint32_t crc;
  std::memcpy(&crc_at, in.data() + in.size() - 12, 8);
  std::memcpy(&crc, in.data() + in.size() - 4, 4);
  if (crc_at != in.size() - 4) return in.Bad("bad trailer (file cut short?)");
  if (storage::Crc32c(0, in.data(), in.size() - 4) != crc) return in.Bad("checksum mismatch");
  uint8_t h[kHeaderBytes];
  in.Get(h, kHeaderBytes);
  if (std::memcmp(h, kMagic, 8) != 0) return in.Bad("bad magic");
  if (storage::GetU32(h + kHeaderCrcAt) != storage::Crc32c(0, h, kHeaderCrcAt)) {
    return in.Bad("header checksum mismatch");
  }
  if (storage::GetU32(h + 8) != kVersion) {
    return in.Bad("version " + std::to_string(storage::GetU32(h + 8)) +
                  ", this build reads version " + std::to_string(kVersion));
  }
  CheckpointState c;
  c.header.cid = storage::GetU32(h + 12);
  c.header.seq = storage::GetU64(h + 16);
  c.header.rows = storage::GetU64(h + 24);
  c.header.next_run_id = storage::GetU64(h + 32);
  if (!in.GetBitmap(&c.live)) return in.Bad("bad live-row bitmap");
  for (;;) {
    uint8_t tag[4];
    if (!in.Get(tag, 4)) return in.Bad("truncated field list");
    if (tag[0] == kEndTag) break;
    if (tag[0] != kFieldTag || tag[1] > TypeCode(PayloadSchemaType::kBool)) {
      return in.Bad("bad field tag");
    }
    CheckpointField f;
    f.type = static_cast<PayloadSchemaType>(tag[1]);
    auto& v = f.values;
    uint32_t n;
    if (!in.GetString(&f.field) || !in.GetBitmap(&v.indexed) || !in.GetBitmap(&v.uncovered) ||
        !in.GetU32(&n)) {
      return in.Bad("truncated field record");
    }
    for (uint32_t i = 0; i < n; ++i) {
      std::string k;
      Roaring r;
      if (!in.GetString(&k) || !in.GetBitmap(&r)) return in.Bad("bad keyword value");
      if (!v.keywords.emplace(std::move(k), std::move(r)).second) {
        return in.Bad("duplicate keyword value in field '" + f.field + "'");
      }
    }
    if (!in.GetU32(&n)) return in.Bad("truncated field record");
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t k;
      Roaring r;
      if (!in.GetU64(&k) || !in.GetBitmap(&r)) return in.Bad("bad integer value");
      if (!v.integers.emplace(static_cast<int64_t>(k), std::move(r)).second) {
        return in.Bad("duplicate integer value in field '" + f.field + "'");
      }
    }
    if (!in.GetBitmap(&v.bools[0]) || !in.GetBitmap(&v.bools[1]) || !in.GetU32(&n)) {
      return in.Bad("truncated field record");
    }
    for (uint32_t i = 0; i < n; ++i) {
      CheckpointField::RunRef r;
      if (!in.GetU64(&r.id) || !in.GetU64(&r.entries) || !in.GetBitmap(&r.dead)) {
        return in.Bad("bad range run reference");
      }
      f.runs.push_back(std::move(r));
    }
    c.fields.push_back(std::move(f));
  }
  if (in.pos() != in.size() - 12) return in.Bad("unexpected bytes after the field list");
  return c;
}

}  // namespace vectord::points
