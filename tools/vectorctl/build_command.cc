// `vectorctl build`: bulk-loads a dataset file straight into a data directory through the embedded
// engine (no server) and builds the collection's SPANN index there, so that a vectord started
// later on the directory serves it. Rows become point ids 0..N-1; see docs/vectorctl.md.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "storage/dataset_io.h"
#include "tools/vectorctl/commands.h"
#include "tools/vectorctl/progress.h"
#include "vectord/collection.h"
#include "vectord/database.h"

namespace vectord::vectorctl {
namespace {

Result<CollectionConfig> MakeConfig(const BuildOptions& o, const storage::DatasetInfo& info,
                                    uint64_t rows) {
  CollectionConfig c;
  c.dim = info.dim;
  auto dist = ParseDistance(o.distance);
  if (!dist) return Status::InvalidArgument("--distance '" + o.distance + "': Euclid|Dot|Cosine");
  c.distance = *dist;
  if (o.datatype.empty()) {
    c.datatype = info.type == storage::ElementType::kUint8  ? DataType::kUint8
                 : info.type == storage::ElementType::kInt8 ? DataType::kInt8
                                                            : DataType::kFloat32;
  } else {
    auto dt = ParseDataType(o.datatype);
    if (!dt) return Status::InvalidArgument("--datatype '" + o.datatype + "' is not a data type");
    c.datatype = *dt;
  }
  // Start from the engine's defaults and override what was given on the command line.
  Json sj = Json::object();
  sj["indexing_threshold"] = rows;
  if (!o.layout.empty()) sj["layout"] = o.layout;
  if (o.pq_m) sj["pq_m"] = o.pq_m;
  if (o.target_list_entries) sj["target_list_entries"] = o.target_list_entries;
  if (!o.centroid_precision.empty()) sj["centroid_precision"] = o.centroid_precision;
  if (o.max_replicas) sj["max_replicas"] = o.max_replicas;
  if (o.closure_eps >= 0) sj["closure_eps"] = o.closure_eps;
  if (o.rng_factor >= 0) sj["rng_factor"] = o.rng_factor;
  if (o.cache_bytes) sj["cache_bytes"] = o.cache_bytes;
  if (o.nprobe) sj["nprobe"] = o.nprobe;
  if (o.eps >= 0) sj["eps"] = o.eps;
  if (o.rerank) sj["rerank"] = o.rerank;
  if (!o.row_codes.empty()) sj["row_codes"] = o.row_codes;
  if (o.row_code_bytes > 0) sj["row_code_bytes"] = o.row_code_bytes;
  VECTORD_ASSIGN_OR_RETURN(SpannConfig sc, ParseSpannConfig(sj));
  c.spann = sc;
  return c;
}

// Reads `count` JSON-lines payloads; a line that is not a JSON object is an error naming it.
Status ReadPayloads(std::ifstream& f, const std::string& path, uint64_t first, size_t count,
                    std::vector<PointStruct>* points) {
  std::string line;
  for (size_t i = 0; i < count; ++i) {
    if (!std::getline(f, line)) {
      return Status::InvalidArgument("payload file '" + path + "' ends at line " +
                                     std::to_string(first + i) + ", before the vector file does");
    }
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      return Status::InvalidArgument("payload file '" + path + "' line " +
                                     std::to_string(first + i + 1) + " is not a JSON object");
    }
    (*points)[i].payload = std::move(j);
  }
  return Status::OK();
}

Status Build(const BuildOptions& o) {
  VECTORD_ASSIGN_OR_RETURN(auto reader, storage::DatasetReader::Open(o.file));
  const storage::DatasetInfo& info = reader->info();
  if (info.type == storage::ElementType::kInt32) {
    return Status::InvalidArgument("'" + o.file +
                                   "' holds int32 rows (ground truth?), not vectors");
  }
  const uint64_t total = o.limit ? std::min<uint64_t>(o.limit, info.n) : info.n;
  if (total == 0) return Status::InvalidArgument("'" + o.file + "' holds no rows");
  VECTORD_ASSIGN_OR_RETURN(CollectionConfig config, MakeConfig(o, info, total));
  std::ifstream payloads;
  if (!o.payload.empty()) {
    payloads.open(o.payload);
    if (!payloads) return Status::NotFound("cannot open payload file '" + o.payload + "'");
  }

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  DatabaseOptions dbo;
  dbo.data_dir = o.data_dir;
  // The engine builds SPANN with (search threads - 1) threads: one more than the cores gives the
  // build every core (nothing else runs in this process).
  dbo.search_threads = cores + 1;
  VECTORD_ASSIGN_OR_RETURN(auto db, Database::Open(dbo));
  VECTORD_RETURN_IF_ERROR(db->CreateCollection(o.collection, config));
  VECTORD_ASSIGN_OR_RETURN(auto coll, db->GetCollection(o.collection));
  std::fprintf(stderr, "build: %s: %s x %u %s -> %s collection '%s' (%s, layout %s), %s\n",
               o.file.c_str(), WithCommas(total).c_str(), info.dim,
               storage::ElementTypeName(info.type), o.data_dir.c_str(), o.collection.c_str(),
               DataTypeName(config.datatype), config.spann->layout.c_str(), CpuModel().c_str());

  // Load: large batches without fsync, the last one synced (it makes all earlier ones durable:
  // one WAL and one vector-file sync). Its upsert starts the background index build.
  const auto t0 = std::chrono::steady_clock::now();
  {
    Progress load("load ", "points", total);
    std::vector<float> rows;
    std::vector<PointStruct> points;
    const size_t batch = std::max<size_t>(1, o.batch);
    for (uint64_t first = 0; first < total; first += batch) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(batch, total - first));
      rows.resize(n * info.dim);
      VECTORD_RETURN_IF_ERROR(reader->ReadFloat(first, n, rows.data()));
      points.clear();
      points.resize(n);
      for (size_t i = 0; i < n; ++i) {
        points[i].id = PointId::Num(first + i);
        points[i].vector.assign(rows.begin() + i * info.dim, rows.begin() + (i + 1) * info.dim);
      }
      if (payloads.is_open()) {
        VECTORD_RETURN_IF_ERROR(ReadPayloads(payloads, o.payload, first, n, &points));
      }
      const bool last = first + n == total;
      VECTORD_RETURN_IF_ERROR(coll->Upsert(std::move(points), /*wait=*/last).status());
      load.Add(n);
    }
    load.Finish();
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Index build: runs in the collection's background thread; status yellow -> green.
  const auto t1 = std::chrono::steady_clock::now();
  CollectionInfo ci;
  {
    Progress idx("index", "points", total);
    uint64_t shown = 0;
    for (;;) {
      ci = coll->Info();
      // Assignment progress while building, then the installed index's count.
      const uint64_t now = std::max(ci.index_build_done, ci.indexed_vectors_count);
      if (now > shown) {
        idx.Add(now - shown);
        shown = now;
      }
      if (ci.status == "red") break;
      if (ci.status == "green" && ci.indexed_vectors_count >= total) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    idx.Finish();
  }
  if (ci.status == "red") {
    return Status::Internal("collection '" + o.collection +
                            "': index build failed: " + ci.index_error);
  }
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("load: %s points in %.1f s (%s points/s)\n", WithCommas(total).c_str(), load_s,
              WithCommas(static_cast<uint64_t>(total / std::max(load_s, 1e-9))).c_str());
  std::printf("index: %s vectors in %.1f s = %s vectors/s per core (%u cores)\n",
              WithCommas(ci.indexed_vectors_count).c_str(), build_s,
              WithCommas(static_cast<uint64_t>(total / std::max(build_s, 1e-9) / cores)).c_str(),
              cores);
  std::printf("collection '%s' in %s is ready: start vectord --data-dir %s to serve it\n",
              o.collection.c_str(), o.data_dir.c_str(), o.data_dir.c_str());
  return Status::OK();
}

}  // namespace

int RunBuild(const BuildOptions& o) {
  Status s = Build(o);
  if (!s.ok()) {
    std::fprintf(stderr, "vectorctl build: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace vectord::vectorctl
