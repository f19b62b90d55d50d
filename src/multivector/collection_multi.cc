// Multi-vector collections (Qdrant "multivector_config", comparator max_sim) searched through
// MUVERA fixed-dimensional encodings: the CollectionImpl methods that store token sets, encode
// documents and queries, and re-rank candidates by exact Chamfer similarity. docs/muvera.md.
//
// Layout: the collection's vector file holds one row per point: its document FDE (float32,
// scored by Dot), so the single-vector machinery (exact scan, SPANN build and search, filters,
// the query planner, the RAM delta) finds candidates unchanged. The token sets live in the
// TokenStore (tokens.vdt / tokens.vdo), read in one batch per query for re-ranking. While all
// FDE rows are in RAM, a 4-bit PQ of them (src/fde_pq.h) finds the candidates instead of the exact
// float16 scan (muvera_config.fde_index). With muvera_config.rerank > 0 the candidates are first
// scored by approximate Chamfer on an 8-bit copy of the token vectors in RAM (src/token_codes.h)
// and only the best max(rerank, 2 x (limit + offset)) by exact Chamfer (the two-stage re-rank).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <new>
#include <sstream>
#include <thread>

#include "index/chamfer.h"
#include "index/chamfer_int8.h"
#include "index/distance.h"
#include "index/muvera.h"
#include "src/collection/collection.h"
#include "src/collection/collection_config.h"
#include "src/jobs/thread_pool.h"
#include "src/multivector/fde_pq.h"
#include "src/multivector/token_codes.h"
#include "src/search/query_planner.h"
#include "src/search/vector_search.h"
#include "src/vectors/vector_codec.h"
#include "src/vectors/vector_store.h"

