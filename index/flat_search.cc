// Exact top-k search: every allowed row is scored with the dispatched kernels (index/distance.h)
// and kept in a bounded heap. The batch path gives each thread a share of the queries and scans
// the rows block by block for several queries at a time, so a block is read from memory once per
// group of queries; with fewer queries than threads the rows are split instead and merged.
#include "index/flat_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <thread>

#include "index/distance.h"

namespace vectord::index {
namespace {

// Internal result: the kernel's key (smaller is better; the negated inner product for Dot/Cosine)
// kept exactly in a double, and the row. Merging and ordering happen on keys, scores come last.
struct Hit {
  double key;
  uint32_t row;
};
inline bool HitLess(const Hit& a, const Hit& b) {
  return a.key < b.key || (a.key == b.key && a.row < b.row);
}

size_t ElementSize(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return 4;
    case DataType::kFloat16:
      return 2;
    case DataType::kUint8:
    case DataType::kInt8:
      return 1;
  }
  return 4;
}

inline bool IsLive(const uint64_t* live, size_t row) {
  return live == nullptr || ((live[row >> 6] >> (row & 63)) & 1u) != 0;
}

// Rows per block: about 64 KiB of row data, so a block stays in L2 while a group of queries
// scans it.
size_t BlockRows(const FlatView& v) {
  const size_t row_bytes = std::max<size_t>(1, size_t{v.dim} * ElementSize(v.dtype));
  return std::clamp<size_t>((64 << 10) / row_bytes / 16 * 16, 16, 1024);
}

// Keeps the k smallest (key, row) pairs in a max-heap; `worst_` caches the root's key so that the
// common case (a row that is not better) costs one compare.
template <typename Key>
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }

  // Inlined fast path: most rows are worse than the k-th best and cost one compare.
  void Push(Key key, uint32_t row) {
    if (key > worst_) return;
    PushSlow(key, row);
  }

  std::vector<Hit> Take() {
    std::vector<Hit> out;
    out.reserve(heap_.size());
    for (const Entry& e : heap_) out.push_back({static_cast<double>(e.key), e.row});
    std::sort(out.begin(), out.end(), HitLess);
    return out;
  }

 private:
  struct Entry {
    Key key;
    uint32_t row;
  };
  static bool Less(const Entry& a, const Entry& b) {
    return a.key < b.key || (a.key == b.key && a.row < b.row);
  }
  void PushSlow(Key key, uint32_t row) {
    if (heap_.size() < k_) {
      heap_.push_back({key, row});
      std::push_heap(heap_.begin(), heap_.end(), Less);
      if (heap_.size() == k_) worst_ = heap_.front().key;
      return;
    }
    const Entry& top = heap_.front();
    if (key == top.key && row > top.row) return;
    std::pop_heap(heap_.begin(), heap_.end(), Less);
    heap_.back() = {key, row};
    std::push_heap(heap_.begin(), heap_.end(), Less);
    worst_ = heap_.front().key;
  }

  size_t k_;
  // The k-th best key once k rows are held; until then the largest Key, so every row enters.
  Key worst_ = std::numeric_limits<Key>::has_infinity ? std::numeric_limits<Key>::infinity()
                                                      : std::numeric_limits<Key>::max();
  std::vector<Entry> heap_;
};

// One query's scan state, independent of the row type and metric.
class QueryScan {
 public:
  virtual ~QueryScan() = default;
  // Scores rows [begin, begin + n), skipping rows whose live bit is clear.
  virtual void ScanBlock(size_t begin, size_t n, const uint64_t* live) = 0;
  // Scores the listed rows (all < view.n).
  virtual void ScanRows(const uint32_t* rows, size_t n) = 0;
  virtual std::vector<Hit> Take() = 0;
};

// BlockFn(begin, n, Key* out) scores consecutive rows; it is called with n = 1 for listed rows.
template <typename Key, typename BlockFn>
class QueryScanImpl final : public QueryScan {
 public:
  QueryScanImpl(size_t k, size_t block, BlockFn fn) : top_(k), buf_(block), fn_(std::move(fn)) {}

  void ScanBlock(size_t begin, size_t n, const uint64_t* live) override {
    Key* buf = buf_.data();
    fn_(begin, n, buf);
    if (live == nullptr) {
      for (size_t i = 0; i < n; ++i) top_.Push(buf[i], static_cast<uint32_t>(begin + i));
    } else {
      for (size_t i = 0; i < n; ++i) {
        if (IsLive(live, begin + i)) top_.Push(buf[i], static_cast<uint32_t>(begin + i));
      }
    }
  }
  void ScanRows(const uint32_t* rows, size_t n) override {
    Key key;
    for (size_t i = 0; i < n; ++i) {
      fn_(rows[i], 1, &key);
      top_.Push(key, rows[i]);
    }
  }
  std::vector<Hit> Take() override { return top_.Take(); }

 private:
  TopK<Key> top_;
  std::vector<Key> buf_;
  BlockFn fn_;
};

