// vectord: the server executable. Opens the Database, serves the HTTP API until SIGINT/SIGTERM,
// drains in-flight requests and closes the Database cleanly.
#include <cstdio>
#include <memory>

#include "server/api.h"
#include "server/http_server.h"
#include "server/memory_trim.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "vectord/database.h"

int main(int argc, char** argv) {
  using namespace vectord::server;
  ParsedOptions parsed = ParseServerOptions(argc, argv);
  if (parsed.exit_code) {
    std::fprintf(*parsed.exit_code == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    return *parsed.exit_code;
  }
  const ServerOptions& o = parsed.options;
  auto db = vectord::Database::Open(o.database);
  if (!db.ok()) {
    std::fprintf(stderr, "vectord: cannot open data dir '%s': %s\n", o.database.data_dir.c_str(),
                 db.status().ToString().c_str());
    return 1;
  }
  int rc = 0;
  {
    Metrics metrics;
    Api api(db->get(), &metrics, o.limits);
    HttpServer server(&api, &metrics, o.http);
    vectord::Status st = server.Listen();
    if (!st.ok()) {
      std::fprintf(stderr, "vectord: %s\n", st.message().c_str());
      rc = 1;
    } else {
      std::fprintf(stderr, "vectord: listening on %s:%u, data dir %s\n", o.http.host.c_str(),
                   static_cast<unsigned>(server.port()), o.database.data_dir.c_str());
      std::fflush(stderr);
      MemoryTrimmer trimmer(&metrics, o.trim_interval);
      server.Run(/*handle_signals=*/true);
    }
  }
  db->reset();  // closes RocksDB and the collection files
  if (rc == 0) std::fprintf(stderr, "vectord: stopped\n");
  return rc;
}
