// `vectorctl gt`: exact top-k ground truth of a query file against a base file, with
// index::FlatSearchBatch over the base in chunks (so bases larger than RAM work), written as
// .ivecs or .ibin of 0-based base row numbers, best first.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "index/flat_search.h"
#include "storage/dataset_io.h"
#include "tools/vectorctl/commands.h"
#include "tools/vectorctl/progress.h"

namespace vectord::vectorctl {
namespace {

void NormalizeRows(float* x, size_t n, uint32_t dim) {
  for (size_t i = 0; i < n; ++i) {
    float* r = x + i * dim;
    double s = 0;
    for (uint32_t j = 0; j < dim; ++j) s += static_cast<double>(r[j]) * r[j];
    if (s > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(s));
      for (uint32_t j = 0; j < dim; ++j) r[j] *= inv;
    }
  }
}

// a better than b under the metric (ties: lower row first, as FlatSearch orders them).
bool Better(const index::Neighbor& a, const index::Neighbor& b, bool lower_better) {
  if (a.score != b.score) return lower_better ? a.score < b.score : a.score > b.score;
  return a.row < b.row;
}

}  // namespace

int RunGt(const GtOptions& o) {
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "vectorctl gt: %s\n", st.ToString().c_str());
    return 1;
  };
  Distance distance;
  if (o.metric == "l2") {
    distance = Distance::kEuclid;
  } else if (o.metric == "ip") {
    distance = Distance::kDot;
  } else if (o.metric == "cosine") {
    distance = Distance::kCosine;
  } else {
    return fail(Status::InvalidArgument("--metric '" + o.metric + "': expected l2, ip or cosine"));
  }
  const bool lower_better = LowerIsBetter(distance);
  auto br = storage::DatasetReader::Open(o.base);
  if (!br.ok()) return fail(br.status());
  auto qr = storage::DatasetReader::Open(o.query);
  if (!qr.ok()) return fail(qr.status());
  const storage::DatasetInfo& bi = (*br)->info();
  const storage::DatasetInfo& qi = (*qr)->info();
  if (bi.dim != qi.dim) {
    return fail(Status::InvalidArgument("base '" + o.base + "' has dimension " +
                                        std::to_string(bi.dim) + ", query '" + o.query + "' has " +
                                        std::to_string(qi.dim)));
  }
  if (bi.n > 0x7FFFFFFFull) {
    return fail(Status::InvalidArgument(
        "base '" + o.base +
        "' has more than 2^31-1 rows, which int32 ground-truth ids cannot hold"));
  }
  if (o.k == 0) return fail(Status::InvalidArgument("--k must be at least 1"));
  const size_t k = std::min(o.k, bi.n);
  if (k < o.k) {
    std::fprintf(stderr, "gt: base has only %zu rows; writing top-%zu\n", bi.n, k);
  }
  const uint32_t dim = bi.dim;
  const size_t nq = qi.n;

  std::vector<float> queries(nq * dim);
  if (Status st = (*qr)->ReadFloat(0, nq, queries.data()); !st.ok()) return fail(st);
  if (distance == Distance::kCosine) NormalizeRows(queries.data(), nq, dim);

  // uint8/int8 bases are searched as stored (exact integer kernels); int32 rows and cosine
  // (normalized) rows are searched as float.
  DataType dtype = DataType::kFloat32;
  if (distance != Distance::kCosine && bi.type == storage::ElementType::kUint8) {
    dtype = DataType::kUint8;
  } else if (distance != Distance::kCosine && bi.type == storage::ElementType::kInt8) {
    dtype = DataType::kInt8;
  }
  const size_t row_bytes = dim * DataTypeSize(dtype);
  size_t chunk = o.chunk_rows ? o.chunk_rows : std::max<size_t>(1, (size_t{1} << 30) / row_bytes);
  chunk = std::min(std::max(chunk, k), std::max<size_t>(bi.n, 1));

  std::fprintf(stderr,
               "gt: base %s: %zu x %u %s; queries %s: %zu; k=%zu metric=%s; %zu rows per "
               "chunk\n",
               o.base.c_str(), bi.n, dim, storage::ElementTypeName(bi.type), o.query.c_str(), nq, k,
               o.metric.c_str(), chunk);

  std::vector<std::vector<index::Neighbor>> best(nq);
  std::vector<char> rows(chunk * row_bytes);
  // Queries go to FlatSearchBatch in blocks so that progress can be shown within a chunk.
  const size_t qblock = std::max<size_t>(64, nq / 50);
  Progress progress("gt", "query-chunks", nq * ((bi.n + chunk - 1) / chunk));
  for (size_t begin = 0; begin < bi.n; begin += chunk) {
    const size_t n = std::min(chunk, bi.n - begin);
    Status st = dtype == DataType::kFloat32
                    ? (*br)->ReadFloat(begin, n, reinterpret_cast<float*>(rows.data()))
                    : (*br)->ReadRaw(begin, n, rows.data());
    if (!st.ok()) return fail(st);
    if (distance == Distance::kCosine) {
      NormalizeRows(reinterpret_cast<float*>(rows.data()), n, dim);
    }
    index::FlatView view;
    view.data = rows.data();
    view.n = n;
    view.dim = dim;
    view.dtype = dtype;
    view.distance = distance;
    for (size_t q0 = 0; q0 < nq; q0 += qblock) {
      const size_t qn = std::min(qblock, nq - q0);
      auto res = index::FlatSearchBatch(view, queries.data() + q0 * dim, qn, k, {}, o.threads);
      for (size_t i = 0; i < qn; ++i) {
        auto& b = best[q0 + i];
        for (auto nb : res[i]) {
          nb.row += static_cast<uint32_t>(begin);
          b.push_back(nb);
        }
        if (b.size() > k) {
          std::partial_sort(
              b.begin(), b.begin() + static_cast<ptrdiff_t>(k), b.end(),
              [&](const auto& x, const auto& y) { return Better(x, y, lower_better); });
          b.resize(k);
        }
      }
      progress.Add(qn);
    }
  }
  progress.Finish();

  auto w = storage::DatasetWriter::Create(o.out, static_cast<uint32_t>(k));
  if (!w.ok()) return fail(w.status());
  std::vector<int32_t> ids(k);
  for (size_t q = 0; q < nq; ++q) {
    auto& b = best[q];
    std::sort(b.begin(), b.end(),
              [&](const auto& x, const auto& y) { return Better(x, y, lower_better); });
    if (b.size() != k) {
      return fail(Status::Internal("query " + std::to_string(q) + ": search returned " +
                                   std::to_string(b.size()) + " neighbours, expected " +
                                   std::to_string(k)));
    }
    for (size_t i = 0; i < k; ++i) ids[i] = static_cast<int32_t>(b[i].row);
    if (Status st = (*w)->Append(ids.data(), 1); !st.ok()) return fail(st);
  }
  if (Status st = (*w)->Finish(); !st.ok()) return fail(st);
  std::fprintf(stderr, "gt: wrote %s (%zu x %zu) in %.2f s\n", o.out.c_str(), nq, k,
               progress.ElapsedSeconds());
  return 0;
}

}  // namespace vectord::vectorctl
