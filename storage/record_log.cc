// RecordLog: header, then framed records {frame CRC, length, sequence number, durable mark,
// payload CRC, payload} (docs/formats.md "Record log"); torn tails are told from bit rot by the
// durable marks of the records after the damage.
#include "storage/record_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord::storage {
namespace {

// Header: 0 magic[8] | 8 version | 12 zero u32 | 16 first_seq u64 | 24 zero u32 |
// 28 CRC-32C of bytes [0, 28).
constexpr size_t kHdrVersion = 8, kHdrFirstSeq = 16, kHdrCrc = 28;
// Record frame: 0 header CRC (CRC-32C of frame bytes [4, 28)) | 4 payload length u32 |
// 8 seq u64 | 16 durable u64 | 24 payload CRC-32C | 28 payload.
constexpr size_t kFrCrc = 0, kFrLength = 4, kFrSeq = 8, kFrDurable = 16, kFrPayloadCrc = 24;
constexpr size_t kFrame = RecordLog::kFrameBytes;

std::string Ctx(const std::string& path) { return "record log '" + path + "'"; }

Status Errno(const std::string& path, const std::string& what) {
  return Status::IOError(Ctx(path) + ": " + what + ": " + std::strerror(errno));
}

std::string EncodeHeader(uint64_t first_seq) {
  uint8_t h[RecordLog::kHeaderBytes] = {};
  std::memcpy(h, RecordLog::kMagic, 8);
  PutU32(h + kHdrVersion, RecordLog::kVersion);
  PutU64(h + kHdrFirstSeq, first_seq);
  PutU32(h + kHdrCrc, Crc32c(0, h, kHdrCrc));
  return std::string(reinterpret_cast<const char*>(h), sizeof(h));
}

// Writes a log holding only a header to "<path>.tmp", fsyncs it and renames it to `path`. On
// success *fd is the new log, open read-write; on failure the .tmp is removed.
Status WriteEmptyLog(const std::string& path, uint64_t first_seq, int* fd) {
  const std::string tmp = path + ".tmp";
  const int f = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f < 0) return Errno(path, "create '" + tmp + "'");
  const std::string header = EncodeHeader(first_seq);
  Status s = PwriteAll(f, header.data(), header.size(), 0, tmp);
  if (s.ok() && ::fsync(f) != 0) s = Errno(path, "fsync '" + tmp + "'");
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Errno(path, "rename '" + tmp + "'");
  if (!s.ok()) {
    ::close(f);
    ::unlink(tmp.c_str());
    return s;
  }
  *fd = f;
  return Status::OK();
}

// One record as parsed from the file.
struct Frame {
  uint64_t offset = 0;
  uint32_t length = 0;
  uint64_t seq = 0;
  uint64_t durable = 0;
};

// Why the record at `off` is not the intact record `seq`; empty when it is. *header_ok is set
// when its frame header is intact and names `seq` with a payload inside the file, so its extent
// is known even though the payload is damaged.
std::string CheckRecord(const std::string& data, uint64_t off, uint64_t seq, Frame* f,
                        bool* header_ok) {
  *header_ok = false;
  const uint64_t left = data.size() - off;
  if (left < kFrame) {
    return "short frame (" + std::to_string(left) + " of " + std::to_string(kFrame) + " bytes)";
  }
  const auto* p = reinterpret_cast<const uint8_t*>(data.data()) + off;
  if (GetU32(p + kFrCrc) != Crc32c(0, p + 4, kFrame - 4)) return "frame checksum mismatch";
  f->offset = off;
  f->length = GetU32(p + kFrLength);
  f->seq = GetU64(p + kFrSeq);
  f->durable = GetU64(p + kFrDurable);
  if (f->seq != seq) {
    return "sequence number " + std::to_string(f->seq) + " where " + std::to_string(seq) +
           " was expected";
  }
  if (f->durable > f->seq) {
    return "durable mark " + std::to_string(f->durable) + " beyond its own sequence number";
  }
  if (f->length > left - kFrame) {
    return "payload of " + std::to_string(f->length) + " bytes runs past the end of the file (" +
           std::to_string(left - kFrame) + " bytes left)";
  }
  *header_ok = true;
  if (GetU32(p + kFrPayloadCrc) != Crc32c(0, p + kFrame, f->length)) {
    return "payload checksum mismatch";
  }
  return {};
}

