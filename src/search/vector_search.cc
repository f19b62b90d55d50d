// Single-vector search over the collection's parts (vector_search.h).
#include "src/search/vector_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <unordered_map>

#include "src/search/query_planner.h"
#include "src/spann/list_summary.h"
#include "src/spann/row_codes.h"
#include "src/spann/spann_index.h"
#include "src/vectors/vector_store.h"
#include "storage/vector_file.h"

namespace vectord {
namespace {
// Above this many matching rows changed since the list summaries were built, a filtered search
// does not use the summaries (it would score them all exactly).
constexpr uint64_t kMaxDirtyMatches = 4096;
// Up to this many matching rows, the planner gets the exact number of vector file pages they
// occupy (rows of a filter correlated with insertion order share pages).
constexpr uint64_t kCountPagesMatches = 16384;
const Roaring kNoRows;
}  // namespace

Result<std::vector<index::Neighbor>> VectorSearch::BruteForceRows(const float* q, size_t k,
                                                                  const Roaring& allowed,
                                                                  uint64_t* scored,
                                                                  uint64_t* pages) const {
  std::vector<uint32_t> rows;
  for (auto it = allowed.begin(); it != allowed.end() && *it < ram_base_; ++it) rows.push_back(*it);
  *scored += rows.size();
  if (rows.empty()) return std::vector<index::Neighbor>();
  std::vector<uint8_t> gathered(rows.size() * row_bytes_), buf;
  if (spann_) {
    // O_DIRECT, all runs of nearby rows in one I/O batch (SpannIndex::ReadRows).
    VECTORD_RETURN_IF_ERROR(spann_->ReadRows(rows, gathered.data(), pages));
  }
  // Without the index (never on the search path): one buffered read per run of rows at most
  // ~4 KiB of records apart.
  const uint64_t gap = std::max<uint64_t>(1, 4096 / (uint64_t{row_bytes_} + 4));
  for (size_t i = spann_ ? rows.size() : 0; i < rows.size();) {
    size_t j = i + 1;
    while (j < rows.size() && rows[j] - rows[j - 1] <= gap && rows[j] - rows[i] < 1024) ++j;
    const uint64_t first = rows[i], n = uint64_t{rows[j - 1]} - first + 1;
    buf.resize(n * row_bytes_);
    VECTORD_RETURN_IF_ERROR(vectors_.Read(first, n, buf.data()));
    for (size_t t = i; t < j; ++t) {
      std::memcpy(gathered.data() + t * row_bytes_, buf.data() + (rows[t] - first) * row_bytes_,
                  row_bytes_);
    }
    i = j;
  }
  index::FlatView view{gathered.data(), rows.size(), vdim_, vtype_, vdist_};
  auto hits = index::FlatSearch(view, q, k);
  for (auto& h : hits) h.row = rows[h.row];
  return hits;
}

Result<std::vector<index::Neighbor>> VectorSearch::CodeScan(const float* q, size_t k,
                                                            const Roaring& allowed,
                                                            const RowCodes& codes, size_t r,
                                                            QueryExplain* ex,
                                                            uint64_t* pages) const {
  std::vector<std::pair<float, uint32_t>> best;  // (code distance, row), smaller is closer
  const auto t0 = std::chrono::steady_clock::now();
  codes.BestRows(q, allowed, ram_base_, r, &best, &ex->code_rows);
  ex->us_codes =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  std::sort(best.begin(), best.end());
  const PlannerCosts& c = DefaultPlannerCosts();
  const size_t first =
      c.code_first_round > 0
          ? std::min(best.size(), static_cast<size_t>(std::ceil(c.code_first_round * k)))
          : best.size();
  auto exact = [&](size_t from, size_t to, size_t kk) -> Result<std::vector<index::Neighbor>> {
    Roaring rows;
    for (size_t i = from; i < to; ++i) rows.add(best[i].second);
    return BruteForceRows(q, kk, rows, &ex->rows_scored, pages);
  };
  // Round 1: exact distances of the best `first` rows (all of them kept).
  VECTORD_ASSIGN_OR_RETURN(auto hits, exact(0, first, first));
  ex->rounds = 1;
  if (first < best.size()) {
    // In the codes' units: squared L2, or the negated inner product.
    const bool lower = LowerIsBetter(vdist_);
    auto units = [&](float score) { return lower ? score * score : -score; };
    std::unordered_map<uint32_t, float> code_of;
    for (size_t i = 0; i < first; ++i) code_of[best[i].second] = best[i].first;
    float under = 0;  // the largest amount by which a code distance fell short of the exact one
    for (const auto& h : hits) under = std::max(under, code_of[h.row] - units(h.score));
    std::sort(hits.begin(), hits.end(), [&](const index::Neighbor& a, const index::Neighbor& b) {
      return units(a.score) < units(b.score);
    });
    const float kth =
        hits.size() >= k ? units(hits[k - 1].score) : std::numeric_limits<float>::infinity();
    const float limit = kth + static_cast<float>(c.code_round_slack) * under;
    size_t end = first;
    while (end < best.size() && best[end].first <= limit) ++end;
    if (end > first) {
      VECTORD_ASSIGN_OR_RETURN(auto more, exact(first, end, k));
      hits.insert(hits.end(), more.begin(), more.end());
      ex->rounds = 2;
    }
  }
  const bool lower = LowerIsBetter(vdist_);
  std::sort(hits.begin(), hits.end(), [&](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return lower ? a.score < b.score : a.score > b.score;
    return a.row < b.row;
  });
  if (hits.size() > k) hits.resize(k);
  return hits;
}

Result<std::vector<index::Neighbor>> VectorSearch::Run(const float* qp, size_t k,
                                                       const SearchRequest& req,
                                                       const Roaring* allowed_ptr, QueryExplain* ex,
                                                       const CandidateFill* fill) const {
  const std::span<const float> q(qp, vdim_);
  const bool lower = LowerIsBetter(vdist_);
  auto better = [&](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return lower ? a.score < b.score : a.score > b.score;
    return a.row < b.row;
  };
  // Adds the exact top-k of the in-RAM delta rows to `hits`.
  auto merge_delta = [&](std::vector<index::Neighbor>* hits) {
    auto delta =
        vectors_.SearchRam(q.data(), k, ram_base_, rows_, allowed_ptr ? *allowed_ptr : live_);
    Roaring range;
    range.addRange(ram_base_, rows_);
    ex->rows_scored += (range & (allowed_ptr ? *allowed_ptr : live_)).cardinality();
    hits->insert(hits->end(), delta.begin(), delta.end());
    std::sort(hits->begin(), hits->end(), better);
    if (hits->size() > k) hits->resize(k);
  };
  std::vector<index::Neighbor> hits;
  if (ram_base_ == 0) {
    // Everything in RAM: one exact scan.
    ex->plan = SearchPlan::kExactRam;
    ex->rows_scored = ex->matches;
    index::FlatView view{vectors_.ram_row(0), rows_, vdim_, vtype_, vdist_};
    index::RowFilter rf;
    if (allowed_ptr) {
      rf.allowed = allowed_ptr;
    } else {
      rf.live_bits = live_bits_;
    }
    hits = index::FlatSearch(view, q.data(), k, rf);
  } else if (req.exact || !spann_) {
    ex->plan = SearchPlan::kExact;
    ex->rows_scored = ex->matches;
    VECTORD_ASSIGN_OR_RETURN(hits,
                             vectors_.SearchAll(q.data(), k, allowed_ptr ? *allowed_ptr : live_));
  } else {
    // SPANN over the indexed rows + exact over the in-RAM delta, merged. With a filter the
    // planner (src/query_planner.h) picks how the SPANN rows are searched.
    const SpannConfig& sc = *spann_config_;
    SpannSearchParams sp;
    sp.nprobe = req.spann_nprobe.value_or(sc.nprobe);
    sp.eps = req.spann_eps.value_or(sc.eps);
    sp.rerank = req.spann_rerank.value_or(sc.rerank);
    index::RowFilter rf;
    if (allowed_ptr) {
      rf.allowed = allowed_ptr;
    } else {
      rf.live_bits = live_bits_;
    }
    sp.filter = &rf;
    if (fill != nullptr) sp.exact_rerank = false;
    const uint64_t fill_rows =
        fill != nullptr ? static_cast<uint64_t>(std::ceil(fill->spread * static_cast<double>(k)))
                        : 0;
    SpannSearchStats st;
    if (!allowed_ptr && fill != nullptr) {
      // Candidates: the nearest lists holding fill_rows rows (at least nprobe lists), more rounds
      // while fewer than k live rows were found.
      ex->plan = SearchPlan::kUnfiltered;
      SpannAdaptiveParams ap;
      ap.first_lists = sp.nprobe;
      ap.first_rows = fill_rows;
      ap.stop_at_k = true;
      // Navigation ranks max_lists lists (each a centroid distance: thousands of dimensions for
      // FDEs): twice those the first round should need.
      const double per_list = std::max(1.0, spann_->MeanListEntries() / spann_->MeanReplicas());
      ap.max_lists = static_cast<uint32_t>(std::min<double>(
          spann_->alive_lists(),
          2 * std::max<double>(sp.nprobe, static_cast<double>(fill_rows) / per_list) + 32));
      SpannAdaptiveStats as;
      VECTORD_ASSIGN_OR_RETURN(
          hits, spann_->SearchAdaptive(q.data(), static_cast<uint32_t>(k), sp, ap, &st, &as));
      ex->rounds = as.rounds;
    } else if (!allowed_ptr) {
      ex->plan = SearchPlan::kUnfiltered;
      VECTORD_ASSIGN_OR_RETURN(hits, spann_->Search(q.data(), static_cast<uint32_t>(k), sp, &st));
    } else {
      PlanInput in;
      in.matches = allowed_ptr->rank(ram_base_ - 1);
      in.indexed_live = live_.rank(ram_base_ - 1);
      in.k = static_cast<uint32_t>(k);
      in.nprobe = sp.nprobe;
      in.mean_list_entries = spann_->MeanListEntries();
      in.mean_list_pages = spann_->MeanListPages();
      in.num_lists = spann_->num_lists();
      const RowCodes* row_codes = spann_->row_codes();
      in.row_codes = row_codes != nullptr && row_codes->rows() >= ram_base_;
      // Vector file pages brute force would read: counted when the matches are few enough to
      // walk (a few ns each), else estimated by the planner.
      const uint64_t rec = uint64_t{row_bytes_} + 4;
      in.file_pages = (storage::VectorFile::RecordOffset(ram_base_, row_bytes_) + 4095) / 4096;
      if (in.matches <= kCountPagesMatches) {
        uint64_t last = ~uint64_t{0};
        for (auto it = allowed_ptr->begin(); it != allowed_ptr->end() && *it < ram_base_; ++it) {
          const uint64_t off = storage::VectorFile::RecordOffset(*it, row_bytes_);
          const uint64_t first_page = off / 4096, end_page = (off + rec - 1) / 4096;
          in.match_pages += end_page - (last == first_page ? first_page : first_page - 1);
          last = end_page;
        }
      }
      // Lists the summaries leave for this filter; the matching rows changed since the summaries
      // were built are scored exactly beside them (too many: search without summaries).
      // Not worth computing where no list is read whatever they say: brute force cheaper than
      // any SPANN read, or the wide pool (s >= 0.5, which does not skip lists).
      std::optional<Roaring> cand_lists;
      Roaring dirty_matches;
      const PlannerCosts& costs = DefaultPlannerCosts();
      const PlanChoice pre = ChoosePlan(in);
      const bool worth = ForcedSearchPlan() == SearchPlan::kSpannFiltered ||
                         (pre.selectivity < costs.wide_pool_selectivity &&
                          !(pre.plan == SearchPlan::kBruteForce &&
                            pre.est_brute_us <= costs.spann_fixed_us + 2 * costs.list_us));
      if (summaries_ && worth) {
        cand_lists = summaries_->Candidates(*req.filter);
        if (cand_lists) {
          // Lists the summaries do not describe stay candidates; the matching rows they cannot
          // vouch for (changed since, or in no summarized list yet) are scored apart.
          if (stale_lists_ != nullptr) *cand_lists |= *stale_lists_;
          if (stale_lists_too_ != nullptr) *cand_lists |= *stale_lists_too_;
          if (!summary_dirty_.isEmpty()) dirty_matches = *allowed_ptr & summary_dirty_;
          if (unsummarized_from_ < ram_base_) {
            Roaring tail;
            tail.addRange(unsummarized_from_, ram_base_);
            dirty_matches |= *allowed_ptr & tail;
          }
          if (dirty_matches.cardinality() > kMaxDirtyMatches) {
            cand_lists.reset();
            dirty_matches = Roaring();
          }
        }
      }
      if (cand_lists) {
        in.summaries = true;
        in.candidate_lists = static_cast<uint32_t>(cand_lists->cardinality());
        ex->candidate_lists = in.candidate_lists;
      } else {
        ex->candidate_lists = in.num_lists;
      }
      PlanChoice choice = ChoosePlan(in);
      if (auto forced = ForcedSearchPlan()) {
        choice.plan = *forced;
        if (choice.first_lists == 0) choice.first_lists = std::max(in.nprobe, choice.est_lists);
        if (choice.max_lists == 0) choice.max_lists = in.num_lists;
        if (choice.pool_factor == 1 && *forced == SearchPlan::kSpannWidePool) {
          choice.first_lists = sp.nprobe;
        }
        if (*forced == SearchPlan::kCodeScan && !in.row_codes)
          choice.plan = SearchPlan::kBruteForce;
      }
      ex->plan = choice.plan;
      ex->est_brute_us = choice.est_brute_us;
      ex->est_spann_us = choice.est_spann_us;
      ex->est_code_us = choice.est_code_us;
      const size_t want = std::min<uint64_t>(k, in.matches);
      if (choice.plan == SearchPlan::kSpannFiltered) {
        SpannAdaptiveParams ap;
        ap.first_lists = choice.first_lists;
        ap.max_lists = choice.max_lists;
        ap.check_lists = choice.check_lists;
        ap.distance_stop = true;
        ap.distance_slack = static_cast<float>(DefaultPlannerCosts().distance_slack);
        ap.candidate_lists = cand_lists ? &*cand_lists : nullptr;
        ap.batch_distance_round = DefaultPlannerCosts().batch_distance_round;
        if (fill != nullptr) {
          ap.first_rows = fill_rows;
          ap.stop_at_k = true;
        }
        SpannAdaptiveStats as;
        VECTORD_ASSIGN_OR_RETURN(
            hits, spann_->SearchAdaptive(q.data(), static_cast<uint32_t>(k), sp, ap, &st, &as));
        ex->rounds = as.rounds;
        if (!dirty_matches.isEmpty()) {
          // Changed rows the skipped lists may hold: exact distances, merged (a row found twice has
          // the same exact score).
          VECTORD_ASSIGN_OR_RETURN(auto extra, BruteForceRows(q.data(), k, dirty_matches,
                                                              &ex->rows_scored, &st.pages_read));
          hits.insert(hits.end(), extra.begin(), extra.end());
          std::sort(hits.begin(), hits.end(), better);
          hits.erase(std::unique(hits.begin(), hits.end(),
                                 [](const index::Neighbor& a, const index::Neighbor& b) {
                                   return a.row == b.row;
                                 }),
                     hits.end());
          if (hits.size() > k) hits.resize(k);
        }
      } else if (choice.plan == SearchPlan::kSpannWidePool) {
        sp.nprobe = std::max(sp.nprobe, choice.first_lists);
        sp.eps = 0;  // no pruning: the matches of the wider pool may lie in farther lists
        sp.rerank = static_cast<uint32_t>(std::ceil(sp.rerank * choice.pool_factor));
        VECTORD_ASSIGN_OR_RETURN(hits, spann_->Search(q.data(), static_cast<uint32_t>(k), sp, &st));
        ex->rounds = 1;
      } else if (choice.plan == SearchPlan::kCodeScan) {
        // Every matching row scored from its code in RAM; the best R re-ranked with exact
        // distances read in one O_DIRECT batch.
        VECTORD_ASSIGN_OR_RETURN(
            hits, CodeScan(q.data(), k, *allowed_ptr, *row_codes,
                           std::max<size_t>(choice.code_rerank, want), ex, &st.pages_read));
      }
      if (choice.plan == SearchPlan::kBruteForce || hits.size() < want) {
        // Brute force, or the SPANN plans found fewer than k matches: finish exactly.
        ex->fallback = choice.plan != SearchPlan::kBruteForce;
        VECTORD_ASSIGN_OR_RETURN(
            hits, BruteForceRows(q.data(), k, *allowed_ptr, &ex->rows_scored, &st.pages_read));
      }
    }
    ex->lists_probed = st.lists_probed;
    ex->pages_read = st.pages_read;
    merge_delta(&hits);
  }
  return hits;
}

VectorSearch::VectorSearch(const SearchSources& s)
    : vectors_(*s.vectors),
      live_(*s.live),
      live_bits_(s.live_bits),
      spann_(s.index),
      summaries_(s.summaries),
      summary_dirty_(s.summary_dirty ? *s.summary_dirty : kNoRows),
      stale_lists_(s.stale_lists),
      stale_lists_too_(s.stale_lists_too),
      unsummarized_from_(s.unsummarized_from),
      spann_config_(s.spann),
      vdim_(s.vectors->dim()),
      vtype_(s.vectors->type()),
      vdist_(s.vectors->metric()),
      row_bytes_(s.vectors->row_bytes()),
      ram_base_(s.index ? s.indexed_rows : s.vectors->ram_base()),
      rows_(s.vectors->rows()) {}

}  // namespace vectord