namespace vectord {
namespace {
// The cost model that picks between scoring every matching document and the FDE search with the
// default candidates (nanoseconds; measured on the 2-core dev VM at AVX2, docs/muvera.md
// "Defaults"): a document scored by the 8-bit Chamfer costs kMultiDocNs plus kMultiMacNs per
// query-vector x document-vector x dimension product; the SPANN search over the FDEs
// kFdeSpannNs per FDE dimension of each row it reads (candidate_spread x candidates, the
// navigation included); the FDE scans in RAM kFdeScanByteNs per byte (PQ codes or float16 rows).
constexpr double kMultiDocNs = 50;
constexpr double kMultiMacNs = 0.035;
constexpr double kFdeSpannNs = 0.14;
constexpr double kFdeScanByteNs = 0.1;
}  // namespace

Status CollectionImpl::RestoreTokens(const Json& catalog) {
  std::vector<storage::TokenSpan> spans;
  VECTORD_ASSIGN_OR_RETURN(
      tokens_, storage::TokenStore::Open(dir_ + "/tokens", config_.dim, config_.datatype, &spans));
  // file_ is already cut to the committed rows. A row needs both its FDE and its token set.
  const uint64_t rows = std::min<uint64_t>(vectors_->file_rows(), spans.size());
  if (spans.size() > rows) {
    VECTORD_RETURN_IF_ERROR(tokens_->Truncate(rows, spans[rows].offset));
    spans.resize(rows);
  }
  if (vectors_->file_rows() > rows) {
    std::cerr << "vectord: collection '" << name_ << "': token files hold " << rows
              << " sets, the vector file " << vectors_->file_rows()
              << " rows; points in the missing rows are dropped (fsync was off?)\n";
    VECTORD_RETURN_IF_ERROR(vectors_->TruncateFile(rows));
  }
  token_spans_ = std::move(spans);
  if (!config_.on_disk) {
    std::vector<uint8_t> all;
    VECTORD_RETURN_IF_ERROR(tokens_->ReadAll(token_spans_, &all));
    token_ram_.clear();
    token_ram_.append(all.data(), all.size());
  }
  if (config_.multivector->muvera.rerank > 0) VECTORD_RETURN_IF_ERROR(LoadTokenCodes());
  const MuveraConfig& mc = config_.multivector->muvera;
  if (catalog.is_object() && catalog.contains("muvera_center")) {
    try {
      muvera_center_ = catalog["muvera_center"].get<std::vector<float>>();
    } catch (const std::exception& e) {
      return Status::Corruption(std::string("catalog entry: muvera_center: ") + e.what());
    }
    if (muvera_center_.size() != config_.dim) {
      return Status::Corruption("catalog entry: muvera_center has " +
                                std::to_string(muvera_center_.size()) + " floats, expected " +
                                std::to_string(config_.dim));
    }
  } else if (mc.center == "auto" && rows > 0) {
    return Status::Corruption("catalog entry lacks muvera_center but the collection has points");
  }
  if (mc.center == "none" || !muvera_center_.empty()) {
    VECTORD_ASSIGN_OR_RETURN(index::FdeEncoder enc, index::FdeEncoder::Create(MuveraParamsOf(
                                                        mc, config_.dim, muvera_center_)));
    fde_ = std::make_shared<const index::FdeEncoder>(std::move(enc));
  }
  return Status::OK();
}

Status CollectionImpl::LoadTokenCodes() {
  const uint32_t dim = config_.dim;
  const size_t n = token_spans_.size();
  auto codes = std::make_unique<TokenCodes>(dim);
  std::vector<uint32_t> counts(n);
  std::vector<uint64_t> first(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    counts[i] = token_spans_[i].count;
    first[i + 1] = first[i] + counts[i];
  }
  uint8_t* dst = codes->Append(counts.data(), n);
  const size_t rb = codes->row_bytes();
  // Sets [begin, begin + m) whose stored vectors lie at src(i) get their rows, in parallel.
  auto encode = [&](size_t begin, size_t m, const auto& src) {
    constexpr size_t kChunk = 64;
    pool_->ParallelFor((m + kChunk - 1) / kChunk, [&](size_t c) {
      std::vector<float> tok;
      for (size_t i = begin + c * kChunk; i < std::min(begin + m, begin + (c + 1) * kChunk); ++i) {
        tok.resize(size_t{counts[i]} * dim);
        DecodeTokens(src(i), counts[i], tok.data());
        index::EncodeInt8Rows(tok.data(), counts[i], dim, dst + first[i] * rb);
      }
    });
  };
  if (!config_.on_disk) {
    encode(0, n, [&](size_t i) {
      return storage::TokenStore::RecordVectors(token_ram_.data() + token_spans_[i].offset -
                                                storage::TokenStore::kHeaderBytes);
    });
  } else {
    // Batches of sets read with their CRCs checked. A set that fails its check gets no codes:
    // the search passes it on to exact Chamfer, whose read reports the Corruption as it did
    // before the copy existed (the RAM mode's ReadAll refuses to open instead).
    constexpr size_t kBatch = 256;
    std::vector<uint32_t> ids(kBatch);
    std::vector<uint8_t> bytes;
    std::vector<uint64_t> offs;
    const size_t vb = size_t{dim} * DataTypeSize(config_.datatype);
    for (size_t b = 0; b < n; b += kBatch) {
      const size_t m = std::min(kBatch, n - b);
      for (size_t i = 0; i < m; ++i) ids[i] = static_cast<uint32_t>(b + i);
      Status st = tokens_->ReadSets(&token_spans_[b], ids.data(), m, &bytes, &offs);
      if (st.ok()) {
        encode(b, m, [&](size_t i) { return bytes.data() + offs[i - b] * vb; });
        continue;
      }
      if (st.code() != Status::Code::kCorruption) return st;
      for (size_t i = b; i < b + m; ++i) {  // one set at a time, to find the damaged ones
        st = tokens_->ReadSets(&token_spans_[i], &ids[i - b], 1, &bytes, &offs);
        if (st.ok()) {
          encode(i, 1, [&](size_t) { return bytes.data(); });
        } else if (st.code() == Status::Code::kCorruption) {
          std::cerr << "vectord: collection '" << name_ << "': " << st.ToString()
                    << "; searches that meet it report the corruption\n";
          codes->MarkUnreadable(i);
        } else {
          return st;
        }
      }
    }
  }
  token_codes_ = std::move(codes);
  return Status::OK();
}

Status CollectionImpl::EncodeTokens(size_t point_index, const PointStruct& p,
                                    std::vector<uint8_t>* out) const {
  const std::string where = "point " + std::to_string(point_index) + ": ";
  const uint32_t dim = config_.dim;
  const MuveraConfig& mc = config_.multivector->muvera;
  if (p.vector_count == 0) {
    return Status::InvalidArgument(where + "collection '" + name_ +
                                   "' holds multi-vectors: 'vector' must be a list of vectors "
                                   "([[...], [...]]), got a single vector");
  }
  if (p.vector_count > mc.max_vectors) {
    return Status::InvalidArgument(
        where + "has " + std::to_string(p.vector_count) +
        " vectors, more than muvera_config.max_vectors = " + std::to_string(mc.max_vectors));
  }
  if (p.vector.size() != size_t{p.vector_count} * dim) {
    return Status::InvalidArgument(
        where + "vectors have " + std::to_string(p.vector.size() / p.vector_count) +
        " dimensions, collection '" + name_ + "' expects " + std::to_string(dim));
  }
  const size_t vb = dim * DataTypeSize(config_.datatype);
  const size_t base = out->size();
  out->resize(base + p.vector_count * vb);
  for (uint32_t j = 0; j < p.vector_count; ++j) {
    VECTORD_RETURN_IF_ERROR(EncodeElements(
        where + "vector " + std::to_string(j) + " ", p.vector.data() + size_t{j} * dim, dim,
        config_.datatype, config_.distance == Distance::kCosine, out->data() + base + j * vb));
  }
  return Status::OK();
}

void CollectionImpl::DecodeTokens(const uint8_t* src, size_t n_vectors, float* out) const {
  const size_t vb = config_.dim * DataTypeSize(config_.datatype);
  for (size_t j = 0; j < n_vectors; ++j) {
    DecodeElements(src + j * vb, config_.dim, config_.datatype, out + j * config_.dim);
  }
}

Status CollectionImpl::PrepareMulti(const std::vector<std::vector<uint8_t>>& token_bytes,
                                    const std::vector<size_t>& keep, MultiBatch* mb) const {
  const uint32_t dim = config_.dim;
  const size_t vb = dim * DataTypeSize(config_.datatype);
  size_t total = 0;
  for (size_t i : keep) total += token_bytes[i].size();
  mb->tokens.clear();
  mb->tokens.reserve(total);
  mb->counts.clear();
  for (size_t i : keep) {
    mb->tokens.insert(mb->tokens.end(), token_bytes[i].begin(), token_bytes[i].end());
    mb->counts.push_back(static_cast<uint32_t>(token_bytes[i].size() / vb));
  }
  // Decoded as stored, so the FDE and the exact Chamfer re-rank see the same vectors.
  std::vector<float> decoded(total / vb * dim);
  DecodeTokens(mb->tokens.data(), total / vb, decoded.data());

  std::shared_ptr<const index::FdeEncoder> enc;
  {
    std::shared_lock l(mu_);
    enc = fde_;
  }
  if (!enc) {
    // centre "auto" and no point yet: the mean of this batch's vectors becomes the SimHash origin
    // for the collection's lifetime (stored in the catalog with the batch's commit).
    std::vector<double> sum(dim, 0.0);
    const size_t n = total / vb;
    for (size_t j = 0; j < n; ++j) {
      for (uint32_t d = 0; d < dim; ++d) sum[d] += decoded[j * dim + d];
    }
    mb->center.assign(dim, 0.0f);
    for (uint32_t d = 0; d < dim; ++d) mb->center[d] = static_cast<float>(sum[d] / double(n));
    VECTORD_ASSIGN_OR_RETURN(
        index::FdeEncoder e,
        index::FdeEncoder::Create(MuveraParamsOf(config_.multivector->muvera, dim, mb->center)));
    mb->encoder = std::make_shared<const index::FdeEncoder>(std::move(e));
    enc = mb->encoder;
  }
  const uint32_t fd = enc->fde_dim();
  if (fd != vectors_->dim()) {
    return Status::Internal("MUVERA encoder gives " + std::to_string(fd) + " floats, expected " +
                            std::to_string(vectors_->dim()));
  }
  if (config_.multivector->muvera.rerank > 0) {
    mb->int8_rows.resize(total / vb * index::Int8RowBytes(dim));
    index::EncodeInt8Rows(decoded.data(), total / vb, dim, mb->int8_rows.data());
  }
  std::vector<float> fde(size_t{fd} * keep.size());
  std::vector<size_t> first(keep.size() + 1, 0);
  for (size_t j = 0; j < keep.size(); ++j) first[j + 1] = first[j] + mb->counts[j];
  pool_->ParallelFor(keep.size(), [&](size_t j) {
    enc->EncodeDocument(decoded.data() + first[j] * dim, mb->counts[j], fde.data() + j * fd);
  });
  // Stored as float16: half the RAM of float32, relative error ~1e-3 on the candidate scores
  // (exact Chamfer ranks the candidates).
  const size_t row_bytes = size_t{fd} * DataTypeSize(vectors_->type());
  mb->fde_bytes.resize(row_bytes * keep.size());
  for (size_t j = 0; j < keep.size(); ++j) {
    VECTORD_RETURN_IF_ERROR(EncodeElements("point " + std::to_string(keep[j]) + " FDE ",
                                           fde.data() + j * fd, fd, vectors_->type(), false,
                                           mb->fde_bytes.data() + j * row_bytes));
  }
  {
    std::shared_lock l(mu_);
    if (fde_pq_) mb->pq = fde_pq_->encoder();
  }
  if (mb->pq) {
    // PQ codes of the stored (float16) FDEs, as the rebuild at open computes them.
    mb->pq_codes.resize(mb->pq->code_size() * keep.size());
    EncodeFdePq(*mb->pq, mb->fde_bytes.data(), keep.size(), mb->pq_codes.data());
  }
  return Status::OK();
}

Result<std::vector<index::Neighbor>> CollectionImpl::ChamferRows(const float* q, size_t nq,
                                                                 const std::vector<uint32_t>& rows,
                                                                 size_t k, uint64_t* pages) const {
  std::vector<index::Neighbor> best;
  auto better = [](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.row < b.row;
  };
  if (!config_.on_disk) {
    // RAM-resident sets: score each candidate in place (float32: the mirror's bytes were written
    // by memcpy from floats, 4-byte aligned: records start at multiples of 4), else decoded.
    std::vector<float> tok;
    const bool in_place = config_.datatype == DataType::kFloat32;
    for (uint32_t row : rows) {
      const storage::TokenSpan& sp = token_spans_[row];
      const uint8_t* src = storage::TokenStore::RecordVectors(token_ram_.data() + sp.offset -
                                                              storage::TokenStore::kHeaderBytes);
      const float* t;
      if (in_place) {
        t = std::launder(reinterpret_cast<const float*>(src));
      } else {
        tok.resize(size_t{sp.count} * config_.dim);
        DecodeTokens(src, sp.count, tok.data());
        t = tok.data();
      }
      best.push_back(index::Neighbor{index::Chamfer(q, nq, t, sp.count, config_.dim), row});
    }
    std::sort(best.begin(), best.end(), better);
    if (best.size() > k) best.resize(k);
    return best;
  }
  const size_t batch = 256;
  std::vector<storage::TokenSpan> spans;
  std::vector<uint8_t> bytes;
  std::vector<uint64_t> offs;
  std::vector<float> tok, scores;
  for (size_t i = 0; i < rows.size(); i += batch) {
    const size_t n = std::min(batch, rows.size() - i);
    spans.resize(n);
    for (size_t j = 0; j < n; ++j) spans[j] = token_spans_[rows[i + j]];
    const uint64_t before = tokens_->pages_read();
    VECTORD_RETURN_IF_ERROR(tokens_->ReadSets(spans.data(), rows.data() + i, n, &bytes, &offs));
    *pages += tokens_->pages_read() - before;
    tok.resize(offs.back() * config_.dim);
    DecodeTokens(bytes.data(), offs.back(), tok.data());
    index::MultiVectorView view{tok.data(), offs.data(), n, config_.dim};
    scores.resize(n);
    index::ChamferBatch(q, nq, view, nullptr, n, scores.data());
    for (size_t j = 0; j < n; ++j) best.push_back(index::Neighbor{scores[j], rows[i + j]});
    if (best.size() > 4 * k + batch) {
      std::partial_sort(best.begin(), best.begin() + static_cast<ptrdiff_t>(k), best.end(), better);
      best.resize(k);
    }
  }
  std::sort(best.begin(), best.end(), better);
  if (best.size() > k) best.resize(k);
  return best;
}

Result<std::vector<float>> CollectionImpl::PrepareMultiQuery(const SearchRequest& req) const {
  const uint32_t dim = config_.dim;
  const MuveraConfig& mc = config_.multivector->muvera;
  if (req.vector_count == 0) {
    return Status::InvalidArgument("collection '" + name_ +
                                   "' holds multi-vectors: the query must be a list of vectors "
                                   "([[...], [...]])");
  }
  if (req.vector_count > mc.max_vectors) {
    return Status::InvalidArgument(
        "query has " + std::to_string(req.vector_count) +
        " vectors, more than muvera_config.max_vectors = " + std::to_string(mc.max_vectors));
  }
  if (req.vector.size() != size_t{req.vector_count} * dim) {
    return Status::InvalidArgument(
        "query vectors have " + std::to_string(req.vector.size() / req.vector_count) +
        " dimensions, collection '" + name_ + "' expects " + std::to_string(dim));
  }
  std::vector<float> q = req.vector;
  for (size_t j = 0; j < req.vector_count; ++j) {
    float* v = q.data() + j * dim;
    double norm = 0;
    for (uint32_t d = 0; d < dim; ++d) {
      if (!std::isfinite(v[d])) {
        return Status::InvalidArgument("query vector " + std::to_string(j) + " element " +
                                       std::to_string(d) + " is not a finite number");
      }
      norm += double{v[d]} * v[d];
    }
    if (config_.distance == Distance::kCosine && norm > 0) {
      const float s = static_cast<float>(1.0 / std::sqrt(norm));
      for (uint32_t d = 0; d < dim; ++d) v[d] *= s;
    }
  }
  return q;
}

Result<std::vector<index::Neighbor>> CollectionImpl::SearchMultiRows(const std::vector<float>& q,
                                                                     size_t k,
                                                                     const SearchRequest& req,
                                                                     const Roaring* allowed_ptr,
                                                                     QueryExplain* ex) const {
  const uint32_t nq = static_cast<uint32_t>(q.size() / config_.dim);
  if (req.muvera_rerank && !token_codes_) {
    return Status::InvalidArgument(
        "params.muvera.rerank: collection '" + name_ +
        "' keeps no 8-bit token copy (its muvera_config.rerank is 0): every candidate is scored "
        "by exact Chamfer");
  }
  using Clock = std::chrono::steady_clock;
  const auto since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
  };
  auto t0 = Clock::now();
  std::vector<uint32_t> rows;
  const Roaring& matching = allowed_ptr ? *allowed_ptr : points_->live();
  const uint64_t matches = matching.cardinality();
  // Candidates asked of the FDE index: the query's, the collection's, or by the number of
  // matching documents and the limit.
  const uint32_t configured =
      req.muvera_candidates.value_or(config_.multivector->muvera.candidates);
  // The FDE PQ in RAM serves while it covers every row (beside the SPANN index too, up to
  // muvera_config.fde_pq_max_rows documents); else the collection's FDE index.
  const bool pq_serves = fde_pq_ && fde_pq_->rows() == vectors_->rows() && FdePqMayServe();
  const bool spann_serves = vectors_->ram_base() > 0 && !pq_serves;
  const uint32_t cand = std::max<uint32_t>(
      static_cast<uint32_t>(k),
      configured > 0 ? configured : MuveraDefaultCandidates(matches, k, spann_serves));
  bool all = cand >= matches;
  if (!req.exact && fde_) {
    ex->muvera_candidates = cand;
    // With the default candidates, the cheaper of the two ways by the cost model: every matching
    // document scored by the 8-bit Chamfer, or the FDE search plus the candidates.
    const double tokens = tokens_->rows() > 0
                              ? static_cast<double>(tokens_->data_size()) /
                                    (static_cast<double>(tokens_->rows()) * tokens_->vector_bytes())
                              : 1.0;
    const double per_doc =
        kMultiDocNs + kMultiMacNs * tokens * nq * static_cast<double>(config_.dim);
    double fde_ns;
    if (spann_serves) {
      fde_ns = cand * config_.multivector->muvera.candidate_spread *
               static_cast<double>(fde_->fde_dim()) * kFdeSpannNs;
    } else if (pq_serves) {
      fde_ns =
          static_cast<double>(matches) * static_cast<double>(fde_pq_->code_size()) * kFdeScanByteNs;
    } else {
      fde_ns = static_cast<double>(matches) * 2.0 * fde_->fde_dim() * kFdeScanByteNs;
    }
    ex->est_all_us = static_cast<double>(matches) * per_doc / 1000;
    ex->est_fde_us = (fde_ns + cand * per_doc) / 1000;
    if (configured == 0 && ex->est_all_us <= ex->est_fde_us) all = true;
  }
  if (req.exact || !fde_ || all) {
    // Every live (matching) point: exact Chamfer ("exact": params.exact, or no encoder yet), or
    // as candidates ("all": no more of them than the candidates asked, or cheaper by the cost
    // model: small collections, small sets, restrictive filters), which the 8-bit and exact
    // Chamfer stages rank without an FDE search.
    ex->multivector = req.exact || !fde_ ? "exact" : "all";
    ex->plan = vectors_->ram_base() == 0 ? SearchPlan::kExactRam : SearchPlan::kExact;
    rows.resize(matches);
    matching.toUint32Array(rows.data());
  } else {
    // MUVERA: the query FDE picks `cand` candidate documents from the FDE PQ (all rows in RAM and
    // encoded) or from the collection's FDE index (exact scan / SPANN).
    std::vector<float> fq(fde_->fde_dim());
    fde_->EncodeQuery(q.data(), nq, fq.data());
    if (pq_serves) {
      ex->multivector = "fde_pq4";
      ex->plan = SearchPlan::kExactRam;
      rows = FdePqCandidates(fq.data(), cand, allowed_ptr, ex);
    } else {
      ex->multivector = "fde";
      CandidateFill fill;
      fill.spread = config_.multivector->muvera.candidate_spread;
      VECTORD_ASSIGN_OR_RETURN(
          std::vector<index::Neighbor> c,
          VectorSearch(Sources()).Run(fq.data(), cand, req, allowed_ptr, ex, &fill));
      rows.reserve(c.size());
      for (const auto& h : c) rows.push_back(h.row);
      std::sort(rows.begin(), rows.end());  // file order: nearby sets share pages
    }
  }
  ex->candidates_delivered = rows.size();
  ex->candidates_us = since(t0);
  // Two-stage re-rank: the 8-bit Chamfer keeps the best r candidates for the exact one; at least
  // twice k (measured: at limit 100, r = 100 loses 0.007 recall@100, 200 nothing).
  const size_t r =
      std::max<size_t>(2 * k, req.muvera_rerank.value_or(config_.multivector->muvera.rerank));
  if (ex->multivector != "exact" && token_codes_ && r < rows.size()) {
    t0 = Clock::now();
    ex->int8_docs = rows.size();
    rows = Int8Best(q.data(), nq, rows, r);
    ex->int8_us = since(t0);
  }
  t0 = Clock::now();
  const uint32_t pv = config_.multivector->muvera.prefilter_vectors;
  const size_t keep = std::max<size_t>(4 * k, rows.size() / 4);
  if (ex->multivector != "exact" && !config_.on_disk && pv > 0 && nq > pv && keep < rows.size()) {
    // First pass: Chamfer over pv of the query's vectors ranks the candidates; the best `keep` go
    // on to the exact Chamfer. The pv vectors are a fixed pseudo-random choice (a Fisher-Yates
    // shuffle driven by splitmix64), not a stride, which could line up with structure in the set.
    std::vector<uint32_t> order(nq);
    for (uint32_t i = 0; i < nq; ++i) order[i] = i;
    uint64_t state = 0x5EEDC0FFEEull + nq;
    for (uint32_t i = nq - 1; i > 0; --i) {
      uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      std::swap(order[i], order[z % (uint64_t{i} + 1)]);
    }
    std::sort(order.begin(), order.begin() + pv);
    std::vector<float> qs(size_t{pv} * config_.dim);
    for (uint32_t i = 0; i < pv; ++i) {
      std::copy_n(q.data() + size_t{order[i]} * config_.dim, config_.dim,
                  qs.data() + size_t{i} * config_.dim);
    }
    ex->prefilter_docs = rows.size();
    VECTORD_ASSIGN_OR_RETURN(std::vector<index::Neighbor> part,
                             ChamferRows(qs.data(), pv, rows, keep, &ex->token_pages));
    rows.clear();
    for (const auto& h : part) rows.push_back(h.row);
    std::sort(rows.begin(), rows.end());
  }
  ex->chamfer_docs = rows.size();
  auto best = ChamferRows(q.data(), nq, rows, k, &ex->token_pages);
  ex->chamfer_us = since(t0);
  return best;
}