// Searches data[from, end) for intact records with sequence numbers above `damaged_seq` and
// returns the one with the highest durable mark, or a Frame with offset 0 (inside the header, so
// never a record) when there is none. Cheap tests (length, sequence range) come before the CRCs:
// the scan costs a few comparisons per byte where nothing is found.
Frame FindLaterRecord(const std::string& data, uint64_t from, uint64_t damaged_seq) {
  Frame best;
  const auto* base = reinterpret_cast<const uint8_t*>(data.data());
  uint64_t q = from;
  while (q + kFrame <= data.size()) {
    const uint8_t* p = base + q;
    const uint32_t length = GetU32(p + kFrLength);
    const uint64_t seq = GetU64(p + kFrSeq);
    const uint64_t durable = GetU64(p + kFrDurable);
    // A record can be no further from `damaged_seq` than one per frame of the remaining bytes.
    const bool plausible = length <= data.size() - q - kFrame && seq > damaged_seq &&
                           seq - damaged_seq <= (data.size() - from) / kFrame + 1 && durable <= seq;
    if (plausible && GetU32(p + kFrCrc) == Crc32c(0, p + 4, kFrame - 4) &&
        GetU32(p + kFrPayloadCrc) == Crc32c(0, p + kFrame, length)) {
      if (best.offset == 0 || durable > best.durable) {
        best = Frame{q, length, seq, durable};
      }
      q += kFrame + length;  // the next record, if intact, starts right here
    } else {
      ++q;
    }
  }
  return best;
}

}  // namespace

RecordLog::~RecordLog() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<RecordLog>> RecordLog::Open(const std::string& path,
                                                   const ReplayFn& replay) {
  const std::string ctx = Ctx(path);
  const std::string tmp = path + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return Errno(path, "remove leftover '" + tmp + "'");
  }
  if (::access(path.c_str(), F_OK) != 0) {
    if (errno != ENOENT) return Errno(path, "access");
    int fd = -1;
    VECTORD_RETURN_IF_ERROR(WriteEmptyLog(path, 0, &fd));
    std::unique_ptr<RecordLog> log(new RecordLog(path, fd));
    log->end_ = kHeaderBytes;
    VECTORD_RETURN_IF_ERROR(SyncParentDir(path));
    return log;
  }

  VECTORD_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(path, "record log"));
  const auto* h = reinterpret_cast<const uint8_t*>(data.data());
  // The header is only ever written through a renamed temporary file, so it is never torn.
  if (data.size() < kHeaderBytes) {
    return Status::Corruption(ctx + ": " + std::to_string(data.size()) +
                              " bytes, shorter than the " + std::to_string(kHeaderBytes) +
                              "-byte header");
  }
  if (std::memcmp(h, kMagic, 8) != 0) {
    return Status::Corruption(ctx + ": bad magic in header (not a record log)");
  }
  if (GetU32(h + kHdrCrc) != Crc32c(0, h, kHdrCrc)) {
    return Status::Corruption(ctx + ": header checksum mismatch at offset 0");
  }
  if (GetU32(h + kHdrVersion) != kVersion) {
    return Status::Corruption(ctx + ": unsupported version " +
                              std::to_string(GetU32(h + kHdrVersion)) + " (expected " +
                              std::to_string(kVersion) + ")");
  }
  const uint64_t first_seq = GetU64(h + kHdrFirstSeq);

  // Parse and classify everything before replaying anything.
  std::vector<Frame> records;
  uint64_t pos = kHeaderBytes;
  uint64_t seq = first_seq;
  while (pos < data.size()) {
    Frame f;
    bool header_ok = false;
    const std::string why = CheckRecord(data, pos, seq, &f, &header_ok);
    if (why.empty()) {
      records.push_back(f);
      pos += kFrame + f.length;
      ++seq;
      continue;
    }
    // Only an append that was never made durable can be torn, and all appends after it are
    // later still: if any later intact record says this one was durable, this is damage.
    const Frame later = FindLaterRecord(data, header_ok ? pos + kFrame + f.length : pos + 1, seq);
    if (later.offset != 0 && later.durable > seq) {
      return Status::Corruption(
          ctx + ": record " + std::to_string(seq) + " at offset " + std::to_string(pos) +
          " is damaged (" + why + "), but record " + std::to_string(later.seq) + " at offset " +
          std::to_string(later.offset) +
          ", written after it, says it was already durable: bit rot or an overwritten log, not "
          "a torn append; refusing to drop committed records");
    }
    break;  // a torn tail: cut at pos
  }

  for (const Frame& f : records) {
    Status s = replay(f.seq, std::string_view(data.data() + f.offset + kFrame, f.length));
    if (!s.ok()) {
      return s.WithContext(ctx + ": replaying record " + std::to_string(f.seq) + " at offset " +
                           std::to_string(f.offset));
    }
  }

  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Errno(path, "open");
  std::unique_ptr<RecordLog> log(new RecordLog(path, fd));
  if (pos < data.size() && ::ftruncate(fd, static_cast<off_t>(pos)) != 0) {
    return Errno(path, "cut the torn tail at offset " + std::to_string(pos));
  }
  if (::fdatasync(fd) != 0) return Errno(path, "fdatasync");
  log->end_ = pos;
  log->cut_bytes_ = data.size() - pos;
  log->first_seq_ = first_seq;
  log->next_seq_ = seq;
  log->durable_ = seq;
  return log;
}

