// External sort of fixed-size records (see external_sort.h).
#include "src/spann/external_sort.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vectord {

uint64_t RecordKey(const uint8_t* rec) {
  uint32_t a, b;
  std::memcpy(&a, rec, 4);
  std::memcpy(&b, rec + 4, 4);
  return (uint64_t{a} << 32) | b;
}

RunReader::RunReader(FILE* f, size_t rec, size_t buf_bytes)
    : f_(f), rec_(rec), buf_(std::max(rec, buf_bytes / rec * rec)) {}

RunReader::~RunReader() {
  if (f_ != nullptr) std::fclose(f_);
}

const uint8_t* RunReader::Peek() {
  if (pos_ == len_) {
    len_ = std::fread(buf_.data(), 1, buf_.size(), f_) / rec_ * rec_;
    pos_ = 0;
    if (len_ == 0) return nullptr;
  }
  return buf_.data() + pos_;
}

Status WriteSortedRun(const uint8_t* buf, size_t cnt, size_t rec, const std::string& path) {
  std::vector<std::pair<uint64_t, uint32_t>> order(cnt);
  for (size_t i = 0; i < cnt; ++i) order[i] = {RecordKey(buf + i * rec), static_cast<uint32_t>(i)};
  std::sort(order.begin(), order.end());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return Status::IOError("create '" + path + "': " + std::strerror(errno));
  bool ok = true;
  std::vector<uint8_t> block;
  const size_t block_recs = std::max<size_t>(1, (1u << 20) / rec);
  for (size_t i = 0; i < cnt && ok; i += block_recs) {
    const size_t m = std::min(block_recs, cnt - i);
    block.resize(m * rec);
    for (size_t j = 0; j < m; ++j) {
      std::memcpy(&block[j * rec], buf + size_t{order[i + j].second} * rec, rec);
    }
    ok = std::fwrite(block.data(), 1, block.size(), f) == block.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Status::IOError("write '" + path + "' failed (disk full?)");
  return Status::OK();
}

Status RunMerger::Open(const std::vector<std::string>& paths, size_t rec, size_t buffer_bytes) {
  const size_t per_run =
      std::max<size_t>(64 << 10, buffer_bytes / std::max<size_t>(1, paths.size()));
  for (const auto& path : paths) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return Status::IOError("open '" + path + "': " + std::strerror(errno));
    readers_.push_back(std::make_unique<RunReader>(f, rec, per_run));
    if (const uint8_t* r = readers_.back()->Peek()) {
      heap_.push({RecordKey(r), static_cast<uint32_t>(readers_.size() - 1)});
    }
  }
  return Status::OK();
}

const uint8_t* RunMerger::Next() {
  if (last_ >= 0) {
    RunReader& r = *readers_[last_];
    r.Next();
    if (const uint8_t* p = r.Peek()) heap_.push({RecordKey(p), static_cast<uint32_t>(last_)});
    last_ = -1;
  }
  if (heap_.empty()) return nullptr;
  const uint32_t ri = heap_.top().second;
  heap_.pop();
  last_ = static_cast<int32_t>(ri);
  return readers_[ri]->Peek();
}

ExternalSorter::ExternalSorter(std::string dir, std::string prefix, size_t record_bytes,
                               size_t buffer_bytes)
    : dir_(std::move(dir)),
      prefix_(std::move(prefix)),
      rec_(record_bytes),
      cap_(std::max<size_t>(1024, buffer_bytes / (record_bytes + 16))) {}

ExternalSorter::~ExternalSorter() {
  merger_.reset();
  for (const auto& p : paths_) std::remove(p.c_str());
}

size_t ExternalSorter::MemoryBytes() const { return cap_ * (rec_ + 16) + (size_t{1} << 20); }

Status ExternalSorter::Spill() {
  const std::string path = dir_ + "/" + prefix_ + "." + std::to_string(paths_.size()) + ".tmp";
  paths_.push_back(path);
  VECTORD_RETURN_IF_ERROR(WriteSortedRun(buf_.data(), n_, rec_, path));
  n_ = 0;
  return Status::OK();
}

Status ExternalSorter::Add(const uint8_t* rec) {
  if (finished_) return Status::FailedPrecondition("external sort: Add after Finish");
  if (buf_.empty()) buf_.resize(cap_ * rec_);
  if (n_ == cap_) VECTORD_RETURN_IF_ERROR(Spill());
  std::memcpy(&buf_[n_ * rec_], rec, rec_);
  ++n_;
  return Status::OK();
}

Status ExternalSorter::Finish() {
  if (finished_) return Status::OK();
  finished_ = true;
  if (paths_.empty()) {
    order_.resize(n_);
    for (size_t i = 0; i < n_; ++i) {
      order_[i] = {RecordKey(&buf_[i * rec_]), static_cast<uint32_t>(i)};
    }
    std::sort(order_.begin(), order_.end());
    return Status::OK();
  }
  if (n_ > 0) VECTORD_RETURN_IF_ERROR(Spill());
  std::vector<uint8_t>().swap(buf_);
  // The merge's read buffers share half of the sort buffer's budget.
  merger_ = std::make_unique<RunMerger>();
  return merger_->Open(paths_, rec_, cap_ * rec_ / 2);
}

const uint8_t* ExternalSorter::Next() {
  if (!finished_) return nullptr;
  if (!merger_) {
    if (next_ >= order_.size()) return nullptr;
    return &buf_[size_t{order_[next_++].second} * rec_];
  }
  return merger_->Next();
}

}  // namespace vectord
