// Filtered search benchmark (issue 4): mate/sift + attrs.jsonl in a SPANN collection with payload
// indexes on "image" (keyword, correlated with the vectors) and "angle" (float, not correlated);
// filters matching ~50%, 10%, 1%, 0.1%, 0.01% of the points of each kind, plus no filter. For each:
// recall@10 against exact filtered ground truth (computed here by brute force), QPS, p50/p99 and
// the plans the query planner chose; then Faiss IVF-PQ (8-bit codes: Faiss 1.7.3's fast-scan
// rejects SearchParameters) + exact re-rank of k * k_factor, with an IDSelectorBitmap through
// SearchParametersIVF, same filters, same run.
// `--calibrate` instead forces each plan and fits the planner's cost constants
// (src/query_planner.cc DefaultPlannerCosts).
//
// Usage: bench_filtered [--data DIR] [--work DIR] [--queries N] [--reuse 1] [--calibrate 1]
//                       [--faiss 0|1] [--nlist 2048] [--m 32] [--only SUBSTRING]
//                       [--slow MS] [--row-code-bytes 16] [--pause-us US]
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "index/filter.h"
#include "index/flat_search.h"
#include "src/search/query_planner.h"
#include "storage/dataset_io.h"
#include "vectord/database.h"
#include "vectord/filter.h"

namespace {

using namespace vectord;
using Clock = std::chrono::steady_clock;

int Fail(const std::string& s) {
  std::fprintf(stderr, "bench_filtered: %s\n", s.c_str());
  return 1;
}

struct Attr {
  std::string image;
  double angle;
};

struct FilterCase {
  std::string name;
  Json json;
  FilterPtr filter;
  std::vector<uint8_t> bitmap;  // Faiss IDSelectorBitmap, bit i = point i matches
  Roaring rows;                 // point ids that match
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = VECTORD_SHARED_DATA "/mate/sift";
  std::string work = "/tmp/vectord_bench_filtered";
  size_t nq = 300, nlist = 2048, pq_m = 32;
  bool reuse = false, calibrate = false, run_faiss = true;
  std::string only;              // run only the filters whose name contains this
  double slow_ms = 0;            // print the explain output of queries at least this slow (stderr)
  uint32_t row_code_bytes = 16;  // spann_config.row_code_bytes of a new collection
  // Idle time between two queries (0 = back to back): latency at a lower, fixed load.
  size_t pause_us = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--data") data = v;
    if (a == "--work") work = v;
    if (a == "--queries") nq = std::stoul(v);
    if (a == "--reuse") reuse = v == "1";
    if (a == "--calibrate") calibrate = v == "1";
    if (a == "--faiss") run_faiss = v == "1";
    if (a == "--nlist") nlist = std::stoul(v);
    if (a == "--m") pq_m = std::stoul(v);
    if (a == "--only") only = v;
    if (a == "--slow") slow_ms = std::stod(v);
    if (a == "--row-code-bytes") row_code_bytes = static_cast<uint32_t>(std::stoul(v));
    if (a == "--pause-us") pause_us = std::stoul(v);
  }
  auto base = storage::DatasetReader::Open(data + "/base.bvecs");
  auto queries = storage::DatasetReader::Open(data + "/query.bvecs");
  if (!base.ok()) return Fail(base.status().ToString());
  if (!queries.ok()) return Fail(queries.status().ToString());
  const size_t n = (*base)->info().n, dim = (*base)->info().dim;
  std::vector<uint8_t> base_u8(n * dim);
  if (auto s = (*base)->ReadRaw(0, n, base_u8.data()); !s.ok()) return Fail(s.ToString());
  nq = std::min(nq, (*queries)->info().n);
  std::vector<float> q(nq * dim);
  if (auto s = (*queries)->ReadFloat(0, nq, q.data()); !s.ok()) return Fail(s.ToString());
  std::vector<Attr> attrs;
  std::vector<Json> payloads;
  {
    std::ifstream in(data + "/attrs.jsonl");
    std::string line;
    while (std::getline(in, line) && payloads.size() < n) {
      payloads.push_back(Json::parse(line));
      attrs.push_back(
          {payloads.back()["image"].get<std::string>(), payloads.back()["angle"].get<double>()});
    }
    if (payloads.size() != n) return Fail("attrs.jsonl has fewer lines than base.bvecs");
  }

