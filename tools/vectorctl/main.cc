// vectorctl: command-line tool for vectord — exact ground truth (gt), bulk import into a running
// server (import), offline bulk load + index build into a data directory (build) and
// recall/latency/throughput benchmarks against a server (bench), offline index verification
// (check). See
// docs/vectorctl.md.
#include <CLI/CLI.hpp>

#include "tools/vectorctl/commands.h"

int main(int argc, char** argv) {
  using namespace vectord::vectorctl;
  CLI::App app{"vectorctl: ground truth, bulk import and benchmarks for vectord"};
  app.require_subcommand(1);

  GtOptions gt;
  auto* gt_cmd = app.add_subcommand("gt", "Exact top-k ground truth of queries against a base");
  gt_cmd->add_option("--base", gt.base, "Base vectors (.fvecs .bvecs .fbin .u8bin .i8bin ...)")
      ->required();
  gt_cmd->add_option("--query", gt.query, "Query vectors (same formats)")->required();
  gt_cmd->add_option("--k", gt.k, "Neighbours per query")->capture_default_str();
  gt_cmd->add_option("--metric", gt.metric, "l2 | ip | cosine")
      ->check(CLI::IsMember({"l2", "ip", "cosine"}))
      ->capture_default_str();
  gt_cmd->add_option("--out", gt.out, "Output file (.ivecs or .ibin), 0-based base rows")
      ->required();
  gt_cmd->add_option("--threads", gt.threads, "Search threads (0 = all cores)")
      ->capture_default_str();
  gt_cmd
      ->add_option("--chunk-rows", gt.chunk_rows,
                   "Base rows held in memory at a time (0 = about 1 GiB worth)")
      ->capture_default_str();

  ImportOptions im;
  auto* im_cmd = app.add_subcommand("import", "Load a vector file into a running server");
  im_cmd->add_option("--url", im.url, "Server URL")->capture_default_str();
  im_cmd->add_option("--collection", im.collection, "Collection name")->required();
  im_cmd->add_option("--file", im.file, "Vectors (.fvecs .bvecs .fbin .u8bin .i8bin)")->required();
  im_cmd->add_option("--payload", im.payload, "JSON lines, one payload object per vector");
  im_cmd->add_flag("--create", im.create, "Create the collection first (PUT /collections/C)");
  im_cmd->add_option("--distance", im.distance, "With --create: Euclid | Dot | Cosine")
      ->capture_default_str();
  im_cmd->add_option("--datatype", im.datatype,
                     "With --create: float32 | uint8 | float16 (default: server's)");
  im_cmd->add_option("--batch", im.batch, "Points per upsert request")->capture_default_str();
  im_cmd->add_option("--parallel", im.parallel, "Requests in flight (connections)")
      ->capture_default_str();
  im_cmd->add_option("--limit", im.limit, "Import only N rows (0 = all)")->capture_default_str();
  im_cmd->add_option("--skip", im.skip, "Start at this row (its payload line too); ids stay rows")
      ->capture_default_str();
  im_cmd->add_option("--id-offset", im.id_offset, "Point id of row 0")->capture_default_str();
  im_cmd->add_flag("--wait", im.wait, "Upsert with wait=true (each batch durable and visible)");

  BenchOptions bn;
  auto* bn_cmd = app.add_subcommand("bench", "Recall, QPS and latency against a running server");
  bn_cmd->add_option("--url", bn.url, "Server URL")->capture_default_str();
  bn_cmd->add_option("--collection", bn.collection, "Collection name")->required();
  bn_cmd->add_option("--queries", bn.queries, "Query vectors file")->required();
  bn_cmd->add_option("--gt", bn.gt,
                     "Ground truth (.ivecs/.ibin of point ids); without it recall is not reported");
  bn_cmd->add_option("--k", bn.k, "Results per query (recall@k)")->capture_default_str();
  bn_cmd->add_option("--concurrency", bn.concurrency, "Concurrency levels, e.g. 1,4,16")
      ->delimiter(',')
      ->capture_default_str();
  bn_cmd->add_option("--limit-queries", bn.limit_queries, "Use only the first N queries (0 = all)")
      ->capture_default_str();
  bn_cmd->add_flag("--exact", bn.exact, "Ask for exact search (params.exact = true)");
  bn_cmd->add_option("--csv", bn.csv, "Also write CSV to this file ('-' = stdout)");
  bn_cmd->add_option("--warmup", bn.warmup, "Unmeasured requests before each level")
      ->capture_default_str();
  bn_cmd->add_flag("--with-payload", bn.with_payload, "Ask for payloads (with_payload = true)");
  bn_cmd->add_option("--filter", bn.filter, "A filter (JSON) for every query; recall not reported");
  bn_cmd->add_option("--filters", bn.filters,
                     "JSON lines of filters: query i uses line i mod n; recall not reported");
  bn_cmd->add_option("--repeat", bn.repeat, "Send the query set this many times per level")
      ->capture_default_str();

  BuildOptions bd;
  auto* bd_cmd =
      app.add_subcommand("build", "Load a vector file into a data directory and build its index");
  bd_cmd->add_option("--data-dir", bd.data_dir, "vectord data directory (no server running on it)")
      ->required();
  bd_cmd->add_option("--collection", bd.collection, "Collection to create")->required();
  bd_cmd->add_option("--file", bd.file, "Vectors (.fvecs .bvecs .fbin .u8bin .i8bin)")->required();
  bd_cmd->add_option("--payload", bd.payload, "JSON lines, one payload object per vector");
  bd_cmd->add_option("--distance", bd.distance, "Euclid | Dot | Cosine")->capture_default_str();
  bd_cmd->add_option("--datatype", bd.datatype,
                     "float32 | uint8 | int8 | float16 (default: the file's element type)");
  bd_cmd->add_option("--batch", bd.batch, "Points per upsert")->capture_default_str();
  bd_cmd->add_option("--limit", bd.limit, "Load only the first N rows (0 = all)")
      ->capture_default_str();
  bd_cmd->add_option("--layout", bd.layout, "Posting lists: full | pq4 | pq8 (default: engine's)")
      ->check(CLI::IsMember({"full", "pq4", "pq8"}));
  bd_cmd->add_option("--pq-m", bd.pq_m, "PQ subquantizers (default dim/2 for pq4, dim/4 for pq8)");
  bd_cmd->add_option("--target-list-entries", bd.target_list_entries,
                     "Mean posting-list entries aimed at (default: by layout)");
  bd_cmd
      ->add_option("--centroid-precision", bd.centroid_precision,
                   "Centroids in RAM: f16 (default, half the RAM) | f32")
      ->check(CLI::IsMember({"f16", "f32"}));
  bd_cmd->add_option("--max-replicas", bd.max_replicas, "Lists per vector, at most (1..8)");
  bd_cmd->add_option("--closure-eps", bd.closure_eps, "Closure rule slack (SPANN)");
  bd_cmd->add_option("--rng-factor", bd.rng_factor, "RNG rule factor (0 = off)");
  bd_cmd->add_option("--cache-bytes", bd.cache_bytes, "RAM cache of hot posting lists, bytes");
  bd_cmd->add_option("--nprobe", bd.nprobe, "Search default: posting lists read at most");
  bd_cmd->add_option("--eps", bd.eps, "Search default: query-aware pruning slack");
  bd_cmd->add_option("--rerank", bd.rerank, "Search default: candidates re-ranked (pq layouts)");
  bd_cmd
      ->add_option("--row-codes", bd.row_codes,
                   "PQ code per row in RAM for filtered searches: auto | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  bd_cmd->add_option("--row-code-bytes", bd.row_code_bytes, "Bytes of that code per row");

  CheckOptions ck;
  auto* ck_cmd = app.add_subcommand(
      "check", "Verify a data directory's indexes offline (checksums, every point reachable)");
  ck_cmd->add_option("--data-dir", ck.data_dir, "vectord data directory (no server running on it)")
      ->required();
  ck_cmd->add_option("--collection", ck.collection, "Only this collection");

  CLI11_PARSE(app, argc, argv);
  if (ck_cmd->parsed()) return RunCheck(ck);
  if (bd_cmd->parsed()) return RunBuild(bd);
  if (gt_cmd->parsed()) return RunGt(gt);
  if (im_cmd->parsed()) return RunImport(im);
  if (bn_cmd->parsed()) return RunBench(bn);
  return 2;
}
