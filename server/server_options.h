// Command-line and config-file options of the `vectord` executable. Precedence: flags, then the
// config file (--config, JSON or `key = value` lines with the flag names), then defaults.
#pragma once

#include <chrono>
#include <string>

#include "server/http_server.h"
#include "server/request_parser.h"
#include "vectord/database.h"
#include "vectord/status.h"

namespace vectord::server {

struct ServerOptions {
  DatabaseOptions database;  // --data-dir, --search-threads, --block-cache-mb
  HttpServerOptions http;    // --host, --port, --io-threads, --compute-threads, limits, timeouts
  ApiLimits limits;          // --max-batch-points, --max-limit, ...
  std::string config_file;   // --config
  // --trim-interval-s: give freed heap memory back to the OS this often while requests arrive
  // (server/memory_trim.h); 0 = never.
  std::chrono::milliseconds trim_interval{10000};
};

// Parses argv. `exit_code` is set (0 for --help, 2 for errors) when the program should exit
// after printing `message` instead of running.
struct ParsedOptions {
  ServerOptions options;
  std::optional<int> exit_code;
  std::string message;
};
ParsedOptions ParseServerOptions(int argc, const char* const* argv);

}  // namespace vectord::server
