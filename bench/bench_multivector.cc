// bench_multivector: multi-vector collections end to end through the engine (Collection::Search,
// as the HTTP server calls it): loads a multi-vector set (mate/multivec layout) into a collection
// with multivector_config + muvera_config, then measures exact Chamfer search (params.exact,
// the brute-force baseline, in the same run) and MUVERA search (FDE candidates from the
// collection's index, the 8-bit Chamfer stage, exact Chamfer re-rank) at several candidate and
// re-rank counts: recall@10 and recall@100 against the set's exact Chamfer ground truth, how often
// the source tile is in the top 10, QPS, p50/p99 (1 thread, one query per call), the speed-up over
// exact Chamfer, the stages' mean times (from explain), token pages read per query, load speed,
// FDE and 8-bit token copy bytes per document and peak RSS.
//
//   build/bench/bench_multivector [--data DIR] [--candidates 50,100,200,400,800] [--queries N]
//       [--k-sim 5] [--d-proj 8] [--r-reps 20] [--final-dim 0] [--datatype float32|float16]
//       [--spann-threshold N] [--layout full|pq4|pq8] [--nprobe N] [--on-disk] [--dir TMP]
//       (the SPANN index over the FDEs gets the HTTP API's settings for FDEs where --layout and
//       --spann leave them out: pq4 lists of 256 documents, docs/muvera.md)
//       [--fde-index pq4|exact] [--pq-m M] [--rescore F] [--prefilter N] [--no-exact] [--reopen]
//       [--rerank 0,50,100] [--config-rerank N] [--limit 100] [--csv FILE]
//       [--spann '{"max_replicas": 4, ...}'] [--spread F] [--fde-pq-max-rows N]
// --fde-pq-max-rows: muvera_config.fde_pq_max_rows (0 = the SPANN index serves the candidates as
// soon as it exists; default: the collection default, the FDE PQ in RAM serving beside it).
// --spann: more spann_config fields (JSON, as the HTTP API takes them) for the SPANN index over
// the FDEs; --spread: muvera_config.candidate_spread. --candidates 0 = the collection's default
// (muvera_config.candidates 0: by size and limit); the cand column is what explain reports asked,
// deliv what the candidate stage delivered, lists / fpages the posting lists and FDE index pages
// read per query.
// --fde-index picks the candidate stage below the SPANN threshold (muvera_config.fde_index),
// --pq-m / --rescore set fde_pq_m / fde_pq_rescore, --no-exact skips the exact Chamfer baseline,
// --reopen closes and reopens the database after loading (times the open, and the background
// rebuild of the FDE PQ that follows). --rerank: params.muvera.rerank values, each run at every
// candidate count (0 = rerank = candidates: the 8-bit stage skipped, every candidate exact; without
// the flag the collection default); --config-rerank sets muvera_config.rerank (0 = no 8-bit copy).
// --limit: results per query (recall@100 needs 100; the exact stage scores at least this many).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "bench/bench_util.h"
#include "bench/multivec_sets.h"
#include "index/chamfer_int8.h"
#include "src/collection/collection.h"
#include "src/search/query_planner.h"
#include "vectord/database.h"

using vectord::bench::Percentile;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string data = std::string(VECTORD_SHARED_DATA) + "/mate/multivec";
  std::string dir = "/tmp/vectord_bench_multivector";
  std::string csv;
  std::vector<uint32_t> candidates = {50, 100, 200, 400, 800};
  size_t queries = 0;  // 0 = all
  uint32_t k_sim = 5, d_proj = 8, r_reps = 20, final_dim = 0;
  std::string datatype = "float32";
  uint64_t spann_threshold = 0;
  std::string layout;  // empty: the HTTP API's default for FDEs (ApplyFdeSpannDefaults)
  uint32_t nprobe = 0;
  bool on_disk = false;  // token sets read from SSD per query (Qdrant's on_disk)
  std::string fde_index = "pq4";
  uint32_t pq_m = 0, rescore = 1;
  int prefilter = -1;  // muvera_config.prefilter_vectors; -1 = the default
  bool no_exact = false, reopen = false;
  std::vector<int> rerank = {-1};  // params.muvera.rerank per row; -1 = default, 0 = candidates
  int config_rerank = -1;          // muvera_config.rerank; -1 = the default
  size_t limit = 100;
  std::string spann_json;        // more spann_config fields
  float spread = 0;              // muvera_config.candidate_spread; 0 = the default
  int64_t fde_pq_max_rows = -1;  // muvera_config.fde_pq_max_rows; -1 = the default
};