std::vector<uint32_t> CollectionImpl::Int8Best(const float* q, uint32_t nq,
                                               const std::vector<uint32_t>& rows, size_t r) const {
  const index::Int8Query iq(q, nq, config_.dim);
  std::vector<index::Neighbor> scored(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    uint32_t count;
    if (i + 1 < rows.size()) {
      const uint8_t* next = token_codes_->Set(rows[i + 1], &count);
      if (next) index::PrefetchInt8Rows(next, count, config_.dim);
    }
    const uint8_t* set = token_codes_->Set(rows[i], &count);
    // A set without codes (unreadable at open) goes on to exact Chamfer, which reports it.
    scored[i] = index::Neighbor{
        set ? index::ChamferInt8(iq, set, count) : std::numeric_limits<float>::infinity(), rows[i]};
  }
  r = std::min(r, scored.size());
  std::nth_element(scored.begin(), scored.begin() + static_cast<ptrdiff_t>(r), scored.end(),
                   [](const index::Neighbor& a, const index::Neighbor& b) {
                     return a.score != b.score ? a.score > b.score : a.row < b.row;
                   });
  std::vector<uint32_t> out(r);
  for (size_t i = 0; i < r; ++i) out[i] = scored[i].row;
  std::sort(out.begin(), out.end());  // file order: nearby sets share pages
  return out;
}

