// `vectorctl check`: verifies a data directory offline (no server on it): every collection's SSD
// index against its points — page checksums, every live point reachable, list sizes. Prints one
// JSON object per collection; exits 1 when any collection has a problem. docs/vectorctl.md.
#include <cstdio>

#include "tools/vectorctl/commands.h"
#include "vectord/database.h"

namespace vectord::vectorctl {

int RunCheck(const CheckOptions& o) {
  DatabaseOptions dbo;
  dbo.data_dir = o.data_dir;
  dbo.background_jobs = false;  // verify the state on disk as it is
  auto db = Database::Open(dbo);
  if (!db.ok()) {
    std::fprintf(stderr, "vectorctl check: %s\n", db.status().ToString().c_str());
    return 2;
  }
  bool ok = true;
  for (const std::string& name : (*db)->ListCollections()) {
    if (!o.collection.empty() && name != o.collection) continue;
    auto col = (*db)->GetCollection(name);
    if (!col.ok()) continue;
    auto report = (*col)->Verify();
    if (!report.ok()) {
      std::printf("{\"collection\": \"%s\", \"ok\": false, \"error\": %s}\n", name.c_str(),
                  Json(report.status().ToString()).dump().c_str());
      ok = false;
      continue;
    }
    std::printf("%s\n", report->dump().c_str());
    ok = ok && report->value("ok", false);
  }
  return ok ? 0 : 1;
}

}  // namespace vectord::vectorctl