template <typename Key, typename BlockFn>
std::unique_ptr<QueryScan> Make(size_t k, size_t block, BlockFn fn) {
  return std::make_unique<QueryScanImpl<Key, BlockFn>>(k, block, std::move(fn));
}

// Per-row kernel call wrapped as a block function: out[i] = sign * kernel(q, row i).
template <typename Key, typename T, typename Q, typename Fn>
auto PerRow(const FlatView& v, const Q* q, Fn kernel, bool negate) {
  const T* base = static_cast<const T*>(v.data);
  const size_t dim = v.dim;
  return [base, dim, q, kernel, negate](size_t begin, size_t n, Key* out) {
    const T* x = base + begin * dim;
    for (size_t i = 0; i < n; ++i, x += dim) {
      const Key s = static_cast<Key>(kernel(q, x, dim));
      out[i] = negate ? -s : s;
    }
  };
}

// Builds the scan for one query. `qbuf` receives the query converted to the row type when the
// exact integer kernels apply; it must outlive the scan.
std::unique_ptr<QueryScan> MakeScan(const FlatView& v, const float* q, size_t k,
                                    std::vector<uint8_t>& qbuf) {
  const size_t block = BlockRows(v);
  const size_t dim = v.dim;
  const bool ip = v.distance == Distance::kDot || v.distance == Distance::kCosine;
  const bool l1 = v.distance == Distance::kManhattan;
  switch (v.dtype) {
    case DataType::kFloat32:
      if (l1) return Make<float>(k, block, PerRow<float, float>(v, q, L1F32, false));
      if (ip) return Make<float>(k, block, PerRow<float, float>(v, q, IpF32, true));
      return Make<float>(k, block, PerRow<float, float>(v, q, L2SqrF32, false));
    case DataType::kFloat16:
      if (l1) return Make<float>(k, block, PerRow<float, uint16_t>(v, q, L1F32F16, false));
      if (ip) return Make<float>(k, block, PerRow<float, uint16_t>(v, q, IpF32F16, true));
      return Make<float>(k, block, PerRow<float, uint16_t>(v, q, L2SqrF32F16, false));
    case DataType::kUint8:
    case DataType::kInt8:
      break;
  }
  const bool is_u8 = v.dtype == DataType::kUint8;
  const float lo = is_u8 ? 0.0f : -128.0f;
  const float hi = is_u8 ? 255.0f : 127.0f;
  bool integer = !l1;
  for (size_t i = 0; i < dim && integer; ++i) {
    integer = q[i] >= lo && q[i] <= hi && std::nearbyint(q[i]) == q[i];
  }
  if (!integer) {
    if (is_u8) {
      if (l1) return Make<float>(k, block, PerRow<float, uint8_t>(v, q, L1F32U8, false));
      if (ip) return Make<float>(k, block, PerRow<float, uint8_t>(v, q, IpF32U8, true));
      return Make<float>(k, block, PerRow<float, uint8_t>(v, q, L2SqrF32U8, false));
    }
    if (l1) return Make<float>(k, block, PerRow<float, int8_t>(v, q, L1F32I8, false));
    if (ip) return Make<float>(k, block, PerRow<float, int8_t>(v, q, IpF32I8, true));
    return Make<float>(k, block, PerRow<float, int8_t>(v, q, L2SqrF32I8, false));
  }
  qbuf.resize(dim);
  for (size_t i = 0; i < dim; ++i) {
    const int x = static_cast<int>(q[i]);
    qbuf[i] = static_cast<uint8_t>(is_u8 ? x : static_cast<int8_t>(x));
  }
  if (is_u8) {
    const uint8_t* qi = qbuf.data();
    if (ip) return Make<int64_t>(k, block, PerRow<int64_t, uint8_t>(v, qi, IpU8, true));
    const uint8_t* base = static_cast<const uint8_t*>(v.data);
    // The hot path: many rows per kernel call.
    return Make<uint32_t>(k, block, [base, dim, qi](size_t begin, size_t n, uint32_t* out) {
      L2SqrU8Rows(qi, base + begin * dim, n, dim, out);
    });
  }
  const int8_t* qi = reinterpret_cast<const int8_t*>(qbuf.data());
  if (ip) return Make<int64_t>(k, block, PerRow<int64_t, int8_t>(v, qi, IpI8, true));
  return Make<int64_t>(k, block, PerRow<int64_t, int8_t>(v, qi, L2SqrI8, false));
}

std::vector<Neighbor> Finish(const FlatView& v, std::vector<Hit> hits, size_t k) {
  if (hits.size() > k) {
    std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(k), hits.end(),
                      HitLess);
    hits.resize(k);
  } else {
    std::sort(hits.begin(), hits.end(), HitLess);
  }
  std::vector<Neighbor> out;
  out.reserve(hits.size());
  for (const Hit& h : hits) {
    float score;
    switch (v.distance) {
      case Distance::kEuclid:
        score = static_cast<float>(std::sqrt(std::max(0.0, h.key)));
        break;
      case Distance::kDot:
      case Distance::kCosine:
        score = static_cast<float>(-h.key);
        break;
      default:
        score = static_cast<float>(h.key);
    }
    out.push_back({score, h.row});
  }
  return out;
}