void CollectionImpl::EncodeFdePq(const index::ProductQuantizer& pq, const uint8_t* fde_rows,
                                 size_t n, uint8_t* codes) const {
  const size_t chunk = 64;
  const size_t cs = pq.code_size();
  pool_->ParallelFor((n + chunk - 1) / chunk, [&](size_t c) {
    const size_t first = c * chunk, cnt = std::min(chunk, n - first);
    std::vector<float> x(cnt * vectors_->dim());
    for (size_t i = 0; i < cnt; ++i) {
      DecodeElements(fde_rows + (first + i) * vectors_->row_bytes(), vectors_->dim(),
                     vectors_->type(), x.data() + i * vectors_->dim());
    }
    FdePq::Encode(pq, x.data(), cnt, codes + first * cs);
  });
}

bool CollectionImpl::FdePqBesideIndex() const {
  const MuveraConfig& mc = config_.multivector->muvera;
  return mc.fde_index == "pq4" && mc.fde_pq_rescore == 1 && vectors_->rows() <= mc.fde_pq_max_rows;
}

bool CollectionImpl::FdePqMayServe() const {
  return vectors_->ram_base() == 0 || FdePqBesideIndex();
}

void CollectionImpl::AppendFdePq(const MultiBatch& mb, size_t n) {
  if (!fde_pq_) return;
  if (!FdePqMayServe()) {
    fde_pq_.reset();  // past fde_pq_max_rows: the SPANN index alone serves the FDEs
    return;
  }
  if (mb.pq != fde_pq_->encoder() || mb.pq_codes.size() != n * fde_pq_->code_size()) {
    fde_pq_.reset();  // cannot happen under write_mu_; the exact scan serves until retrained
    return;
  }
  fde_pq_->Append(mb.pq_codes.data(), n);
}