Status RecordLog::Fail(Status s) {
  failed_ = s;
  return s;
}

Status RecordLog::Append(std::string_view record, bool sync) {
  if (!failed_.ok()) {
    return Status::FailedPrecondition(Ctx(path_) + ": refused after an earlier failure (" +
                                      failed_.ToString() + "); reopen the log");
  }
  if (record.size() > kMaxRecordBytes) {
    return Status::InvalidArgument(Ctx(path_) + ": record of " + std::to_string(record.size()) +
                                   " bytes exceeds " + std::to_string(kMaxRecordBytes));
  }
  frame_.resize(kFrame + record.size());
  auto* p = reinterpret_cast<uint8_t*>(frame_.data());
  PutU32(p + kFrLength, static_cast<uint32_t>(record.size()));
  PutU64(p + kFrSeq, next_seq_);
  // The durable mark: records below it are on stable storage once this record is. For a synced
  // append that is every record before it (the fdatasync that follows covers them all); without
  // sync, those the last fdatasync covered.
  PutU64(p + kFrDurable, sync ? next_seq_ : durable_);
  PutU32(p + kFrPayloadCrc, Crc32c(0, record.data(), record.size()));
  PutU32(p + kFrCrc, Crc32c(0, p + 4, kFrame - 4));
  if (!record.empty()) std::memcpy(p + kFrame, record.data(), record.size());
  Status s = PwriteAll(fd_, frame_.data(), frame_.size(), end_, path_);
  if (!s.ok()) {
    // Leave no partial record behind for the next append to follow.
    if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) return Fail(s);
    return s;
  }
  end_ += frame_.size();
  ++next_seq_;
  return sync ? Sync() : Status::OK();
}

Status RecordLog::Sync() {
  if (!failed_.ok()) {
    return Status::FailedPrecondition(Ctx(path_) + ": refused after an earlier failure (" +
                                      failed_.ToString() + "); reopen the log");
  }
  // After a failed fdatasync the kernel may have dropped the dirty pages: nothing appended since
  // the last good sync can be trusted, so the log stops here.
  if (::fdatasync(fd_) != 0) return Fail(Errno(path_, "fdatasync"));
  durable_ = next_seq_;
  return Status::OK();
}

Status RecordLog::Reset() {
  if (!failed_.ok()) {
    return Status::FailedPrecondition(Ctx(path_) + ": refused after an earlier failure (" +
                                      failed_.ToString() + "); reopen the log");
  }
  int fd = -1;
  VECTORD_RETURN_IF_ERROR(WriteEmptyLog(path_, next_seq_, &fd));
  ::close(fd_);
  fd_ = fd;
  end_ = kHeaderBytes;
  first_seq_ = next_seq_;
  durable_ = next_seq_;
  // Until the directory is synced a power failure may bring the old log back; its records all
  // have sequence numbers below first_seq_, which a checkpoint taken before the Reset covers.
  return SyncParentDir(path_);
}

}  // namespace vectord::storage
