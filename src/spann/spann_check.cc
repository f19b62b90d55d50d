// Offline check of a SPANN index (spann_check.h).
#include "src/spann/spann_check.h"

#include <sstream>

#include "index/posting_codec.h"
#include "src/spann/spann_index.h"
#include "storage/posting_store.h"

namespace vectord {

std::string SpannCheckReport::ToString() const {
  std::ostringstream s;
  s << lists << " lists, " << pages << " pages, " << entries << " entries (" << valid_entries
    << " valid, " << stale_entries << " stale, " << dead_entries << " of deleted rows), "
    << live_rows << " live rows, " << unreachable << " unreachable, largest list "
    << max_list_entries << " entries";
  for (const auto& p : problems) s << "\n  problem: " << p;
  return s.str();
}

Result<SpannCheckReport> CheckSpannIndex(const SpannIndex& index, const Roaring& live) {
  SpannCheckReport r;
  const uint64_t durable = index.durable_rows();
  auto problem = [&](const std::string& p) {
    if (r.problems.size() < 20) r.problems.push_back(p);
  };
  std::vector<uint8_t> reached((durable + 7) / 8, 0);
  std::vector<uint8_t> payload;
  const index::CentroidIndex& nav = index.navigation();
  for (uint32_t l = 0; l < index.num_lists(); ++l) {
    const storage::PostingListInfo& info = index.list_info(l);
    if (!nav.alive(l)) {
      if (info.pages != 0 || info.count != 0) {
        problem("list " + std::to_string(l) + " is removed but holds " +
                std::to_string(info.count) + " entries");
      }
      continue;
    }
    r.lists++;
    r.pages += info.pages;
    if (info.count == 0) continue;
    Status st = index.store().ReadList(l, info, &payload);
    if (!st.ok()) {
      problem(st.ToString());
      continue;
    }
    index::PostingView v;
    st = index.codec().View(payload.data(), payload.size(), l, &v);
    if (!st.ok()) {
      problem(st.ToString());
      continue;
    }
    if (v.count != info.count) {
      problem("list " + std::to_string(l) + ": directory says " + std::to_string(info.count) +
              " entries, the payload " + std::to_string(v.count));
    }
    r.entries += v.count;
    uint32_t valid = 0;
    for (uint32_t e = 0; e < v.count; ++e) {
      const uint32_t row = v.id(e);
      if (row >= index.assigned_rows() || v.version(e) != index.version(row)) {
        r.stale_entries++;
      } else if (!live.contains(row)) {
        r.dead_entries++;
      } else {
        r.valid_entries++;
        ++valid;
        if (row < durable) reached[row >> 3] |= static_cast<uint8_t>(1u << (row & 7));
      }
    }
    r.max_list_entries = std::max(r.max_list_entries, valid);
  }
  for (auto it = live.begin(); it != live.end() && *it < durable; ++it) {
    r.live_rows++;
    if (!(reached[*it >> 3] >> (*it & 7) & 1)) {
      if (r.unreachable == 0) problem("live row " + std::to_string(*it) + " is in no list");
      r.unreachable++;
    }
  }
  return r;
}

}  // namespace vectord