void CollectionImpl::MaybeTrainFdePq() {
  const MuveraConfig& mc = config_.multivector->muvera;
  if (mc.fde_index != "pq4") return;
  {
    std::shared_lock l(mu_);
    if (!FdePqMayServe()) return;  // SPANN serves the FDEs
    const uint64_t t = FdePq::TrainRows(vectors_->rows());
    if (t == 0 || (fde_pq_ && fde_pq_->trained_rows() == t)) return;
  }
  fde_pq_job_->Request();
}

size_t CollectionImpl::TokenCodesBytes() const {
  std::shared_lock l(mu_);
  return token_codes_ ? token_codes_->bytes() : 0;
}

void CollectionImpl::TrainFdePq(Job& job) {
  const MuveraConfig& mc = config_.multivector->muvera;
  const auto t0 = std::chrono::steady_clock::now();
  // Deterministic: a strided sample of rows [0, t) (dead rows too: their bytes never change),
  // fixed seed. Rows below vectors_->rows() never change, so reading them under a shared mu_ is
  // enough.
  uint64_t t, present;
  std::vector<float> sample;
  size_t s;
  {
    std::shared_lock l(mu_);
    if (!FdePqMayServe()) return;
    present = vectors_->rows();
    t = FdePq::TrainRows(vectors_->rows());
    if (t == 0) return;
    s = static_cast<size_t>(std::min<uint64_t>(FdePq::kSampleRows, t));
    sample.resize(s * vectors_->dim());
    std::vector<uint8_t> row_bytes(vectors_->row_bytes());
    for (size_t i = 0; i < s; ++i) {
      // From RAM, or from the vector file for rows the SPANN index holds (checksums verified).
      const uint64_t row = uint64_t{i} * t / s;
      Status st = vectors_->Read(row, 1, row_bytes.data());
      if (!st.ok()) {
        std::cerr << "vectord: collection '" << name_ << "': cannot train the FDE PQ ("
                  << st.ToString() << ")\n";
        return;
      }
      DecodeElements(row_bytes.data(), vectors_->dim(), vectors_->type(),
                     sample.data() + i * vectors_->dim());
    }
  }
  // One subspace per SimHash bucket (d_proj floats; 4 after a final projection), >= 2 floats.
  const uint32_t m =
      mc.fde_pq_m != 0
          ? mc.fde_pq_m
          : FdePq::AutoM(vectors_->dim(), std::max<uint32_t>(2, mc.final_dim ? 4 : mc.d_proj));
  auto trained = FdePq::Train(vectors_->dim(), m, sample.data(), s, t, mc.seed);
  const double train_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!trained.ok()) {
    std::cerr << "vectord: collection '" << name_ << "': cannot train the FDE PQ ("
              << trained.status().ToString() << "); the exact FDE scan serves\n";
    return;
  }
  std::unique_ptr<FdePq> pq = std::move(trained).value();
  const size_t cs = pq->code_size();
  // Encode the rows there are, a chunk at a time (writers append between chunks), catching up
  // with the rows written meanwhile until few are left; those are encoded under write_mu_ below.
  constexpr uint64_t kChunk = 1024;
  std::vector<uint8_t> codes, chunk;
  // Encodes rows [first, first + n) (n <= kChunk) in place in RAM, else read from the vector file.
  auto encode = [&](uint64_t first, uint64_t n) -> Status {
    const uint8_t* rows = nullptr;
    if (first >= vectors_->ram_base()) {
      rows = vectors_->ram_row(first);
    } else {
      chunk.resize(n * vectors_->row_bytes());
      VECTORD_RETURN_IF_ERROR(vectors_->Read(first, n, chunk.data()));
      rows = chunk.data();
    }
    EncodeFdePq(*pq->encoder(), rows, n, codes.data() + first * cs);
    return Status::OK();
  };
  auto failed = [&](const Status& st) {
    std::cerr << "vectord: collection '" << name_ << "': cannot encode the FDE PQ ("
              << st.ToString() << ")\n";
  };
  uint64_t done = 0;
  for (int pass = 0; pass < 8 && present - done > kChunk / 4; ++pass) {
    codes.resize(present * cs);
    for (; done < present;) {
      if (job.cancelled()) return;
      std::shared_lock l(mu_);
      if (!FdePqMayServe()) return;
      const uint64_t n = std::min<uint64_t>(kChunk, present - done);
      if (Status st = encode(done, n); !st.ok()) return failed(st);
      done += n;
    }
    std::shared_lock l(mu_);
    present = vectors_->rows();
  }
  std::lock_guard<std::mutex> wl(write_mu_);
  std::unique_lock l(mu_);
  if (!FdePqMayServe() || dropped_) return;
  codes.resize(vectors_->rows() * cs);
  for (; done < vectors_->rows();) {
    const uint64_t n = std::min<uint64_t>(kChunk, vectors_->rows() - done);
    if (Status st = encode(done, n); !st.ok()) return failed(st);
    done += n;
  }
  pq->Append(codes.data(), vectors_->rows());
  fde_pq_ = std::move(pq);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream msg;  // one write: other collections' threads log too
  msg << "vectord: collection '" << name_ << "': FDE PQ (m " << m << ", " << s
      << " training rows of the first " << t << ") over " << fde_pq_->rows() << " rows in " << secs
      << " s (training " << train_s << " s, in the background)\n";
  std::cerr << msg.str();
}

