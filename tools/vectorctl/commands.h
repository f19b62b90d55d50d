// The vectorctl subcommands: options (filled by main.cc's CLI11 parser) and entry points. Each
// Run* returns the process exit status and prints its own errors to stderr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vectord::vectorctl {

struct GtOptions {
  std::string base;           // base vectors file (any dataset_io format)
  std::string query;          // query vectors file
  size_t k = 100;             // neighbours per query
  std::string metric = "l2";  // l2 | ip | cosine
  std::string out;            // .ivecs or .ibin
  unsigned threads = 0;       // 0 = all cores
  size_t chunk_rows = 0;      // base rows searched at a time; 0 = as many as fit in ~1 GiB
};
int RunGt(const GtOptions& o);

struct ImportOptions {
  std::string url = "http://127.0.0.1:6333";
  std::string collection;
  std::string file;
  std::string payload;  // optional JSON-lines file, one object per row
  bool create = false;
  std::string distance = "Euclid";
  std::string datatype;  // empty = server default
  size_t batch = 1000;
  unsigned parallel = 4;
  size_t limit = 0;  // 0 = all rows
  size_t skip = 0;   // rows (and payload lines) skipped first
  uint64_t id_offset = 0;
  bool wait = false;
};
int RunImport(const ImportOptions& o);

struct BenchOptions {
  std::string url = "http://127.0.0.1:6333";
  std::string collection;
  std::string queries;
  std::string gt;
  size_t k = 10;
  std::vector<unsigned> concurrency = {1};
  size_t limit_queries = 0;  // 0 = all
  bool exact = false;
  std::string csv;  // "" = none, "-" = stdout
  size_t warmup = 100;
  bool with_payload = false;  // "with_payload": true in every query
  std::string filter;         // one filter (JSON) for every query
  std::string filters;        // JSON lines: query i uses line i mod n
  size_t repeat = 1;          // the query set is sent this many times per level
};
int RunBench(const BenchOptions& o);

// `vectorctl build`: loads a dataset file into a data directory through the embedded engine and
// builds the collection's SPANN index (docs/vectorctl.md). Unset SPANN options keep the engine's
// SpannConfig defaults.
struct BuildOptions {
  std::string data_dir;
  std::string collection;
  std::string file;
  std::string payload;  // optional JSON-lines file, one object per row
  std::string distance = "Euclid";
  std::string datatype;  // empty = the file's element type (uint8, int8, else float32)
  size_t batch = 20000;  // points per Upsert
  size_t limit = 0;      // 0 = all rows
  // SPANN config overrides (0 / negative = engine default).
  std::string layout;
  uint32_t pq_m = 0;
  uint32_t target_list_entries = 0;
  std::string centroid_precision;  // empty: the engine's default
  uint32_t max_replicas = 0;
  float closure_eps = -1;
  float rng_factor = -1;
  uint64_t cache_bytes = 0;
  uint32_t nprobe = 0;
  float eps = -1;
  uint32_t rerank = 0;
  std::string row_codes;        // empty = the engine default
  uint32_t row_code_bytes = 0;  // 0 = the engine default
};
int RunBuild(const BuildOptions& o);

// `vectorctl check`: offline verification of a data directory's indexes (docs/vectorctl.md).
struct CheckOptions {
  std::string data_dir;
  std::string collection;  // empty = every collection
};
int RunCheck(const CheckOptions& o);

}  // namespace vectord::vectorctl
