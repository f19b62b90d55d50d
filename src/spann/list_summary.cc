// Per-posting-list summaries: build, candidate lists of a filter, file and dirty log
// (list_summary.h, docs/formats.md "List summaries").
#include "src/spann/list_summary.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord {
namespace {

constexpr uint32_t kSummaryMagic = 0x534C4456;  // "VDLS"
constexpr uint32_t kSummaryVersion = 2;         // 2: the index's lists_written counter
constexpr uint32_t kDirtyMagic = 0x44534456;    // "VDSD"
constexpr uint32_t kDirtyVersion = 1;

std::string IntKey(int64_t n) {
  std::string k(9, 'i');
  for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)));
  return k;
}

// Typed value key of a payload value the summaries keep exactly; nullopt for other values.
std::optional<std::string> ValueKey(const Json& v) {
  if (v.is_string()) return "s" + v.get_ref<const std::string&>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "b1" : "b0");
  int64_t n;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    n = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    n = v.get<int64_t>();
  } else {
    return std::nullopt;
  }
  return IntKey(n);
}

float FloatDown(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) > d) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}
float FloatUp(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) < d) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

void Intersect(std::optional<Roaring>* acc, std::optional<Roaring> c) {
  if (!c) return;
  if (!*acc) {
    *acc = std::move(c);
  } else {
    **acc &= *c;
  }
}

// Little-endian serialization helpers.
void PutU32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string* s, uint64_t v) { s->append(reinterpret_cast<const char*>(&v), 8); }
void PutBitmap(std::string* s, const Roaring& r) {
  const size_t n = r.getSizeInBytes(true);
  PutU32(s, static_cast<uint32_t>(n));
  const size_t at = s->size();
  s->resize(at + n);
  r.write(s->data() + at, true);
}