std::vector<uint32_t> CollectionImpl::FdePqCandidates(const float* fq, uint32_t cand,
                                                      const Roaring* allowed,
                                                      QueryExplain* ex) const {
  std::vector<float> acc;
  fde_pq_->Scan(fq, &acc);
  std::vector<std::pair<float, uint32_t>> sc;
  if (allowed) {
    sc.reserve(allowed->cardinality());
    for (auto it = allowed->begin(); it != allowed->end() && *it < vectors_->rows(); ++it) {
      sc.emplace_back(acc[*it], *it);
    }
  } else {
    sc.reserve(points_->live_count());
    const uint64_t* bits = points_->live_bits();
    for (size_t w = 0; w < (points_->rows() + 63) / 64; ++w) {
      for (uint64_t b = bits[w]; b != 0; b &= b - 1) {
        const uint32_t r =
            static_cast<uint32_t>(w * 64 + static_cast<uint64_t>(__builtin_ctzll(b)));
        sc.emplace_back(acc[r], r);
      }
    }
  }
  ex->rows_scored = sc.size();
  auto first = [](const std::pair<float, uint32_t>& a, const std::pair<float, uint32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  const uint32_t rescore = config_.multivector->muvera.fde_pq_rescore;
  const size_t pool = std::min<size_t>(sc.size(), size_t{cand} * rescore);
  if (pool < sc.size()) {
    std::nth_element(sc.begin(), sc.begin() + static_cast<ptrdiff_t>(pool), sc.end(), first);
    sc.resize(pool);
  }
  std::vector<uint32_t> rows;
  if (pool > cand) {
    // Re-score the pool with the float16 FDEs; keep the best `cand`.
    std::vector<index::Neighbor> best(pool);
    for (size_t i = 0; i < pool; ++i) {
      const uint32_t r = sc[i].second;
      best[i] = index::Neighbor{
          index::IpF32F16(fq, reinterpret_cast<const uint16_t*>(vectors_->ram_row(r)),
                          vectors_->dim()),
          r};
    }
    std::nth_element(best.begin(), best.begin() + cand, best.end(),
                     [](const index::Neighbor& a, const index::Neighbor& b) {
                       return a.score != b.score ? a.score > b.score : a.row < b.row;
                     });
    best.resize(cand);
    for (const auto& h : best) rows.push_back(h.row);
  } else {
    for (const auto& p : sc) rows.push_back(p.second);
  }
  std::sort(rows.begin(), rows.end());  // file order: nearby sets share pages
  return rows;
}

}  // namespace vectord
