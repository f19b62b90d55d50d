// Oplog records: see oplog_record.h. Layout: version byte (1), varint number of ranges, then per
// range varint (first - end of the previous range) and varint (count - 1).
#include "src/points/oplog_record.h"

#include <algorithm>
#include <functional>

namespace vectord::points {
namespace {

constexpr uint8_t kRecordVersion = 1;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= uint64_t{b & 0x7Fu} << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

std::string EncodeOplogRecord(std::vector<InternalId> rows) {
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // first, count
  for (InternalId r : rows) {
    if (!ranges.empty() && ranges.back().first + ranges.back().second == r) {
      ++ranges.back().second;
    } else {
      ranges.emplace_back(r, 1);
    }
  }
  std::string out(1, static_cast<char>(kRecordVersion));
  PutVarint(&out, ranges.size());
  uint64_t end = 0;
  for (const auto& [first, count] : ranges) {
    PutVarint(&out, first - end);
    PutVarint(&out, count - 1);
    end = first + count;
  }
  return out;
}

Status DecodeOplogRecord(uint64_t seq, std::string_view in,
                         const std::function<void(InternalId, uint64_t)>& add) {
  auto bad = [&](const std::string& what) {
    return Status::Corruption("oplog record " + std::to_string(seq) + ": " + what);
  };
  if (in.empty() || static_cast<uint8_t>(in[0]) != kRecordVersion) {
    return bad("unknown version " +
               (in.empty() ? std::string("(empty)") : std::to_string(static_cast<uint8_t>(in[0]))));
  }
  in.remove_prefix(1);
  uint64_t n = 0, end = 0;
  if (!GetVarint(&in, &n)) return bad("truncated");
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t gap, count;
    if (!GetVarint(&in, &gap) || !GetVarint(&in, &count)) return bad("truncated");
    constexpr uint64_t kRows = uint64_t{1} << 32;
    if (gap >= kRows || count >= kRows || end + gap + count + 1 > kRows) {
      return bad("row range past 2^32");
    }
    const uint64_t first = end + gap;
    ++count;
    add(static_cast<InternalId>(first), count);
    end = first + count;
  }
  if (!in.empty()) return bad("trailing bytes");
  return Status::OK();
}

}  // namespace vectord::points
