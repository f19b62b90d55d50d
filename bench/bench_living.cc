// The living SPANN index under writes (docs/spann.md "Living index"), embedded (Collection API),
// O_DIRECT reads, recall@10 against exact ground truth of the live set:
//   grow   index built at --initial points, the rest streamed in at full speed (one writer) while
//          one client queries; ingest rate, query p50/p99 idle and during the stream, time from
//          the last write to idle, then recall/QPS/pages against a fresh one-shot build.
//   churn  --rounds rounds of deleting --share of the points at random and inserting as many
//          held back at first; recall/QPS/pages, disk and RAM after each round against a fresh
//          build of the same live set.
//   shift  points inserted sorted by the `image` attribute (new clusters keep arriving): list
//          sizes and pages per query against a fresh build.
//   cost   CPU seconds and bytes written to absorb the grow run's writes, against rebuilding the
//          index from scratch at every doubling (the global-rebuild alternative).
// Prints the machine and its load first; one table row per measurement.
//
// Usage: bench_living --data DIR [--mode grow|churn|shift|cost] [--initial 20000]
//        [--nprobe 32] [--queries 1000] [--rounds 10] [--share 0.05] [--work DIR] [--limit N]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "index/flat_search.h"
#include "src/spann/spann_builder.h"
#include "src/vectors/vector_source.h"
#include "storage/dataset_io.h"
#include "storage/vector_file.h"
#include "vectord/database.h"

namespace {

using namespace vectord;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// A field of /proc/self/status or /proc/self/io as a number ("VmRSS:" kB, "write_bytes:").
double ProcField(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size()));
  }
  return -1;
}

uint64_t DirBytes(const std::string& dir, const std::string& name_prefix) {
  uint64_t b = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().filename().string().rfind(name_prefix, 0) == 0) {
      b += e.file_size();
    }
  }
  return b;
}

struct Data {
  uint32_t dim = 0;
  size_t n = 0;
  std::vector<uint8_t> base;  // n x dim
  std::vector<float> queries;
  size_t nq = 0;
  std::vector<std::string> image;  // per base row (shift mode)
};

int Fail(const Status& s) {
  std::fprintf(stderr, "bench_living: %s\n", s.ToString().c_str());
  return 1;
}

struct Args {
  std::string data, work = "/tmp/vectord_bench_living", mode = "grow";
  size_t initial = 20000, queries = 1000, rounds = 10, limit = 0;
  uint32_t nprobe = 32;
  double share = 0.05;
  int reassign_neighbors = -1;  // -1: the engine's default
};

class Bench {
 public:
  Bench(const Args& a, Data d) : a_(a), d_(std::move(d)) {}