uint64_t PeakRssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

struct Result {
  std::string mode;
  uint32_t candidates = 0;
  int rerank = -1;
  double r10 = 0, r100 = 0, src10 = 0, qps = 0, p50 = 0, p99 = 0, pages = 0;
  double cand_us = 0, int8_us = 0, exact_us = 0, int8_docs = 0, chamfer_docs = 0;
  double asked = 0, delivered = 0, lists = 0, fde_pages = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--data") {
      a.data = next();
    } else if (k == "--dir") {
      a.dir = next();
    } else if (k == "--csv") {
      a.csv = next();
    } else if (k == "--candidates") {
      a.candidates.clear();
      for (const auto& s : vectord::bench::SplitList(next(), ',')) {
        a.candidates.push_back(static_cast<uint32_t>(std::stoul(s)));
      }
    } else if (k == "--queries") {
      a.queries = std::stoul(next());
    } else if (k == "--k-sim") {
      a.k_sim = static_cast<uint32_t>(std::stoul(next()));
    } else if (k == "--d-proj") {
      a.d_proj = static_cast<uint32_t>(std::stoul(next()));
    } else if (k == "--r-reps") {
      a.r_reps = static_cast<uint32_t>(std::stoul(next()));
    } else if (k == "--final-dim") {
      a.final_dim = static_cast<uint32_t>(std::stoul(next()));
    } else if (k == "--datatype") {
      a.datatype = next();
    } else if (k == "--spann-threshold") {
      a.spann_threshold = std::stoull(next());
    } else if (k == "--layout") {
      a.layout = next();
    } else if (k == "--fde-index") {
      a.fde_index = next();
    } else if (k == "--pq-m") {
      a.pq_m = static_cast<uint32_t>(std::stoul(next()));
    } else if (k == "--prefilter") {
      a.prefilter = std::stoi(next());
    } else if (k == "--rerank") {
      a.rerank.clear();
      for (const auto& s : vectord::bench::SplitList(next(), ',')) a.rerank.push_back(std::stoi(s));
    } else if (k == "--config-rerank") {
      a.config_rerank = std::stoi(next());
    } else if (k == "--limit") {
      a.limit = std::stoul(next());
    } else if (k == "--rescore") {
      a.rescore = static_cast<uint32_t>(std::stoul(next()));
    } else if (k == "--no-exact") {
      a.no_exact = true;
    } else if (k == "--reopen") {
      a.reopen = true;
    } else if (k == "--on-disk") {
      a.on_disk = true;
    } else if (k == "--spann") {
      a.spann_json = next();
    } else if (k == "--fde-pq-max-rows") {
      a.fde_pq_max_rows = std::stoll(next());
    } else if (k == "--spread") {
      a.spread = std::stof(next());
    } else if (k == "--nprobe") {
      a.nprobe = static_cast<uint32_t>(std::stoul(next()));
    } else {
      std::fprintf(stderr, "unknown argument %s (see the header of bench/bench_multivector.cc)\n",
                   k.c_str());
      return 2;
    }
  }
  using vectord::bench::Sets;
  Sets docs, queries;
  std::vector<int32_t> gt, source;
  size_t gt_n = 0, src_n = 0;
  uint32_t gt_k = 0, src_k = 0;
  if (!vectord::bench::ReadSets(a.data + "/docs", &docs) ||
      !vectord::bench::ReadSets(a.data + "/queries", &queries) ||
      !vectord::bench::ReadIvecs(a.data + "/gt.ivecs", &gt, &gt_n, &gt_k) ||
      !vectord::bench::ReadIvecs(a.data + "/source.ivecs", &source, &src_n, &src_k)) {
    return 1;
  }
  const size_t nq = a.queries == 0 ? queries.n() : std::min(a.queries, queries.n());
  std::printf("# machine: %s, %u hardware threads; kernels: chamfer %s, int8 chamfer %s\n",
              vectord::bench::CpuModel().c_str(), std::thread::hardware_concurrency(),
              vectord::index::ChamferKernelLevel(), vectord::index::ChamferInt8KernelLevel());
  std::printf("# load average at start %s\n", vectord::bench::LoadAverage().c_str());
  std::printf("# data %s: %zu documents, %lu vectors (%.1f per document), %zu queries, dim %u\n",
              a.data.c_str(), docs.n(), static_cast<unsigned long>(docs.offsets.back()),
              double(docs.offsets.back()) / double(docs.n()), nq, docs.dim);

  std::filesystem::remove_all(a.dir);
  vectord::DatabaseOptions o;
  o.data_dir = a.dir;
  o.search_threads = std::max(2u, std::thread::hardware_concurrency());
  auto db = vectord::Database::Open(o);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  vectord::CollectionConfig cfg;
  cfg.dim = docs.dim;
  cfg.distance = vectord::Distance::kCosine;
  cfg.datatype =
      a.datatype == "float16" ? vectord::DataType::kFloat16 : vectord::DataType::kFloat32;
  cfg.fsync = false;
  cfg.on_disk = a.on_disk;
  vectord::MultivectorConfig mv;
  mv.muvera.k_sim = a.k_sim;
  mv.muvera.d_proj = a.d_proj;
  mv.muvera.r_reps = a.r_reps;
  mv.muvera.final_dim = a.final_dim;
  mv.muvera.fde_index = a.fde_index;
  mv.muvera.fde_pq_m = a.pq_m;
  mv.muvera.fde_pq_rescore = a.rescore;
  if (a.prefilter >= 0) mv.muvera.prefilter_vectors = static_cast<uint32_t>(a.prefilter);
  if (a.config_rerank >= 0) mv.muvera.rerank = static_cast<uint32_t>(a.config_rerank);
  if (a.spread > 0) mv.muvera.candidate_spread = a.spread;
  if (a.fde_pq_max_rows >= 0) mv.muvera.fde_pq_max_rows = static_cast<uint64_t>(a.fde_pq_max_rows);
  cfg.multivector = mv;
  if (a.spann_threshold > 0) {
    vectord::Json sj = a.spann_json.empty() ? vectord::Json::object()
                                            : vectord::Json::parse(a.spann_json, nullptr, false);
    if (!sj.is_object()) {
      std::fprintf(stderr, "--spann: not a JSON object\n");
      return 2;
    }
    sj["indexing_threshold"] = a.spann_threshold;
    if (!a.layout.empty() && !sj.contains("layout")) sj["layout"] = a.layout;
    if (a.nprobe) sj["nprobe"] = a.nprobe;
    auto sc = vectord::ParseSpannConfig(sj);
    if (!sc.ok()) {
      std::fprintf(stderr, "--spann: %s\n", sc.status().ToString().c_str());
      return 2;
    }
    // As the HTTP API creates it: the FDE settings where --spann leaves them out.
    vectord::ApplyFdeSpannDefaults(sj, vectord::MuveraFdeDim(mv.muvera), &*sc);
    std::printf("# spann_config %s\n", vectord::SpannConfigToJson(*sc).dump().c_str());
    a.layout = sc->layout;
    cfg.spann = *sc;
  }
  vectord::Status st = (*db)->CreateCollection("mv", cfg);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  std::shared_ptr<vectord::Collection> col = *(*db)->GetCollection("mv");
  const auto t_load = Clock::now();
  double max_upsert_s = 0;  // the slowest upsert call (256 documents)
  for (size_t i = 0; i < docs.n(); i += 256) {
    std::vector<vectord::PointStruct> batch;
    for (size_t d = i; d < std::min(docs.n(), i + 256); ++d) {
      vectord::PointStruct p;
      p.id = vectord::PointId::Num(d);
      p.vector.assign(docs.set(d), docs.set(d) + docs.size(d) * docs.dim);
      p.vector_count = static_cast<uint32_t>(docs.size(d));
      batch.push_back(std::move(p));
    }
    const auto t_batch = Clock::now();
    auto r = col->Upsert(std::move(batch), false);
    max_upsert_s =
        std::max(max_upsert_s, std::chrono::duration<double>(Clock::now() - t_batch).count());
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  std::printf(
      "# loaded in %.2f s = %.0f documents/s (FDE encoding + token store writes); slowest "
      "upsert of 256 documents %.3f s\n",
      load_s, docs.n() / load_s, max_upsert_s);
  // The FDE PQ trains in the background: searches are timed once it is installed.
  auto wait_pq = [&](const char* what, Clock::time_point since) {
    col->WaitIdle(0);
    std::printf("# %s + background FDE PQ done after %.2f s\n", what,
                std::chrono::duration<double>(Clock::now() - since).count());
  };
  wait_pq("load", t_load);
  if (a.reopen) {
    col.reset();
    db->reset();
    const auto t_open = Clock::now();
    db = vectord::Database::Open(o);
    if (!db.ok()) {
      std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
      return 1;
    }
    col = *(*db)->GetCollection("mv");
    std::printf("# reopened in %.2f s (token sets read, FDE rows read; FDE PQ in the background)\n",
                std::chrono::duration<double>(Clock::now() - t_open).count());
    wait_pq("open", t_open);
  }
  if (a.spann_threshold > 0) {
    for (int w = 0; w < 36000; ++w) {
      auto info = col->Info();
      if (info.status == "green" && info.indexed_vectors_count > 0) break;
      if (info.status == "red") {
        std::fprintf(stderr, "index build failed: %s\n", info.index_error.c_str());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::printf("# SPANN over FDEs (layout %s): %lu indexed\n", a.layout.c_str(),
                static_cast<unsigned long>(col->Info().indexed_vectors_count));
  }
  const uint32_t fde_dim = vectord::MuveraFdeDim(cfg.multivector->muvera);
  std::printf(
      "# MUVERA k_sim %u d_proj %u r_reps %u final_dim %u: FDE %u dims, stored as float16 = "
      "%u bytes per document (%s); token sets %s; token spans 12 bytes per document\n",
      a.k_sim, a.d_proj, a.r_reps, a.final_dim, fde_dim, fde_dim * 2,
      a.spann_threshold > 0 ? "SPANN posting lists on SSD"
      : a.fde_index == "pq4"
          ? "in RAM; candidates by the FDE PQ (fde_pq_m, 4 bits), re-scored x fde_pq_rescore"
          : "in RAM, exact FDE scan",
      a.on_disk ? "on SSD (O_DIRECT reads)" : "in RAM");
  if (auto* impl = dynamic_cast<vectord::CollectionImpl*>(col.get())) {
    const size_t b = impl->TokenCodesBytes();
    std::printf(
        "# 8-bit token copy (muvera_config.rerank %u): %.1f MiB = %.0f bytes per document "
        "(%.1f per token vector)\n",
        cfg.multivector->muvera.rerank, b / 1048576.0, double(b) / double(docs.n()),
        double(b) / double(docs.offsets.back()));
  }
  auto run = [&](bool exact, uint32_t cand, int rerank) {
    Result res;
    res.mode = exact ? "exact_chamfer" : "muvera";
    res.candidates = cand;
    res.rerank = rerank;
    std::vector<double> lat;
    double pages = 0;
    for (size_t q = 0; q < nq; ++q) {
      vectord::SearchRequest req;
      req.vector.assign(queries.set(q), queries.set(q) + queries.size(q) * queries.dim);
      req.vector_count = static_cast<uint32_t>(queries.size(q));
      req.limit = a.limit;
      req.exact = exact;
      if (!exact && cand > 0) req.muvera_candidates = cand;
      if (!exact && rerank >= 0) req.muvera_rerank = rerank == 0 ? cand : uint32_t(rerank);
      vectord::QueryExplain ex;
      const auto t0 = Clock::now();
      auto r = vectord::SearchExplained(*col, req, &ex);
      lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
        std::exit(1);
      }
      pages += double(ex.token_pages);
      res.cand_us += ex.candidates_us;
      res.int8_us += ex.int8_us;
      res.exact_us += ex.chamfer_us;
      res.int8_docs += double(ex.int8_docs);
      res.chamfer_docs += double(ex.chamfer_docs);
      res.asked += double(ex.muvera_candidates);
      res.delivered += double(ex.candidates_delivered);
      res.lists += double(ex.lists_probed);
      res.fde_pages += double(ex.pages_read);
      if (!exact) res.mode = "muvera_" + ex.multivector;
      std::set<int64_t> want10(gt.begin() + q * gt_k, gt.begin() + q * gt_k + 10);
      std::set<int64_t> want100(gt.begin() + q * gt_k, gt.begin() + q * gt_k + 100);
      size_t h10 = 0, h100 = 0;
      bool src = false;
      for (size_t i = 0; i < r->size(); ++i) {
        const int64_t id = static_cast<int64_t>((*r)[i].id.num());
        if (i < 10) {
          h10 += want10.count(id);
          src = src || id == source[q];
        }
        h100 += want100.count(id);
      }
      res.r10 += h10 / 10.0;
      res.r100 += h100 / 100.0;
      res.src10 += src;
    }
    double total = 0;
    for (double x : lat) total += x;
    res.r10 /= nq;
    res.r100 /= nq;
    res.src10 /= nq;
    res.qps = 1000.0 * nq / total;
    res.p50 = Percentile(lat, 0.5);
    res.p99 = Percentile(lat, 0.99);
    res.pages = pages / nq;
    for (double* x : {&res.cand_us, &res.int8_us, &res.exact_us, &res.int8_docs, &res.chamfer_docs,
                      &res.asked, &res.delivered, &res.lists, &res.fde_pages}) {
      *x /= double(nq);
    }
    return res;
  };
  double exact_qps = 0;
  auto print = [&](const Result& r) {
    char rr[16] = "-";
    if (r.rerank == 0) std::snprintf(rr, sizeof(rr), "all");
    if (r.rerank > 0) std::snprintf(rr, sizeof(rr), "%d", r.rerank);
    char r100[16] = "-";  // recall@100 needs 100 results
    if (a.limit >= 100) std::snprintf(r100, sizeof(r100), "%.4f", r.r100);
    std::printf(
        "%-16s %6.0f %6.0f %6s %6.4f %6s %6.3f %8.1f %7.1f %8.3f %8.3f %8.0f %7.0f %8.0f %8.0f "
        "%8.0f %6.1f %7.1f %6.0f\n",
        r.mode.c_str(), r.asked, r.delivered, rr, r.r10, r100, r.src10, r.qps,
        exact_qps > 0 ? r.qps / exact_qps : 0.0, r.p50, r.p99, r.int8_docs, r.chamfer_docs,
        r.cand_us, r.int8_us, r.exact_us, r.lists, r.fde_pages, r.pages);
    std::fflush(stdout);
  };
  std::vector<Result> rows;
  std::printf("# fde_index %s, fde_pq_m %u (0 = auto), fde_pq_rescore %u; limit %zu\n",
              a.fde_index.c_str(), a.pq_m, a.rescore, a.limit);
  std::printf(
      "# rerank: params.muvera.rerank (all = every candidate exact, - = collection default); "
      "int8/exact: documents per query scored by the 8-bit / exact Chamfer; *_us: mean stage "
      "times from explain (cand = query FDE + candidate search)\n");
  std::printf("%-16s %6s %6s %6s %6s %6s %6s %8s %7s %8s %8s %8s %7s %8s %8s %8s %6s %7s %6s\n",
              "mode", "cand", "deliv", "rerank", "R@10", "R@100", "src@10", "QPS", "xexact",
              "p50_ms", "p99_ms", "int8", "exact", "cand_us", "int8_us", "exact_us", "lists",
              "fpages", "pages");
  if (!a.no_exact) {
    rows.push_back(run(true, 0, -1));
    exact_qps = rows.back().qps;
    print(rows.back());
  }
  for (int r : a.rerank) {
    for (uint32_t c : a.candidates) {
      rows.push_back(run(false, c, r));
      print(rows.back());
    }
  }
  std::printf("# load average at end %s\n", vectord::bench::LoadAverage().c_str());
  std::printf("# peak RSS %.1f MiB (bench process: the loaded set in RAM as floats included)\n",
              PeakRssKb() / 1024.0);
  if (!a.csv.empty()) {
    std::ofstream out(a.csv);
    out << "mode,candidates,delivered,lists,fde_pages,rerank,recall10,recall100,source10,qps,"
           "x_exact,p50_ms,p99_ms,int8_docs,exact_docs,candidates_us,int8_us,exact_us,token_"
           "pages\n";
    for (const auto& r : rows) {
      out << r.mode << "," << r.asked << "," << r.delivered << "," << r.lists << "," << r.fde_pages
          << "," << r.rerank << "," << r.r10 << "," << r.r100 << "," << r.src10 << "," << r.qps
          << "," << (exact_qps > 0 ? r.qps / exact_qps : 0) << "," << r.p50 << "," << r.p99 << ","
          << r.int8_docs << "," << r.chamfer_docs << "," << r.cand_us << "," << r.int8_us << ","
          << r.exact_us << "," << r.pages << "\n";
    }
  }
  col.reset();
  db->reset();
  std::filesystem::remove_all(a.dir);
  return 0;
}