// Scans `rows` [begin, end) (or the allowed rows in that range) for a group of queries.
void ScanGroup(const FlatView& v, const RowFilter& f, size_t begin, size_t end,
               std::vector<std::unique_ptr<QueryScan>>& scans) {
  if (f.allowed != nullptr) {
    uint32_t ids[256];
    size_t m = 0;
    auto flush = [&] {
      for (auto& s : scans) s->ScanRows(ids, m);
      m = 0;
    };
    for (auto it = f.allowed->begin(); it != f.allowed->end(); ++it) {
      const uint32_t r = *it;
      if (r < begin) continue;
      if (r >= end) break;
      ids[m++] = r;
      if (m == 256) flush();
    }
    if (m > 0) flush();
    return;
  }
  const size_t block = BlockRows(v);
  for (size_t b = begin; b < end; b += block) {
    const size_t n = std::min(block, end - b);
    if (f.live_bits != nullptr) {
      // Skip blocks with no live row (whole words only; partial words are checked per row).
      bool any = false;
      for (size_t r = b; r < b + n && !any; r += 64) {
        any = (r & 63) != 0 || f.live_bits[r >> 6] != 0;
      }
      if (!any) continue;
    }
    for (auto& s : scans) s->ScanBlock(b, n, f.live_bits);
  }
}

unsigned ResolveThreads(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return threads;
}

// Queries processed together over one block of rows.
constexpr size_t kQueryGroup = 8;

}  // namespace

std::vector<Neighbor> FlatSearch(const FlatView& view, const float* query, size_t k,
                                 const RowFilter& filter) {
  if (k == 0 || view.n == 0 || view.data == nullptr) return {};
  std::vector<uint8_t> qbuf;
  std::vector<std::unique_ptr<QueryScan>> scans;
  scans.push_back(MakeScan(view, query, k, qbuf));
  ScanGroup(view, filter, 0, view.n, scans);
  return Finish(view, scans[0]->Take(), k);
}

std::vector<std::vector<Neighbor>> FlatSearchBatch(const FlatView& view, const float* queries,
                                                   size_t nq, size_t k, const RowFilter& filter,
                                                   unsigned threads) {
  std::vector<std::vector<Neighbor>> results(nq);
  if (nq == 0 || k == 0 || view.n == 0 || view.data == nullptr) return results;
  threads = ResolveThreads(threads);
  const size_t dim = view.dim;

  // Runs fn(t) on threads 0..n-1 (thread 0 is the caller).
  auto parallel = [](size_t n, auto&& fn) {
    std::vector<std::thread> pool;
    pool.reserve(n - 1);
    for (size_t t = 1; t < n; ++t) pool.emplace_back(fn, t);
    fn(size_t{0});
    for (auto& th : pool) th.join();
  };

  const bool split_rows = nq < threads && view.n >= size_t{threads} * 1024;
  if (!split_rows) {
    const size_t nt = std::min<size_t>(threads, nq);
    parallel(nt, [&](size_t t) {
      const size_t q0 = nq * t / nt, q1 = nq * (t + 1) / nt;
      for (size_t g = q0; g < q1; g += kQueryGroup) {
        const size_t ng = std::min(kQueryGroup, q1 - g);
        std::vector<std::vector<uint8_t>> qbufs(ng);
        std::vector<std::unique_ptr<QueryScan>> scans;
        for (size_t i = 0; i < ng; ++i) {
          scans.push_back(MakeScan(view, queries + (g + i) * dim, k, qbufs[i]));
        }
        ScanGroup(view, filter, 0, view.n, scans);
        for (size_t i = 0; i < ng; ++i) results[g + i] = Finish(view, scans[i]->Take(), k);
      }
    });
    return results;
  }

  // Few queries, many threads: every thread scans a slice of the rows for all queries.
  std::vector<std::vector<std::vector<Hit>>> partial(threads, std::vector<std::vector<Hit>>(nq));
  parallel(threads, [&](size_t t) {
    const size_t r0 = view.n * t / threads, r1 = view.n * (t + 1) / threads;
    std::vector<std::vector<uint8_t>> qbufs(nq);
    std::vector<std::unique_ptr<QueryScan>> scans;
    for (size_t i = 0; i < nq; ++i) scans.push_back(MakeScan(view, queries + i * dim, k, qbufs[i]));
    ScanGroup(view, filter, r0, r1, scans);
    for (size_t i = 0; i < nq; ++i) partial[t][i] = scans[i]->Take();
  });
  for (size_t i = 0; i < nq; ++i) {
    std::vector<Hit> all;
    for (size_t t = 0; t < threads; ++t) {
      all.insert(all.end(), partial[t][i].begin(), partial[t][i].end());
    }
    results[i] = Finish(view, std::move(all), k);
  }
  return results;
}

}  // namespace vectord::index