  // The collection.
  if (!reuse) std::filesystem::remove_all(work);
  DatabaseOptions o;
  o.data_dir = work;
  o.search_threads = 2;
  auto db = Database::Open(o);
  if (!db.ok()) return Fail(db.status().ToString());
  const auto t_build = Clock::now();
  if (!reuse) {
    CollectionConfig cfg;
    cfg.dim = static_cast<uint32_t>(dim);
    cfg.distance = Distance::kEuclid;
    cfg.datatype = DataType::kUint8;
    cfg.fsync = false;
    SpannConfig sc;
    sc.indexing_threshold = n;
    sc.row_code_bytes = row_code_bytes;
    cfg.spann = sc;
    if (auto s = (*db)->CreateCollection("sift", cfg); !s.ok()) return Fail(s.ToString());
    auto coll = (*db)->GetCollection("sift").value();
    for (auto [field, type] : {std::pair{"image", PayloadSchemaType::kKeyword},
                               std::pair{"angle", PayloadSchemaType::kFloat}}) {
      if (auto r = coll->CreatePayloadIndex(field, type, false); !r.ok()) {
        return Fail(r.status().ToString());
      }
    }
    for (size_t first = 0; first < n; first += 10000) {
      std::vector<PointStruct> pts;
      for (size_t i = first; i < std::min(n, first + 10000); ++i) {
        pts.push_back(
            {PointId::Num(i),
             std::vector<float>(base_u8.begin() + i * dim, base_u8.begin() + (i + 1) * dim),
             payloads[i]});
      }
      if (auto r = coll->Upsert(std::move(pts), false); !r.ok()) {
        return Fail(r.status().ToString());
      }
    }
  }
  auto coll = (*db)->GetCollection("sift").value();
  for (;;) {
    auto info = coll->Info();
    if (info.status == "red") return Fail("build failed: " + info.index_error);
    if (info.status == "green" && info.indexed_vectors_count > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::printf("# vectord: %zu x %zu loaded + SPANN built in %.1f s (layout %s, nprobe %u)\n", n,
              dim, std::chrono::duration<double>(Clock::now() - t_build).count(),
              coll->config().spann->layout.c_str(), coll->config().spann->nprobe);

  // Filters: images chosen greedily (largest first that still fit) to approach each share;
  // angle windows from the sorted angles so that the share is hit exactly.
  std::map<std::string, size_t> image_count;
  for (const auto& a : attrs) image_count[a.image]++;
  std::vector<std::pair<size_t, std::string>> by_count;
  for (const auto& [img, c] : image_count) by_count.emplace_back(c, img);
  std::sort(by_count.rbegin(), by_count.rend());
  std::vector<double> angles;
  for (const auto& a : attrs) angles.push_back(a.angle);
  std::sort(angles.begin(), angles.end());
  std::vector<FilterCase> cases;
  cases.push_back({"none", Json(), nullptr, {}, {}});
  for (double share : {0.5, 0.1, 0.01, 0.001, 0.0001}) {
    const size_t target = static_cast<size_t>(std::llround(share * n));
    {
      Json any = Json::array();
      size_t got = 0;
      for (const auto& [c, img] : by_count) {
        if (got + c <= target + target / 5) {
          any.push_back(img);
          got += c;
        }
      }
      if (any.empty()) any.push_back(by_count.back().second);
      char name[64];
      std::snprintf(name, sizeof(name), "image %g%%", share * 100);
      cases.push_back(
          {name, Json{{"must", {{{"key", "image"}, {"match", {{"any", any}}}}}}}, nullptr, {}, {}});
    }
    {
      const double lo = angles[n / 3];
      const double hi = angles[std::min(n - 1, n / 3 + target)];
      char name[64];
      std::snprintf(name, sizeof(name), "angle %g%%", share * 100);
      cases.push_back({name,
                       Json{{"must", {{{"key", "angle"}, {"range", {{"gte", lo}, {"lt", hi}}}}}}},
                       nullptr,
                       {},
                       {}});
    }
  }
  for (auto& c : cases) {
    c.bitmap.assign((n + 7) / 8, 0);
    if (c.json.is_null()) {
      c.rows.addRange(0, n);
    } else {
      auto f = ParseFilter(c.json);
      if (!f.ok()) return Fail(f.status().ToString());
      c.filter = *f;
      for (size_t i = 0; i < n; ++i) {
        if (index::MatchesPayload(*c.filter, &payloads[i], nullptr)) c.rows.add(i);
      }
    }
    for (uint32_t r : c.rows) c.bitmap[r >> 3] |= uint8_t(1u << (r & 7));
  }

  // Exact filtered ground truth.
  const size_t k = 10;
  index::FlatView view{base_u8.data(), n, static_cast<uint32_t>(dim), DataType::kUint8,
                       Distance::kEuclid};
  std::vector<std::vector<std::set<uint32_t>>> truth(cases.size());
  for (size_t c = 0; c < cases.size(); ++c) {
    index::RowFilter rf;
    rf.allowed = &cases[c].rows;
    for (size_t i = 0; i < nq; ++i) {
      std::set<uint32_t> t;
      for (const auto& h : index::FlatSearch(view, q.data() + i * dim, k, rf)) t.insert(h.row);
      truth[c].push_back(std::move(t));
    }
  }

  double cand_lists = 0;  // mean lists the list summaries leave (all lists without them)
  double rounds = 0;      // mean rounds (I/O round trips) of the filtered plan
  auto run_vectord = [&](size_t c, double* recall, std::vector<double>* lat,
                         std::map<std::string, int>* plans, double* lists, double* pages,
                         double* select_ms) {
    size_t hit = 0, total = 0;
    *lists = *pages = *select_ms = cand_lists = rounds = 0;
    lat->clear();
    for (size_t i = 0; i < nq; ++i) {
      SearchRequest req;
      req.vector.assign(q.begin() + i * dim, q.begin() + (i + 1) * dim);
      req.limit = k;
      req.filter = cases[c].filter;
      QueryExplain ex;
      if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
      const auto t0 = Clock::now();
      auto res = SearchExplained(*coll, req, &ex);
      lat->push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!res.ok()) return Fail(res.status().ToString());
      if (slow_ms > 0 && lat->back() >= slow_ms) {
        std::fprintf(stderr, "slow %s query %zu %.3f ms: %s\n", cases[c].name.c_str(), i,
                     lat->back(), ex.ToJson().dump().c_str());
      }
      (*plans)[SearchPlanName(ex.plan)]++;
      *lists += ex.lists_probed;
      cand_lists += ex.candidate_lists;
      rounds += ex.rounds;
      *pages += ex.pages_read;
      *select_ms += ex.us_select / 1000;
      for (const auto& p : *res) hit += truth[c][i].count(static_cast<uint32_t>(p.id.num()));
      total += truth[c][i].size();
    }
    *recall = total ? double(hit) / total : 1;
    *lists /= nq;
    cand_lists /= nq;
    rounds /= nq;
    *pages /= nq;
    *select_ms /= nq;
    return 0;
  };

  if (calibrate) {
    // time = fixed + slope * x, least squares, x = matching rows (brute force) or lists read
    // (SPANN filtered), over the angle filters (matches spread over the whole vector file).
    for (SearchPlan p :
         {SearchPlan::kBruteForce, SearchPlan::kSpannFiltered, SearchPlan::kCodeScan}) {
      SetForcedSearchPlan(p);
      // Per filter: medians of x and of time (robust to the shared machine's outliers); the fit
      // goes through the per-filter medians.
      std::vector<std::pair<double, double>> pts;
      for (size_t c = 0; c < cases.size(); ++c) {
        if (cases[c].name.rfind("angle", 0) != 0) continue;
        std::vector<double> xs, ys;
        for (size_t i = 0; i < nq; ++i) {
          SearchRequest req;
          req.vector.assign(q.begin() + i * dim, q.begin() + (i + 1) * dim);
          req.limit = k;
          req.filter = cases[c].filter;
          QueryExplain ex;
          if (!SearchExplained(*coll, req, &ex).ok()) return Fail("search failed");
          if (ex.fallback) continue;
          xs.push_back(p == SearchPlan::kBruteForce ? double(ex.rows_scored)
                       : p == SearchPlan::kCodeScan ? double(ex.code_rows)
                                                    : double(ex.lists_probed));
          ys.push_back(ex.us_search);
        }
        if (xs.empty()) continue;
        pts.emplace_back(Pct(xs, 0.5), Pct(ys, 0.5));
        std::printf("calibrate %-15s %-14s median x %10.1f  median us %10.1f  (%zu queries)\n",
                    SearchPlanName(p), cases[c].name.c_str(), pts.back().first, pts.back().second,
                    xs.size());
      }
      double sx = 0, sy = 0, sxx = 0, sxy = 0;
      for (auto [x, y] : pts) {
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
      }
      const double m = double(pts.size());
      const double slope = (m * sxy - sx * sy) / std::max(1e-9, m * sxx - sx * sx);
      const double fixed = (sy - slope * sx) / m;
      std::printf("calibrate %-15s fixed_us %8.2f  per_%s_us %8.4f\n", SearchPlanName(p), fixed,
                  p == SearchPlan::kSpannFiltered ? "list" : "row", slope);
    }
    SetForcedSearchPlan(std::nullopt);
    return 0;
  }

  std::printf("%-14s %8s | %-30s %7s %8s %7s %7s %6s %6s %6s %6s %6s | %-20s %7s %8s %7s %7s\n",
              "filter", "matches", "vectord plans", "recall", "QPS", "p50ms", "p99ms", "sel_ms",
              "cand", "rounds", "lists", "pages", "faiss (nprobe,kf)", "recall", "QPS", "p50ms",
              "p99ms");
  // Faiss IVF-PQ, trained once.
  std::unique_ptr<faiss::IndexFlatL2> quantizer;
  std::unique_ptr<faiss::IndexIVF> ivf;
  std::vector<float> base_f;
  if (run_faiss) {
    omp_set_num_threads(1);
    base_f.assign(base_u8.begin(), base_u8.end());
    const auto t0 = Clock::now();
    quantizer = std::make_unique<faiss::IndexFlatL2>(dim);
    // Faiss 1.7.3's IndexIVFFastScan::search rejects SearchParameters ("search params not
    // supported for this index"), so no IDSelector: the filtered baseline is 8-bit IVF-PQ.
    ivf = std::make_unique<faiss::IndexIVFPQ>(quantizer.get(), dim, nlist, pq_m, 8);
    const size_t train = std::min(n, 64 * nlist);
    omp_set_num_threads(2);
    ivf->train(train, base_f.data());
    ivf->add(n, base_f.data());
    omp_set_num_threads(1);
    std::printf("# faiss IVF%zu,PQ%zu (8-bit) trained + added in %.1f s; re-rank k*kf exact\n",
                nlist, pq_m, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  for (size_t c = 0; c < cases.size(); ++c) {
    if (!only.empty() && cases[c].name.find(only) == std::string::npos) continue;
    double recall, lists, pages, select_ms;
    std::vector<double> lat;
    std::map<std::string, int> plans;
    if (int rc = run_vectord(c, &recall, &lat, &plans, &lists, &pages, &select_ms); rc != 0) {
      return rc;
    }
    const double qps = nq / (std::accumulate(lat.begin(), lat.end(), 0.0) / 1000);
    std::string ps;
    for (const auto& [p, cnt] : plans)
      ps += (ps.empty() ? "" : ",") + p + ":" + std::to_string(cnt);
    std::printf("%-14s %8llu | %-30s %7.4f %8.1f %7.3f %7.3f %6.3f %6.0f %6.2f %6.1f %6.1f |",
                cases[c].name.c_str(), static_cast<unsigned long long>(cases[c].rows.cardinality()),
                ps.c_str(), recall, qps, Pct(lat, 0.5), Pct(lat, 0.99), select_ms, cand_lists,
                rounds, lists, pages);
    std::string faiss_csv;
    if (run_faiss) {
      // Smallest (nprobe, k_factor) reaching vectord's recall (or the best tried).
      faiss::IDSelectorBitmap sel(cases[c].bitmap.size(), cases[c].bitmap.data());
      double best_recall = -1, f_qps = 0, f_p50 = 0, f_p99 = 0;
      std::string best_cfg;
      for (size_t np : {16, 32, 64, 128, 256, 512, 1024, 2048}) {
        const size_t kf = 16;
        faiss::SearchParametersIVF sp;
        sp.nprobe = np;
        sp.sel = cases[c].filter ? &sel : nullptr;
        std::vector<float> d(k * kf);
        std::vector<faiss::Index::idx_t> ids(k * kf);
        std::vector<double> fl;
        size_t hit = 0, total = 0;
        try {
          for (size_t i = 0; i < nq; ++i) {
            const float* qi = q.data() + i * dim;
            const auto t0 = Clock::now();
            ivf->search(1, qi, k * kf, d.data(), ids.data(), &sp);
            std::vector<std::pair<float, int64_t>> rr;
            for (size_t j = 0; j < k * kf; ++j) {
              if (ids[j] < 0) continue;
              const float* x = base_f.data() + ids[j] * dim;
              float s = 0;
              for (size_t t = 0; t < dim; ++t) s += (qi[t] - x[t]) * (qi[t] - x[t]);
              rr.emplace_back(s, ids[j]);
            }
            std::sort(rr.begin(), rr.end());
            if (rr.size() > k) rr.resize(k);
            fl.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            for (auto [s, id] : rr) hit += truth[c][i].count(static_cast<uint32_t>(id));
            total += truth[c][i].size();
          }
        } catch (const std::exception& e) {
          return Fail(std::string("faiss: ") + e.what());
        }
        const double r = total ? double(hit) / total : 1;
        if (r > best_recall + 1e-9) {
          best_recall = r;
          f_qps = nq / (std::accumulate(fl.begin(), fl.end(), 0.0) / 1000);
          f_p50 = Pct(fl, 0.5);
          f_p99 = Pct(fl, 0.99);
          best_cfg = "(" + std::to_string(np) + "," + std::to_string(kf) + ")";
        }
        if (r >= recall - 1e-9) break;
      }
      std::printf(" %-20s %7.4f %8.1f %7.3f %7.3f", best_cfg.c_str(), best_recall, f_qps, f_p50,
                  f_p99);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