  Status OpenDb() {
    db_.reset();
    fs::remove_all(a_.work);
    DatabaseOptions o;
    o.data_dir = a_.work;
    VECTORD_ASSIGN_OR_RETURN(db_, Database::Open(o));
    return Status::OK();
  }
  Result<std::shared_ptr<Collection>> Create(const std::string& name, uint64_t threshold) {
    CollectionConfig cfg;
    cfg.dim = d_.dim;
    cfg.distance = Distance::kEuclid;
    cfg.datatype = DataType::kUint8;
    cfg.fsync = false;
    SpannConfig sc;
    sc.indexing_threshold = threshold;
    sc.nprobe = a_.nprobe;
    if (a_.reassign_neighbors >= 0) sc.reassign_neighbors = a_.reassign_neighbors;
    cfg.spann = sc;
    VECTORD_RETURN_IF_ERROR(db_->CreateCollection(name, cfg));
    return db_->GetCollection(name);
  }
  // Upserts rows `order[from, to)` (ids = row numbers) in batches of 1000.
  Status Upsert(Collection& c, const std::vector<uint32_t>& order, size_t from, size_t to) {
    std::vector<PointStruct> pts;
    for (size_t i = from; i < to; ++i) {
      PointStruct p;
      p.id = PointId::Num(order[i]);
      p.vector.assign(d_.base.begin() + size_t{order[i]} * d_.dim,
                      d_.base.begin() + size_t{order[i] + 1} * d_.dim);
      pts.push_back(std::move(p));
      if (pts.size() == 1000 || i + 1 == to) {
        auto r = c.Upsert(std::move(pts), false);
        if (!r.ok()) return r.status();
        pts.clear();
      }
    }
    return Status::OK();
  }
  Status Delete(Collection& c, const std::vector<uint32_t>& ids) {
    for (size_t i = 0; i < ids.size(); i += 1000) {
      PointSelector sel;
      for (size_t j = i; j < std::min(ids.size(), i + 1000); ++j) {
        sel.ids.push_back(PointId::Num(ids[j]));
      }
      auto r = c.Delete(sel, false);
      if (!r.ok()) return r.status();
    }
    return Status::OK();
  }
  // Exact top-10 of every query over the rows in `live` (ids = rows).
  std::vector<std::vector<uint32_t>> Truth(const Roaring& live) const {
    index::FlatView view{d_.base.data(), d_.n, d_.dim, DataType::kUint8, Distance::kEuclid};
    index::RowFilter rf;
    rf.allowed = &live;
    auto res = index::FlatSearchBatch(view, d_.queries.data(), d_.nq, 10, rf, 2);
    std::vector<std::vector<uint32_t>> out(d_.nq);
    for (size_t q = 0; q < d_.nq; ++q) {
      for (const auto& h : res[q]) out[q].push_back(h.row);
    }
    return out;
  }
  struct Measure {
    double recall = 0, qps = 0, p50 = 0, p99 = 0, pages = 0;
  };
  Result<Measure> Run(Collection& c, const std::vector<std::vector<uint32_t>>& truth) const {
    Measure m;
    std::vector<double> lat;
    uint64_t pages = 0, hit = 0;
    const auto t0 = Clock::now();
    for (size_t q = 0; q < d_.nq; ++q) {
      SearchRequest r;
      r.vector.assign(d_.queries.begin() + q * d_.dim, d_.queries.begin() + (q + 1) * d_.dim);
      r.limit = 10;
      r.spann_nprobe = a_.nprobe;
      QueryExplain ex;
      const auto t = Clock::now();
      auto res = c.Search(r, &ex);
      lat.push_back(Since(t) * 1e6);
      if (!res.ok()) return res.status();
      pages += ex.pages_read;
      for (const auto& p : *res) {
        hit += std::find(truth[q].begin(), truth[q].end(), p.id.num()) != truth[q].end();
      }
    }
    const double secs = Since(t0);
    m.recall = static_cast<double>(hit) / (10.0 * static_cast<double>(d_.nq));
    m.qps = static_cast<double>(d_.nq) / secs;
    m.p50 = bench::Percentile(lat, 0.5);
    m.p99 = bench::Percentile(lat, 0.99);
    m.pages = static_cast<double>(pages) / static_cast<double>(d_.nq);
    return m;
  }
  static void Print(const std::string& what, const Measure& m, const CollectionInfo& info) {
    const uint64_t ram = [&] {
      for (const auto& [part, b] : info.memory) {
        if (part == "spann_index") return b;
      }
      return uint64_t{0};
    }();
    const double pts = std::max<double>(1, static_cast<double>(info.points_count));
    std::printf(
        "%-28s recall@10 %.4f  qps %7.0f  p50 %6.0f us  p99 %6.0f us  pages %5.1f  lists %6lu  "
        "index RAM %.1f B/pt  posting %.0f B/pt (%.0f free)\n",
        what.c_str(), m.recall, m.qps, m.p50, m.p99, m.pages,
        info.index_updates ? static_cast<unsigned long>(info.index_updates->lists) : 0ul,
        static_cast<double>(ram) / pts,
        info.index_updates ? static_cast<double>(info.index_updates->posting_file_bytes) / pts
                           : 0.0,
        info.index_updates ? static_cast<double>(info.index_updates->free_bytes) / pts : 0.0);
    std::fflush(stdout);
  }

  int Grow();
  int Churn();
  int Shift();
  int Cost();

 private:
  Args a_;
  Data d_;
  std::unique_ptr<Database> db_;
};