class Reader {
 public:
  Reader(const std::string& data, std::string path) : d_(data), path_(std::move(path)) {}
  Status Need(size_t n, const char* what) {
    if (pos_ + n > d_.size()) {
      return Status::Corruption("list summary file '" + path_ + "': truncated in " + what +
                                " at offset " + std::to_string(pos_));
    }
    return Status::OK();
  }
  Result<uint32_t> U32(const char* what) {
    VECTORD_RETURN_IF_ERROR(Need(4, what));
    pos_ += 4;
    return storage::GetU32(reinterpret_cast<const uint8_t*>(d_.data()) + pos_ - 4);
  }
  Result<uint64_t> U64(const char* what) {
    VECTORD_RETURN_IF_ERROR(Need(8, what));
    pos_ += 8;
    return storage::GetU64(reinterpret_cast<const uint8_t*>(d_.data()) + pos_ - 8);
  }
  Result<std::string> Bytes(size_t n, const char* what) {
    VECTORD_RETURN_IF_ERROR(Need(n, what));
    std::string s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  Result<Roaring> Bitmap(const char* what) {
    VECTORD_ASSIGN_OR_RETURN(uint32_t n, U32(what));
    VECTORD_RETURN_IF_ERROR(Need(n, what));
    try {
      Roaring r = Roaring::readSafe(d_.data() + pos_, n);
      if (r.getSizeInBytes(true) != n) throw std::runtime_error("size mismatch");
      pos_ += n;
      return r;
    } catch (const std::exception& e) {
      return Status::Corruption("list summary file '" + path_ + "': bad bitmap in " + what +
                                " at offset " + std::to_string(pos_) + ": " + e.what());
    }
  }
  Status Floats(std::vector<float>* out, size_t n, const char* what) {
    VECTORD_RETURN_IF_ERROR(Need(n * 4, what));
    out->resize(n);
    std::memcpy(out->data(), d_.data() + pos_, n * 4);
    pos_ += n * 4;
    return Status::OK();
  }
  size_t pos() const { return pos_; }

 private:
  const std::string& d_;
  std::string path_;
  size_t pos_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Build

ListSummaries::Builder::Builder(const std::vector<std::string>& fields, uint32_t num_lists)
    : out_(new ListSummaries()) {
  out_->num_lists_ = num_lists;
  for (const auto& f : fields) {
    auto path = JsonPath::Parse(f, "summary field");
    if (!path.ok()) {
      status_ = path.status();
      continue;
    }
    Field fs;
    fs.path = std::move(path).value();
    out_->fields_.push_back(std::move(fs));
  }
  ids_.resize(out_->fields_.size());
  overflow_.assign(out_->fields_.size(), false);
}

void ListSummaries::Builder::EndList() {
  if (list_ == ~0u) return;
  for (size_t f = 0; f < out_->fields_.size(); ++f) {
    Field& fs = out_->fields_[f];
    if (overflow_[f]) {
      fs.overflow.add(list_);
    } else {
      for (uint32_t id : ids_[f]) fs.lists[id].add(list_);
    }
    ids_[f].clear();
    overflow_[f] = false;
  }
  list_ = ~0u;
}

void ListSummaries::Builder::BeginList(uint32_t list) {
  EndList();
  list_ = list;
}

void ListSummaries::Builder::Add(const Json* payload) {
  if (payload == nullptr || list_ == ~0u) return;
  for (size_t f = 0; f < out_->fields_.size(); ++f) {
    Field& fs = out_->fields_[f];
    values_.clear();
    fs.path.ResolveFlat(*payload, &values_);
    for (const Json* v : values_) {
      if (v->is_null()) continue;
      if (v->is_number()) {
        if (fs.min.empty()) {
          fs.min.assign(out_->num_lists_, std::numeric_limits<float>::infinity());
          fs.max.assign(out_->num_lists_, -std::numeric_limits<float>::infinity());
        }
        const double d = v->get<double>();
        fs.min[list_] = std::min(fs.min[list_], FloatDown(d));
        fs.max[list_] = std::max(fs.max[list_], FloatUp(d));
      }
      auto key = ValueKey(*v);
      if (!key) {
        fs.other.add(list_);
        continue;
      }
      if (overflow_[f]) continue;
      auto [it, inserted] = fs.ids.emplace(*key, static_cast<uint32_t>(fs.values.size()));
      if (inserted) {
        fs.values.push_back(*key);
        fs.lists.emplace_back();
      }
      auto& ids = ids_[f];
      if (std::find(ids.begin(), ids.end(), it->second) == ids.end()) {
        if (ids.size() >= kMaxSummaryValues) {
          overflow_[f] = true;
          ids.clear();
        } else {
          ids.push_back(it->second);
        }
      }
    }
  }
}

std::unique_ptr<ListSummaries> ListSummaries::Builder::Finish(Roaring dirty) {
  EndList();
  for (auto& fs : out_->fields_) {
    for (auto& r : fs.lists) r.runOptimize();
    fs.overflow.runOptimize();
    fs.other.runOptimize();
  }
  dirty.runOptimize();
  out_->build_dirty_ = std::move(dirty);
  return std::move(out_);
}

// ---------------------------------------------------------------------------------------------
// Candidates

const ListSummaries::Field* ListSummaries::FieldFor(const JsonPath& key) const {
  for (const auto& f : fields_) {
    if (f.path.text == key.text) return &f;
  }
  return nullptr;
}

std::optional<Roaring> ListSummaries::ConditionCandidates(const Condition& c) const {
  switch (c.kind) {
    case Condition::Kind::kFilter:
      return c.filter ? FilterCandidates(*c.filter) : std::nullopt;
    case Condition::Kind::kMatch: {
      const Field* f = FieldFor(c.key);
      if (f == nullptr) return std::nullopt;
      const Match& m = c.match;
      Roaring out = f->overflow;
      auto add = [&](const std::string& key) {
        auto it = f->ids.find(key);
        if (it != f->ids.end()) out |= f->lists[it->second];
      };
      switch (m.kind) {
        case Match::Kind::kValue:
          if (const auto* s = std::get_if<std::string>(&m.value)) {
            add("s" + *s);
          } else if (const auto* b = std::get_if<bool>(&m.value)) {
            add(*b ? "b1" : "b0");
          } else {
            add(IntKey(std::get<int64_t>(m.value)));
          }
          return out;
        case Match::Kind::kAny:
          if (m.strings) {
            for (const auto& s : m.string_list) add("s" + s);
          } else {
            for (int64_t n : m.int_list) add(IntKey(n));
          }
          return out;
        case Match::Kind::kExcept: {
          // Any non-null value not listed: values of other kinds always count.
          out |= f->other;
          for (size_t i = 0; i < f->values.size(); ++i) {
            const std::string& v = f->values[i];
            bool listed = false;
            if (m.strings && v[0] == 's') {
              listed = std::binary_search(m.string_list.begin(), m.string_list.end(), v.substr(1));
            } else if (!m.strings && v[0] == 'i') {
              uint64_t u = 0;
              for (int b = 0; b < 8; ++b) u |= uint64_t{static_cast<uint8_t>(v[1 + b])} << (8 * b);
              listed =
                  std::binary_search(m.int_list.begin(), m.int_list.end(), static_cast<int64_t>(u));
            }
            if (!listed) out |= f->lists[i];
          }
          return out;
        }
        case Match::Kind::kText:
          return std::nullopt;
      }
      return std::nullopt;
    }
    case Condition::Kind::kRange: {
      const Field* f = FieldFor(c.key);
      if (f == nullptr) return std::nullopt;
      Roaring out;
      if (f->min.empty()) return out;  // no list has a number
      const Range& r = c.range;
      // A list may match when its hull [min, max] meets the range: max above the lower bound and
      // min below the upper one (a list without numbers has min = +inf > max = -inf).
      const double inf = std::numeric_limits<double>::infinity();
      const double lower = r.gt ? *r.gt : (r.gte ? *r.gte : -inf);
      const double upper = r.lt ? *r.lt : (r.lte ? *r.lte : inf);
      const bool lower_strict = r.gt.has_value(), upper_strict = r.lt.has_value();
      if (r.gt && r.gte && *r.gte > *r.gt) return ConditionCandidatesSlow(*f, r);
      if (r.lt && r.lte && *r.lte < *r.lt) return ConditionCandidatesSlow(*f, r);
      std::vector<uint32_t> hit;
      for (uint32_t l = 0; l < num_lists_; ++l) {
        const double lo = f->min[l], hi = f->max[l];
        const bool above = lower_strict ? hi > lower : hi >= lower;
        const bool below = upper_strict ? lo < upper : lo <= upper;
        if (above && below && lo <= hi) hit.push_back(l);
      }
      if (!hit.empty()) out.addMany(hit.size(), hit.data());
      return out;
    }
    default:
      return std::nullopt;  // values_count, is_empty, is_null, has_id, nested: not summarized
  }
}

Roaring ListSummaries::ConditionCandidatesSlow(const Field& f, const Range& r) const {
  Roaring out;
  for (uint32_t l = 0; l < num_lists_; ++l) {
    const float lo = f.min[l], hi = f.max[l];
    if (lo > hi) continue;
    // Some number in [lo, hi] may satisfy every bound (the hull is a superset).
    if (r.gt && !(double(hi) > *r.gt)) continue;
    if (r.gte && !(double(hi) >= *r.gte)) continue;
    if (r.lt && !(double(lo) < *r.lt)) continue;
    if (r.lte && !(double(lo) <= *r.lte)) continue;
    out.add(l);
  }
  return out;
}

std::optional<Roaring> ListSummaries::FilterCandidates(const Filter& f) const {
  std::optional<Roaring> acc;
  for (const auto& c : f.must) Intersect(&acc, ConditionCandidates(c));
  // should / min_should: a list may match only when one of the conditions may match there (for
  // min_should at least min_count must, so the union is a superset).
  auto any_of = [&](const std::vector<Condition>& cs) -> std::optional<Roaring> {
    Roaring u;
    for (const auto& c : cs) {
      auto r = ConditionCandidates(c);
      if (!r) return std::nullopt;
      u |= *r;
    }
    return u;
  };
  if (!f.should.empty()) Intersect(&acc, any_of(f.should));
  if (f.min_should) Intersect(&acc, any_of(f.min_should->conditions));
  // must_not: summaries cannot prove that every row of a list matches a condition.
  return acc;
}

std::optional<Roaring> ListSummaries::Candidates(const Filter& filter) const {
  return FilterCandidates(filter);
}

std::vector<std::string> ListSummaries::fields() const {
  std::vector<std::string> out;
  for (const auto& f : fields_) out.push_back(f.path.text);
  return out;
}

size_t ListSummaries::MemoryBytes() const {
  size_t b = build_dirty_.getSizeInBytes(false);
  for (const auto& f : fields_) {
    b += f.overflow.getSizeInBytes(false) + f.other.getSizeInBytes(false);
    b += (f.min.size() + f.max.size()) * sizeof(float);
    for (size_t i = 0; i < f.values.size(); ++i) {
      // Value string, its dictionary entry, its bitmap.
      b += 2 * f.values[i].size() + 48 + f.lists[i].getSizeInBytes(false);
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// File

Status ListSummaries::Write(const std::string& path, const Roaring& dirty) const {
  std::string s;
  PutU32(&s, kSummaryMagic);
  PutU32(&s, kSummaryVersion);
  PutU32(&s, num_lists_);
  PutU64(&s, lists_written_);
  PutU32(&s, static_cast<uint32_t>(fields_.size()));
  for (const auto& f : fields_) {
    PutU32(&s, static_cast<uint32_t>(f.path.text.size()));
    s += f.path.text;
    PutU32(&s, static_cast<uint32_t>(f.values.size()));
    for (size_t i = 0; i < f.values.size(); ++i) {
      PutU32(&s, static_cast<uint32_t>(f.values[i].size()));
      s += f.values[i];
      PutBitmap(&s, f.lists[i]);
    }
    PutBitmap(&s, f.overflow);
    PutBitmap(&s, f.other);
    PutU32(&s, f.min.empty() ? 0 : 1);
    if (!f.min.empty()) {
      s.append(reinterpret_cast<const char*>(f.min.data()), f.min.size() * sizeof(float));
      s.append(reinterpret_cast<const char*>(f.max.data()), f.max.size() * sizeof(float));
    }
  }
  PutBitmap(&s, dirty);
  PutU64(&s, s.size() + 8);  // total file size, checksum included
  PutU32(&s, storage::Crc32c(0, s.data(), s.size()));
  PutU32(&s, 0);  // pad: the file is a multiple of 4 bytes plus the size field

  return storage::WriteFileAtomic(path, s);
}

Result<std::unique_ptr<ListSummaries>> ListSummaries::Read(const std::string& path,
                                                           uint32_t num_lists) {
  VECTORD_ASSIGN_OR_RETURN(std::string data, storage::ReadWholeFile(path, "list summary file"));
  auto bad = [&](const std::string& what) {
    return Status::Corruption("list summary file '" + path + "': " + what);
  };
  if (data.size() < 32) return bad("too short (" + std::to_string(data.size()) + " bytes)");
  // Trailer: u64 size, u32 crc, u32 pad.
  uint64_t size;
  uint32_t crc;
  std::memcpy(&size, data.data() + data.size() - 16, 8);
  std::memcpy(&crc, data.data() + data.size() - 8, 4);
  if (size != data.size() - 8) {
    return bad("size field says " + std::to_string(size + 8) + " bytes, the file has " +
               std::to_string(data.size()));
  }
  if (storage::Crc32c(0, data.data(), data.size() - 8) != crc) return bad("checksum mismatch");
  data.resize(data.size() - 16);
  Reader r(data, path);
  VECTORD_ASSIGN_OR_RETURN(uint32_t magic, r.U32("header"));
  VECTORD_ASSIGN_OR_RETURN(uint32_t version, r.U32("header"));
  if (magic != kSummaryMagic) return bad("bad magic");
  if (version != 1 && version != kSummaryVersion) {
    return bad("version " + std::to_string(version) + ", expected 1 or " +
               std::to_string(kSummaryVersion));
  }
  std::unique_ptr<ListSummaries> out(new ListSummaries());
  VECTORD_ASSIGN_OR_RETURN(out->num_lists_, r.U32("header"));
  // Version 1 did not record the counter: unknown, so no list is vouched for.
  out->lists_written_ = kUnknownListsWritten;
  if (version >= 2) {
    VECTORD_ASSIGN_OR_RETURN(out->lists_written_, r.U64("header"));
  }
  // Splits add lists after the summaries were built; lists never go away (merged ones stay, empty).
  if (out->num_lists_ > num_lists) {
    return bad("describes " + std::to_string(out->num_lists_) + " lists, the index has only " +
               std::to_string(num_lists));
  }
  VECTORD_ASSIGN_OR_RETURN(uint32_t nfields, r.U32("header"));
  for (uint32_t i = 0; i < nfields; ++i) {
    Field f;
    VECTORD_ASSIGN_OR_RETURN(uint32_t len, r.U32("field name"));
    VECTORD_ASSIGN_OR_RETURN(std::string name, r.Bytes(len, "field name"));
    auto p = JsonPath::Parse(name, "summary field");
    if (!p.ok()) return bad("bad field '" + name + "'");
    f.path = std::move(p).value();
    VECTORD_ASSIGN_OR_RETURN(uint32_t nvalues, r.U32("values"));
    for (uint32_t v = 0; v < nvalues; ++v) {
      VECTORD_ASSIGN_OR_RETURN(uint32_t vlen, r.U32("value"));
      VECTORD_ASSIGN_OR_RETURN(std::string key, r.Bytes(vlen, "value"));
      if (key.empty() || (key[0] != 's' && key[0] != 'i' && key[0] != 'b')) {
        return bad("bad value in field '" + name + "'");
      }
      VECTORD_ASSIGN_OR_RETURN(Roaring lists, r.Bitmap("value lists"));
      if (!lists.isEmpty() && lists.maximum() >= out->num_lists_)
        return bad("list id out of range");
      if (!f.ids.emplace(key, v).second) return bad("duplicate value in field '" + name + "'");
      f.values.push_back(std::move(key));
      f.lists.push_back(std::move(lists));
    }
    VECTORD_ASSIGN_OR_RETURN(f.overflow, r.Bitmap("overflow lists"));
    VECTORD_ASSIGN_OR_RETURN(f.other, r.Bitmap("other lists"));
    VECTORD_ASSIGN_OR_RETURN(uint32_t has_numbers, r.U32("bounds"));
    if (has_numbers > 1) return bad("bad bounds flag");
    if (has_numbers) {
      VECTORD_RETURN_IF_ERROR(r.Floats(&f.min, out->num_lists_, "bounds"));
      VECTORD_RETURN_IF_ERROR(r.Floats(&f.max, out->num_lists_, "bounds"));
    }
    out->fields_.push_back(std::move(f));
  }
  VECTORD_ASSIGN_OR_RETURN(out->build_dirty_, r.Bitmap("dirty rows"));
  if (r.pos() != data.size()) return bad("trailing bytes");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dirty log: header {u32 magic, u32 version}, then records {u32 row, u32 crc32c(row)}.

Result<std::unique_ptr<DirtyLog>> DirtyLog::Open(const std::string& path, Roaring* rows) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return storage::ErrnoStatus(path, "open");
  std::unique_ptr<DirtyLog> log(new DirtyLog(path, fd, 0));
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return storage::ErrnoStatus(path, "stat");
  uint64_t size = static_cast<uint64_t>(sb.st_size);
  if (size < 8) {
    // New (or torn while being created: nothing was logged yet).
    const uint32_t hdr[2] = {kDirtyMagic, kDirtyVersion};
    VECTORD_RETURN_IF_ERROR(storage::PwriteAll(fd, hdr, 8, 0, path));
    if (::ftruncate(fd, 8) != 0) return storage::ErrnoStatus(path, "truncate");
    log->size_ = 8;
    return log;
  }
  std::vector<uint32_t> data(size / 4);
  VECTORD_RETURN_IF_ERROR(storage::PreadAll(fd, data.data(), data.size() * 4, 0, path));
  if (data[0] != kDirtyMagic || data[1] != kDirtyVersion) {
    return Status::Corruption("summary dirty log '" + path + "': bad header");
  }
  const uint64_t records = (size - 8) / 8;
  for (uint64_t i = 0; i < records; ++i) {
    const uint32_t row = data[2 + 2 * i], crc = data[3 + 2 * i];
    if (storage::Crc32c(0, &row, 4) != crc) {
      if (i + 1 == records) {  // torn last record: never committed
        size = 8 + i * 8;
        break;
      }
      return Status::Corruption("summary dirty log '" + path + "': checksum mismatch in record " +
                                std::to_string(i));
    }
    rows->add(row);
  }
  size = std::min<uint64_t>(size, 8 + records * 8);
  if (size != static_cast<uint64_t>(sb.st_size) && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return storage::ErrnoStatus(path, "truncate");
  }
  log->size_ = size;
  return log;
}

DirtyLog::~DirtyLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status DirtyLog::Append(const std::vector<uint32_t>& rows, bool sync) {
  if (rows.empty()) return Status::OK();
  std::vector<uint32_t> rec;
  rec.reserve(rows.size() * 2);
  for (uint32_t r : rows) {
    rec.push_back(r);
    rec.push_back(storage::Crc32c(0, &r, 4));
  }
  VECTORD_RETURN_IF_ERROR(storage::PwriteAll(fd_, rec.data(), rec.size() * 4, size_, path_));
  if (sync && ::fdatasync(fd_) != 0) return storage::ErrnoStatus(path_, "fdatasync");
  size_ += rec.size() * 4;
  return Status::OK();
}

Result<std::unique_ptr<DirtyLog>> WriteSummariesAndEmptyLog(const ListSummaries& summaries,
                                                            const Roaring& dirty,
                                                            const std::string& dir) {
  VECTORD_RETURN_IF_ERROR(summaries.Write(dir + "/" + kListSummaryFile, dirty));
  const std::string log_path = dir + "/" + kListSummaryDirtyLog;
  const std::string tmp = log_path + ".new";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  Roaring none;
  VECTORD_ASSIGN_OR_RETURN(auto log, DirtyLog::Open(tmp, &none));
  if (::rename(tmp.c_str(), log_path.c_str()) != 0) {
    return storage::ErrnoStatus(log_path, "rename");
  }
  return log;
}

}  // namespace vectord
