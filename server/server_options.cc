// Options of the vectord executable: CLI11 flags plus the config file (see server_options.h).
#include "server/server_options.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>
#include <vector>

#include "server/json_reader.h"

namespace vectord::server {
namespace {

std::string Trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// Reads the config file into "--key value" arguments. JSON object or `key = value` lines
// (# comments); keys are the flag names with '-' or '_'.
Status ConfigArgs(const std::string& path, std::vector<std::string>* args) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("config file '" + path + "' cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::vector<std::pair<std::string, std::string>> kv;
  std::string trimmed = Trim(text);
  if (!trimmed.empty() && trimmed[0] == '{') {
    auto j = ParseJson(text);
    if (!j.ok()) return j.status().WithContext("config file '" + path + "'");
    for (auto it = j->begin(); it != j->end(); ++it) {
      kv.emplace_back(it.key(), it->is_string() ? it->get<std::string>() : it->dump());
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      ++n;
      line = Trim(line);
      if (line.empty() || line[0] == '#') continue;
      size_t eq = line.find('=');
      if (eq == std::string::npos) {
        return Status::InvalidArgument("config file '" + path + "' line " + std::to_string(n) +
                                       ": expected key = value");
      }
      std::string v = Trim(line.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      kv.emplace_back(Trim(line.substr(0, eq)), v);
    }
  }
  for (auto& [k, v] : kv) {
    for (char& ch : k) {
      if (ch == '_') ch = '-';
    }
    args->push_back("--" + k);
    args->push_back(v);
  }
  return Status::OK();
}

}  // namespace

ParsedOptions ParseServerOptions(int argc, const char* const* argv) {
  ParsedOptions out;
  ServerOptions& o = out.options;
  CLI::App app{"vectord: vector search database server with a Qdrant-compatible HTTP API",
               "vectord"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  uint64_t block_cache_mb = o.database.block_cache_bytes >> 20;
  double read_timeout_s = 30, write_timeout_s = 30, shutdown_timeout_s = 30;
  double trim_interval_s = 10;
  app.add_option("--config", o.config_file, "config file (JSON or key = value lines)");
  app.add_option("--data-dir", o.database.data_dir, "data directory")->capture_default_str();
  app.add_option("--host", o.http.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o.http.port, "TCP port (0 = any free port)")->capture_default_str();
  app.add_option("--io-threads", o.http.io_threads, "threads serving sockets")
      ->capture_default_str();
  app.add_option("--compute-threads", o.http.compute_threads,
                 "threads running reads: searches, retrieve, scroll (0 = number of CPUs)")
      ->capture_default_str();
  app.add_option("--write-threads", o.http.write_threads,
                 "threads running writes (upserts, deletes, payload changes)")
      ->capture_default_str();
  app.add_option("--search-threads", o.database.search_threads,
                 "engine threads for batch search and index builds (0 = number of CPUs)")
      ->capture_default_str();
  app.add_option("--block-cache-mb", block_cache_mb, "RocksDB block cache, MiB")
      ->capture_default_str();
  app.add_option("--max-body-bytes", o.http.max_body_bytes, "largest request body (413 beyond)")
      ->capture_default_str();
  app.add_option("--max-url-bytes", o.http.max_url_bytes, "longest request URL (414 beyond)")
      ->capture_default_str();
  app.add_option("--max-header-bytes", o.http.max_header_bytes,
                 "largest request header block (431 beyond)")
      ->capture_default_str();
  app.add_option("--read-timeout-s", read_timeout_s,
                 "seconds a request may take to arrive (also the keep-alive idle time)")
      ->capture_default_str();
  app.add_option("--write-timeout-s", write_timeout_s, "seconds a response may take to send")
      ->capture_default_str();
  app.add_option("--shutdown-timeout-s", shutdown_timeout_s,
                 "seconds to wait for in-flight requests on SIGTERM")
      ->capture_default_str();
  app.add_option("--trim-interval-s", trim_interval_s,
                 "seconds between returns of freed heap memory to the OS while requests arrive "
                 "(0 = never)")
      ->capture_default_str();
  app.add_option("--max-batch-points", o.limits.max_points_per_upsert,
                 "points in one upsert request")
      ->capture_default_str();
  app.add_option("--max-ids", o.limits.max_ids_per_request, "ids in one retrieve/delete request")
      ->capture_default_str();
  app.add_option("--max-limit", o.limits.max_result, "limit + offset of search/query/scroll")
      ->capture_default_str();
  app.add_option("--max-batch-searches", o.limits.max_batch_searches,
                 "searches in one batch request")
      ->capture_default_str();
  app.add_option("--max-json-depth", o.limits.max_json_depth, "nesting depth of request bodies")
      ->capture_default_str();

  // The config file's values go first so that flags (later) win.
  std::vector<std::string> args;
  std::string config;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config = argv[i + 1];
    if (a.rfind("--config=", 0) == 0) config = a.substr(9);
  }
  if (!config.empty()) {
    Status st = ConfigArgs(config, &args);
    for (size_t i = 0; st.ok() && i < args.size(); i += 2) {
      if (args[i] == "--config" || app.get_option_no_throw(args[i]) == nullptr) {
        st = Status::InvalidArgument("config file '" + config + "': unknown option '" +
                                     args[i].substr(2) + "' (see vectord --help)");
      }
    }
    if (!st.ok()) {
      out.exit_code = 2;
      out.message = st.message();
      return out;
    }
  }
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out.exit_code = 0;
    out.message = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_code = 2;
    out.message =
        std::string(e.what()) + (config.empty() ? "" : " (flags or config file '" + config + "')");
    return out;
  }
  if (read_timeout_s <= 0 || write_timeout_s <= 0 || shutdown_timeout_s < 0) {
    out.exit_code = 2;
    out.message = "timeouts must be positive";
    return out;
  }
  if (!(trim_interval_s >= 0)) {
    out.exit_code = 2;
    out.message = "--trim-interval-s must be 0 (never) or a positive number of seconds";
    return out;
  }
  o.database.block_cache_bytes = block_cache_mb << 20;
  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  o.http.read_timeout = ms(read_timeout_s);
  o.http.write_timeout = ms(write_timeout_s);
  o.http.shutdown_timeout = ms(shutdown_timeout_s);
  o.trim_interval = ms(trim_interval_s);
  return out;
}

}  // namespace vectord::server
