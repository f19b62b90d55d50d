// The Qdrant-compatible REST API: routes requests to handlers that call the engine and write the
// JSON responses. Knows nothing of sockets; http_server.cc feeds it parsed requests.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "server/metrics.h"
#include "server/request_parser.h"
#include "server/response.h"
#include "vectord/database.h"

namespace vectord {
struct QueryExplain;
}

namespace vectord::server {

enum class Method { kGet, kPut, kPost, kDelete, kOther };

class Api {
 public:
  struct Context;
  using Handler = HttpResponse (Api::*)(Context&);

  // One route: a path pattern ("collections/{c}/points/{id}"), its method and handler.
  struct Route {
    Method method;
    std::vector<std::string> pattern;  // segments; "{c}" = collection, "{p}" = parameter
    Handler handler;
    std::string label;  // "POST /collections/{name}/points/search" for metrics
    bool compute;       // runs on the compute pool (touches collection data)
    // Changes data: runs on the write pool instead, so that writes waiting for each other, for an
    // fsync or for the living index's room never hold up reads.
    bool write = false;
  };

  // A request matched to its route, or the error response (404/405/400) to send instead.
  struct Routed {
    const Route* route = nullptr;
    std::string collection;
    std::string param;
    std::string query;  // the URL's query string, undecoded
    HttpResponse error;
  };

  Api(Database* db, Metrics* metrics, ApiLimits limits);

  Routed Match(Method method, std::string_view target) const;
  // Runs the matched route's handler. Never throws.
  HttpResponse Execute(const Routed& routed, std::string_view body);

  // After this /readyz answers 503.
  void SetShuttingDown() { shutting_down_ = true; }
  const ApiLimits& limits() const { return limits_; }

  struct Context {
    const Routed& routed;
    std::string_view body;
    std::chrono::steady_clock::time_point start;
    double Elapsed() const;
    bool Wait() const;  // ?wait=true
  };

 private:
  HttpResponse Root(Context& c);
  HttpResponse Healthz(Context& c);
  HttpResponse Readyz(Context& c);
  HttpResponse MetricsText(Context& c);
  HttpResponse ListCollections(Context& c);
  HttpResponse CreateCollection(Context& c);
  HttpResponse GetCollection(Context& c);
  HttpResponse DeleteCollection(Context& c);
  HttpResponse CollectionExists(Context& c);
  HttpResponse CreateIndex(Context& c);
  HttpResponse DeleteIndex(Context& c);
  HttpResponse Upsert(Context& c);
  HttpResponse RetrievePoints(Context& c);
  HttpResponse GetPoint(Context& c);
  HttpResponse DeletePoints(Context& c);
  HttpResponse SetPayload(Context& c);
  HttpResponse OverwritePayload(Context& c);
  HttpResponse DeletePayload(Context& c);
  HttpResponse ClearPayload(Context& c);
  HttpResponse Search(Context& c);
  HttpResponse SearchBatch(Context& c);
  HttpResponse Query(Context& c);
  HttpResponse QueryBatch(Context& c);
  HttpResponse Scroll(Context& c);
  HttpResponse Count(Context& c);

  // Shared steps of the handlers.
  Result<std::shared_ptr<vectord::Collection>> OpenCollection(const Context& c) const;
  Result<Json> Body(const Context& c, bool allow_empty) const;
  HttpResponse UpdateResult(const Context& c, const Result<uint64_t>& r) const;
  // A points/payload update addressed by a point selector ("points" ids or "filter"): checks the
  // body's fields (`fields` allowed, then `check` for the request's own ones), parses the selector,
  // opens the collection and answers with the result of `op`.
  using SelectorOp = std::function<Result<uint64_t>(vectord::Collection&, const Json& body,
                                                    const PointSelector& sel)>;
  HttpResponse UpdateBySelector(Context& c, std::initializer_list<std::string_view> fields,
                                std::string_view what,
                                const std::function<Status(const Json&)>& check,
                                const SelectorOp& op) const;
  // The query's vector (or, multi-vector collections, its list of vectors) against the
  // collection's vector size and kind.
  Status CheckDim(const vectord::Collection& col, const vectord::SearchRequest& req,
                  std::string_view where) const;
  // Resolves a query-by-id into its vector; runs the batch. `explain` (optional) receives the
  // query plan of a single vector search.
  Result<std::vector<std::vector<ScoredPoint>>> RunQueries(
      const vectord::Collection& col, std::vector<QueryPlan>& plans, bool batch,
      vectord::QueryExplain* explain = nullptr) const;

  Database* db_;
  Metrics* metrics_;
  ApiLimits limits_;
  std::vector<Route> routes_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace vectord::server