int Bench::Grow() {
  if (Status s = OpenDb(); !s.ok()) return Fail(s);
  std::vector<uint32_t> order(d_.n);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 rng(7);
  std::shuffle(order.begin(), order.end(), rng);
  auto c = Create("live", a_.initial);
  if (!c.ok()) return Fail(c.status());
  Collection& coll = **c;
  if (Status s = Upsert(coll, order, 0, a_.initial); !s.ok()) return Fail(s);
  coll.WaitIdle(0);
  // Idle latency at the start, one client.
  Roaring first;
  for (size_t i = 0; i < a_.initial; ++i) first.add(order[i]);
  auto idle = Run(coll, Truth(first));
  if (!idle.ok()) return Fail(idle.status());
  Print("grow: idle at start", *idle, coll.Info());
  // The stream: one writer at full speed, one client querying until it ends.
  std::atomic<bool> done{false};
  Status wst;
  const double cpu0 = CpuSeconds();
  const double wb0 = ProcField("/proc/self/io", "write_bytes:");
  const auto t0 = Clock::now();
  std::thread writer([&] {
    wst = Upsert(coll, order, a_.initial, d_.n);
    done = true;
  });
  std::vector<double> lat;
  size_t q = 0;
  while (!done) {
    SearchRequest r;
    r.vector.assign(d_.queries.begin() + (q % d_.nq) * d_.dim,
                    d_.queries.begin() + (q % d_.nq + 1) * d_.dim);
    r.limit = 10;
    const auto t = Clock::now();
    auto res = coll.Search(r);
    lat.push_back(Since(t) * 1e6);
    if (!res.ok()) return Fail(res.status());
    ++q;
  }
  writer.join();
  if (!wst.ok()) return Fail(wst);
  const double stream_s = Since(t0);
  const auto t1 = Clock::now();
  coll.WaitIdle(0);
  const double green_s = Since(t1);
  const double cpu = CpuSeconds() - cpu0;
  const double wb = ProcField("/proc/self/io", "write_bytes:") - wb0;
  CollectionInfo info = coll.Info();
  std::printf(
      "grow: streamed %zu points in %.1f s = %.0f points/s; %zu queries during it: p50 %.0f us "
      "p99 %.0f us (idle p50 %.0f p99 %.0f); idle (green) %.1f s after the last write\n",
      d_.n - a_.initial, stream_s, static_cast<double>(d_.n - a_.initial) / stream_s, q,
      bench::Percentile(lat, 0.5), bench::Percentile(lat, 0.99), idle->p50, idle->p99, green_s);
  if (info.index_updates) {
    const auto& u = *info.index_updates;
    std::printf(
        "grow: updater %lu cycles, %lu splits, %lu merges, %lu reassigned, %lu lists written, "
        "%.1f MB written, %.1f CPU s; process CPU %.1f s, %.1f MB written to storage during the "
        "stream and until idle\n",
        static_cast<unsigned long>(u.cycles), static_cast<unsigned long>(u.splits),
        static_cast<unsigned long>(u.merges), static_cast<unsigned long>(u.reassigned),
        static_cast<unsigned long>(u.lists_written), static_cast<double>(u.bytes_written) / 1e6,
        u.cpu_seconds, cpu, wb / 1e6);
  }
  Roaring all;
  all.addRange(0, d_.n);
  const auto truth = Truth(all);
  auto live = Run(coll, truth);
  if (!live.ok()) return Fail(live.status());
  Print("grow: living index", *live, info);
  std::printf("grow: RSS %.0f MB\n", ProcField("/proc/self/status", "VmRSS:") / 1024);
  // The same final set built at once.
  auto f = Create("fresh", d_.n);
  if (!f.ok()) return Fail(f.status());
  if (Status s = Upsert(**f, order, 0, d_.n); !s.ok()) return Fail(s);
  (*f)->WaitIdle(0);
  auto fresh = Run(**f, truth);
  if (!fresh.ok()) return Fail(fresh.status());
  Print("grow: fresh build", *fresh, (*f)->Info());
  std::printf("grow: living / fresh: recall %+.4f, QPS x%.2f, pages x%.2f\n",
              live->recall - fresh->recall, live->qps / fresh->qps, live->pages / fresh->pages);
  return 0;
}

int Bench::Churn() {
  if (Status s = OpenDb(); !s.ok()) return Fail(s);
  std::vector<uint32_t> order(d_.n);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 rng(11);
  std::shuffle(order.begin(), order.end(), rng);
  // Half is held back for the rounds' inserts.
  const size_t start = d_.n - static_cast<size_t>(a_.share * a_.rounds * d_.n);
  auto c = Create("live", start);
  if (!c.ok()) return Fail(c.status());
  if (Status s = Upsert(**c, order, 0, start); !s.ok()) return Fail(s);
  (*c)->WaitIdle(0);
  std::vector<uint32_t> live_ids(order.begin(), order.begin() + start);
  size_t next = start;
  for (size_t round = 0; round <= a_.rounds; ++round) {
    if (round > 0) {
      const size_t k = static_cast<size_t>(a_.share * d_.n);
      std::shuffle(live_ids.begin(), live_ids.end(), rng);
      std::vector<uint32_t> gone(live_ids.end() - k, live_ids.end());
      live_ids.resize(live_ids.size() - k);
      if (Status s = Delete(**c, gone); !s.ok()) return Fail(s);
      const size_t to = std::min(d_.n, next + k);
      if (Status s = Upsert(**c, order, next, to); !s.ok()) return Fail(s);
      live_ids.insert(live_ids.end(), order.begin() + next, order.begin() + to);
      next = to;
      (*c)->WaitIdle(0);
    }
    Roaring live;
    for (uint32_t r : live_ids) live.add(r);
    const auto truth = Truth(live);
    auto m = Run(**c, truth);
    if (!m.ok()) return Fail(m.status());
    Print("churn round " + std::to_string(round) + ": living", *m, (*c)->Info());
    // A fresh build of the same live set.
    const std::string name = "fresh" + std::to_string(round);
    auto f = Create(name, live_ids.size());
    if (!f.ok()) return Fail(f.status());
    if (Status s = Upsert(**f, live_ids, 0, live_ids.size()); !s.ok()) return Fail(s);
    (*f)->WaitIdle(0);
    auto fm = Run(**f, truth);
    if (!fm.ok()) return Fail(fm.status());
    Print("churn round " + std::to_string(round) + ": fresh", *fm, (*f)->Info());
    const CollectionInfo li = (*c)->Info(), fi = (*f)->Info();
    auto index_ram = [](const CollectionInfo& i) {
      for (const auto& [part, b] : i.memory) {
        if (part == "spann_index") return static_cast<double>(b);
      }
      return 0.0;
    };
    std::printf(
        "churn round %zu: living / fresh: recall %+.4f, QPS x%.2f, pages x%.2f, posting file "
        "x%.2f, index RAM x%.2f\n",
        round, m->recall - fm->recall, m->qps / fm->qps, m->pages / fm->pages,
        static_cast<double>(li.index_updates->posting_file_bytes) /
            static_cast<double>(fi.index_updates->posting_file_bytes),
        index_ram(li) / index_ram(fi));
    std::fflush(stdout);
    (void)db_->DropCollection(name);
  }
  return 0;
}

int Bench::Shift() {
  if (Status s = OpenDb(); !s.ok()) return Fail(s);
  if (d_.image.size() != d_.n) {
    return Fail(Status::InvalidArgument("shift needs attrs.jsonl with `image`"));
  }
  std::vector<uint32_t> order(d_.n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return d_.image[a] < d_.image[b]; });
  auto c = Create("live", a_.initial);
  if (!c.ok()) return Fail(c.status());
  for (size_t from = 0; from < d_.n; from += 100000) {
    const size_t to = std::min(d_.n, from + 100000);
    if (Status s = Upsert(**c, order, from, to); !s.ok()) return Fail(s);
  }
  (*c)->WaitIdle(0);
  Roaring all;
  all.addRange(0, d_.n);
  const auto truth = Truth(all);
  auto m = Run(**c, truth);
  if (!m.ok()) return Fail(m.status());
  Print("shift: living (sorted by image)", *m, (*c)->Info());
  auto f = Create("fresh", d_.n);
  if (!f.ok()) return Fail(f.status());
  if (Status s = Upsert(**f, order, 0, d_.n); !s.ok()) return Fail(s);
  (*f)->WaitIdle(0);
  auto fm = Run(**f, truth);
  if (!fm.ok()) return Fail(fm.status());
  Print("shift: fresh build", *fm, (*f)->Info());
  std::printf("shift: living / fresh: recall %+.4f, pages x%.2f, lists x%.2f\n",
              m->recall - fm->recall, m->pages / fm->pages,
              static_cast<double>((*c)->Info().index_updates->lists) /
                  static_cast<double>((*f)->Info().index_updates->lists));
  return 0;
}

int Bench::Cost() {
  // Rebuilding from scratch at every doubling from --initial up to n: CPU and bytes written.
  if (Status s = OpenDb(); !s.ok()) return Fail(s);
  const std::string vec = a_.work + "/cost.vdv";
  auto vf = storage::VectorFile::Open(vec, d_.dim, DataType::kUint8);
  if (!vf.ok()) return Fail(vf.status());
  if (Status s = (*vf)->Append(d_.base.data(), d_.n); !s.ok()) return Fail(s);
  double cpu_total = 0, bytes_total = 0;
  for (size_t rows = a_.initial;; rows = std::min(d_.n, rows * 2)) {
    auto source = MakeVectorFileSource(**vf, d_.dim, DataType::kUint8, rows);
    SpannBuildParams bp;
    bp.metric = Distance::kEuclid;
    bp.layout = index::PostingLayout::kFull;
    bp.threads = 2;
    const std::string dir = a_.work + "/rebuild";
    fs::remove_all(dir);
    const double cpu0 = CpuSeconds();
    const double wb0 = ProcField("/proc/self/io", "write_bytes:");
    auto built = BuildSpannIndex(*source, dir, bp);
    if (!built.ok()) return Fail(built.status());
    const double cpu = CpuSeconds() - cpu0;
    const double wb = ProcField("/proc/self/io", "write_bytes:") - wb0;
    cpu_total += cpu;
    bytes_total += wb;
    std::printf("cost: rebuild at %zu rows: %.1f CPU s, %.1f MB written (files %.1f MB)\n", rows,
                cpu, wb / 1e6, static_cast<double>(DirBytes(dir, "")) / 1e6);
    std::fflush(stdout);
    if (rows == d_.n) break;
  }
  std::printf("cost: rebuild at every doubling from %zu to %zu: %.1f CPU s, %.1f MB written\n",
              a_.initial, d_.n, cpu_total, bytes_total / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--data") a.data = v;
    if (k == "--work") a.work = v;
    if (k == "--mode") a.mode = v;
    if (k == "--initial") a.initial = std::stoul(v);
    if (k == "--queries") a.queries = std::stoul(v);
    if (k == "--rounds") a.rounds = std::stoul(v);
    if (k == "--limit") a.limit = std::stoul(v);
    if (k == "--nprobe") a.nprobe = static_cast<uint32_t>(std::stoul(v));
    if (k == "--share") a.share = std::stod(v);
    if (k == "--reassign-neighbors") a.reassign_neighbors = std::stoi(v);
  }
  if (a.data.empty()) a.data = VECTORD_SHARED_DATA "/mate/sift";
  std::printf("# bench_living %s on %s, %u CPUs, load %s, data %s\n", a.mode.c_str(),
              vectord::bench::CpuModel().c_str(), std::thread::hardware_concurrency(),
              vectord::bench::LoadAverage().c_str(), a.data.c_str());
  auto base = storage::DatasetReader::Open(a.data + "/base.bvecs");
  auto queries = storage::DatasetReader::Open(a.data + "/query.bvecs");
  if (!base.ok()) return Fail(base.status());
  if (!queries.ok()) return Fail(queries.status());
  Data d;
  d.dim = (*base)->info().dim;
  d.n = a.limit > 0 ? std::min(a.limit, (*base)->info().n) : (*base)->info().n;
  d.base.resize(d.n * d.dim);
  if (Status s = (*base)->ReadRaw(0, d.n, d.base.data()); !s.ok()) return Fail(s);
  d.nq = std::min(a.queries, (*queries)->info().n);
  d.queries.resize(d.nq * d.dim);
  if (Status s = (*queries)->ReadFloat(0, d.nq, d.queries.data()); !s.ok()) return Fail(s);
  if (a.mode == "shift") {
    std::ifstream in(a.data + "/attrs.jsonl");
    std::string line;
    while (d.image.size() < d.n && std::getline(in, line)) {
      d.image.push_back(Json::parse(line).value("image", ""));
    }
  }
  std::printf("# %zu points x %u, %zu queries, initial %zu, nprobe %u\n", d.n, d.dim, d.nq,
              a.initial, a.nprobe);
  Bench b(a, std::move(d));
  if (a.mode == "grow") return b.Grow();
  if (a.mode == "churn") return b.Churn();
  if (a.mode == "shift") return b.Shift();
  if (a.mode == "cost") return b.Cost();
  std::fprintf(stderr, "bench_living: unknown --mode %s\n", a.mode.c_str());
  return 2;
}
