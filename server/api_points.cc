// The points handlers of the REST API: upsert, retrieve, delete, payload operations, search,
// query, scroll and count.
#include "server/api.h"
#include "server/json_reader.h"
#include "src/search/query_planner.h"
#include "vectord/filter.h"

namespace vectord::server {
namespace {

// "params": {"explain": true} (vectord extension; request_parser.cc checks it is a bool).
bool WantsExplain(const Json& body) {
  const auto p = body.find("params");
  if (p == body.end() || !p->is_object()) return false;
  const auto e = p->find("explain");
  return e != p->end() && e->is_boolean() && e->get<bool>();
}

HttpResponse Err(const Status& s, const Api::Context& c) { return ErrorResponse(s, c.Elapsed()); }

}  // namespace

Status Api::CheckDim(const vectord::Collection& col, const vectord::SearchRequest& req,
                     std::string_view where) const {
  const vectord::CollectionConfig cfg = col.config();
  const uint32_t dim = cfg.dim;
  const size_t n = req.vector_count == 0 ? 1 : req.vector_count;
  if (cfg.multivector && req.vector_count == 0) {
    return Status::InvalidArgument(std::string(where) + ": collection '" + col.name() +
                                   "' holds multi-vectors: the query must be a list of vectors "
                                   "([[...], [...]])");
  }
  if (!cfg.multivector && req.vector_count != 0) {
    return Status::InvalidArgument(std::string(where) + ": collection '" + col.name() +
                                   "' holds single vectors: the query must be one vector, not a "
                                   "list of vectors");
  }
  if (req.vector.size() != n * dim) {
    return Status::InvalidArgument(
        std::string(where) + ": vector has " + std::to_string(req.vector.size() / n) +
        " dimensions, collection '" + col.name() + "' expects " + std::to_string(dim));
  }
  return Status::OK();
}

namespace {

// The "searches" array of a search/query batch request, checked against the batch limit.
Result<const Json*> BatchSearches(const Json& body, const std::string& request, const char* noun,
                                  const ApiLimits& limits) {
  VECTORD_RETURN_IF_ERROR(CheckKnownFields(body, {"searches"}, request));
  auto it = body.find("searches");
  if (it == body.end() || !it->is_array()) {
    return Status::InvalidArgument("searches: missing or not an array");
  }
  if (it->size() > limits.max_batch_searches) {
    return Status::InvalidArgument("searches: " + std::to_string(it->size()) + " " + noun +
                                   " exceed the maximum " +
                                   std::to_string(limits.max_batch_searches));
  }
  return &*it;
}

}  // namespace

HttpResponse Api::Upsert(Context& c) {
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  auto body = ParseUpsertBody(c.body, limits_.max_points_per_upsert, limits_.max_json_depth);
  if (!body.ok()) return Err(body.status(), c);
  const CollectionConfig cfg = (*col)->config();
  const uint32_t dim = cfg.dim;
  std::vector<PointStruct>& points = body->points;
  // Multi-vector collections check their sets in the engine (list shape, size, count limit).
  for (size_t i = 0; i < points.size() && !cfg.multivector; ++i) {
    if (points[i].vector.size() != dim) {
      return ErrorResponse(400,
                           "point " + std::to_string(i) + " (id " + points[i].id.ToString() +
                               "): vector has " + std::to_string(points[i].vector.size()) +
                               " dimensions, collection '" + c.routed.collection + "' expects " +
                               std::to_string(dim),
                           c.Elapsed());
    }
  }
  return UpdateResult(c, (*col)->Upsert(std::move(points), c.Wait()));
}

HttpResponse Api::RetrievePoints(Context& c) {
  auto body = Body(c, false);
  if (!body.ok()) return Err(body.status(), c);
  Status st = CheckKnownFields(*body, {"ids", "with_payload", "with_vector", "shard_key"},
                               "retrieve request");
  if (!st.ok()) return Err(st, c);
  if (!body->contains("ids")) return ErrorResponse(400, "ids: missing", c.Elapsed());
  auto ids = ParsePointIds((*body)["ids"], limits_.max_ids_per_request, "ids");
  if (!ids.ok()) return Err(ids.status(), c);
  auto sel = ParseWithPayload(*body, true, "");
  if (!sel.ok()) return Err(sel.status(), c);
  auto with_vector = ParseWithVector(*body, "");
  if (!with_vector.ok()) return Err(with_vector.status(), c);
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  auto recs = (*col)->Retrieve(*ids, sel->with_payload, *with_vector);
  if (!recs.ok()) return Err(recs.status(), c);
  HttpResponse r;
  r.body.reserve(256 + recs->size() * 64);
  BeginEnvelope(&r.body);
  r.body += '[';
  for (size_t i = 0; i < recs->size(); ++i) {
    Record& rec = (*recs)[i];
    if (rec.payload) SelectPayload(&*rec.payload, sel->include, sel->exclude);
    if (i) r.body += ',';
    AppendRecord(&r.body, rec);
  }
  r.body += ']';
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

HttpResponse Api::GetPoint(Context& c) {
  Json idj;
  const std::string& p = c.routed.param;
  bool numeric = !p.empty() && p.find_first_not_of("0123456789") == std::string::npos;
  if (numeric) {
    auto parsed = ParseJson(p);
    if (!parsed.ok()) return ErrorResponse(400, "point id '" + p + "' is invalid", c.Elapsed());
    idj = std::move(*parsed);
  } else {
    idj = p;
  }
  auto id = PointIdFromJson(idj, "point id");
  if (!id.ok()) return Err(id.status(), c);
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  auto recs = (*col)->Retrieve({*id}, true, true);
  if (!recs.ok()) return Err(recs.status(), c);
  if (recs->empty()) {
    return ErrorResponse(
        404, "point " + id->ToString() + " not found in collection '" + c.routed.collection + "'",
        c.Elapsed());
  }
  HttpResponse r;
  BeginEnvelope(&r.body);
  AppendRecord(&r.body, recs->front());
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

HttpResponse Api::UpdateBySelector(Context& c, std::initializer_list<std::string_view> fields,
                                   std::string_view what,
                                   const std::function<Status(const Json&)>& check,
                                   const SelectorOp& op) const {
  auto body = Body(c, false);
  if (!body.ok()) return Err(body.status(), c);
  Status st = CheckKnownFields(*body, fields, what);
  if (st.ok() && check) st = check(*body);
  if (!st.ok()) return Err(st, c);
  auto sel = ParsePointSelector(*body, limits_.max_ids_per_request, what);
  if (!sel.ok()) return Err(sel.status(), c);
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  return UpdateResult(c, op(**col, *body, *sel));
}

namespace {

Status CheckPayloadObject(const Json& b) {
  auto it = b.find("payload");
  if (it == b.end() || !it->is_object()) {
    return Status::InvalidArgument("payload: missing or not an object");
  }
  return Status::OK();
}

}  // namespace

HttpResponse Api::DeletePoints(Context& c) {
  return UpdateBySelector(c, {"points", "filter", "shard_key"}, "delete request", nullptr,
                          [&](vectord::Collection& col, const Json&, const PointSelector& sel) {
                            return col.Delete(sel, c.Wait());
                          });
}

HttpResponse Api::SetPayload(Context& c) {
  std::optional<std::string> key;
  auto check = [&](const Json& b) {
    VECTORD_RETURN_IF_ERROR(CheckPayloadObject(b));
    auto it = b.find("key");
    if (it != b.end() && !it->is_null()) {
      if (!it->is_string()) return Status::InvalidArgument("key: expected a string");
      key = it->get<std::string>();
    }
    return Status::OK();
  };
  return UpdateBySelector(c, {"payload", "points", "filter", "shard_key", "key"},
                          "set payload request", check,
                          [&](vectord::Collection& col, const Json& b, const PointSelector& sel) {
                            return col.SetPayload(sel, b.at("payload"), key, c.Wait());
                          });
}

HttpResponse Api::OverwritePayload(Context& c) {
  auto check = [](const Json& b) {
    VECTORD_RETURN_IF_ERROR(CheckPayloadObject(b));
    auto it = b.find("key");
    if (it != b.end() && !it->is_null()) {
      return Status::InvalidArgument("key: not supported when overwriting a payload (use POST)");
    }
    return Status::OK();
  };
  return UpdateBySelector(c, {"payload", "points", "filter", "shard_key", "key"},
                          "overwrite payload request", check,
                          [&](vectord::Collection& col, const Json& b, const PointSelector& sel) {
                            return col.OverwritePayload(sel, b.at("payload"), c.Wait());
                          });
}

HttpResponse Api::DeletePayload(Context& c) {
  std::vector<std::string> keys;
  auto check = [&](const Json& b) {
    auto it = b.find("keys");
    if (it == b.end() || !it->is_array()) {
      return Status::InvalidArgument("keys: missing or not an array of strings");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) {
        return Status::InvalidArgument("keys[" + std::to_string(i) + "]: expected a string");
      }
      keys.push_back((*it)[i].get<std::string>());
    }
    return Status::OK();
  };
  return UpdateBySelector(c, {"keys", "points", "filter", "shard_key"}, "delete payload request",
                          check,
                          [&](vectord::Collection& col, const Json&, const PointSelector& sel) {
                            return col.DeletePayloadKeys(sel, keys, c.Wait());
                          });
}

HttpResponse Api::ClearPayload(Context& c) {
  return UpdateBySelector(c, {"points", "filter", "shard_key"}, "clear payload request", nullptr,
                          [&](vectord::Collection& col, const Json&, const PointSelector& sel) {
                            return col.ClearPayload(sel, c.Wait());
                          });
}

HttpResponse Api::Search(Context& c) {
  auto body = Body(c, false);
  if (!body.ok()) return Err(body.status(), c);
  auto req = ParseSearchRequest(*body, limits_, "");
  if (!req.ok()) return Err(req.status(), c);
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  Status st = CheckDim(**col, *req, "vector");
  if (!st.ok()) return Err(st, c);
  const bool explain = WantsExplain(*body);
  vectord::QueryExplain ex;
  auto res = vectord::SearchExplained(**col, *req, explain ? &ex : nullptr);
  if (!res.ok()) return Err(res.status(), c);
  HttpResponse r;
  r.body.reserve(128 + res->size() * (req->with_vector ? 12 * req->vector.size() + 64 : 64));
  BeginEnvelope(&r.body);
  AppendScoredPoints(&r.body, *res);
  if (explain) {
    // vectord extension: the query plan, beside "result" (the result stays Qdrant's array).
    r.body += ",\"explain\":";
    AppendJson(&r.body, ex.ToJson());
  }
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

HttpResponse Api::SearchBatch(Context& c) {
  auto body = Body(c, false);
  if (!body.ok()) return Err(body.status(), c);
  auto searches = BatchSearches(*body, "search batch request", "searches", limits_);
  if (!searches.ok()) return Err(searches.status(), c);
  const Json& s = **searches;
  Status st;
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  std::vector<SearchRequest> reqs;
  reqs.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    std::string where = "searches[" + std::to_string(i) + "]";
    auto req = ParseSearchRequest(s[i], limits_, where);
    if (!req.ok()) return Err(req.status(), c);
    st = CheckDim(**col, *req, where + ".vector");
    if (!st.ok()) return Err(st, c);
    reqs.push_back(std::move(*req));
  }
  auto res = (*col)->SearchBatch(reqs);
  if (!res.ok()) return Err(res.status(), c);
  HttpResponse r;
  BeginEnvelope(&r.body);
  r.body += '[';
  for (size_t i = 0; i < res->size(); ++i) {
    if (i) r.body += ',';
    AppendScoredPoints(&r.body, (*res)[i]);
  }
  r.body += ']';
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

Result<std::vector<std::vector<ScoredPoint>>> Api::RunQueries(
    const vectord::Collection& col, std::vector<QueryPlan>& plans, bool batch,
    vectord::QueryExplain* explain) const {
  std::vector<std::vector<ScoredPoint>> out(plans.size());
  std::vector<SearchRequest> reqs;
  std::vector<size_t> slots;
  for (size_t i = 0; i < plans.size(); ++i) {
    QueryPlan& plan = plans[i];
    std::string where = !batch ? "query" : "searches[" + std::to_string(i) + "].query";
    if (plan.scroll) {
      // No query: points in id order, score 0 (Qdrant semantics).
      ScrollRequest sr;
      sr.filter = plan.search.filter;
      sr.limit = plan.search.limit + plan.search.offset;
      sr.with_payload = plan.search.with_payload;
      sr.payload_include = plan.search.payload_include;
      sr.payload_exclude = plan.search.payload_exclude;
      sr.with_vector = plan.search.with_vector;
      VECTORD_ASSIGN_OR_RETURN(ScrollResult res, col.Scroll(sr));
      for (size_t k = plan.search.offset; k < res.points.size(); ++k) {
        ScoredPoint p;
        p.id = res.points[k].id;
        p.payload = std::move(res.points[k].payload);
        p.vector = std::move(res.points[k].vector);
        out[i].push_back(std::move(p));
      }
      continue;
    }
    if (plan.query_id) {
      VECTORD_ASSIGN_OR_RETURN(std::vector<Record> recs,
                               col.Retrieve({*plan.query_id}, false, true));
      if (recs.empty() || !recs[0].vector) {
        return Status::NotFound(where + ": point " + plan.query_id->ToString() +
                                " not found in collection '" + col.name() + "'");
      }
      plan.search.vector = std::move(*recs[0].vector);
      plan.search.vector_count = recs[0].vector_count;
    }
    VECTORD_RETURN_IF_ERROR(CheckDim(col, plan.search, where));
    reqs.push_back(std::move(plan.search));
    slots.push_back(i);
  }
  if (reqs.size() == 1) {
    VECTORD_ASSIGN_OR_RETURN(out[slots[0]], vectord::SearchExplained(col, reqs[0], explain));
  } else if (!reqs.empty()) {
    VECTORD_ASSIGN_OR_RETURN(auto res, col.SearchBatch(reqs));
    for (size_t k = 0; k < slots.size(); ++k) out[slots[k]] = std::move(res[k]);
  }
  return out;
}

HttpResponse Api::Query(Context& c) {
  auto body = Body(c, false);
  if (!body.ok()) return Err(body.status(), c);
  auto plan = ParseQueryRequest(*body, limits_, "");
  if (!plan.ok()) return Err(plan.status(), c);
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  std::vector<QueryPlan> plans;
  plans.push_back(std::move(*plan));
  const bool explain = WantsExplain(*body);
  vectord::QueryExplain ex;
  auto res = RunQueries(**col, plans, false, explain ? &ex : nullptr);
  if (!res.ok()) return Err(res.status(), c);
  HttpResponse r;
  BeginEnvelope(&r.body);
  r.body += "{\"points\":";
  AppendScoredPoints(&r.body, res->front());
  if (explain) {
    r.body += ",\"explain\":";  // vectord extension: the query plan
    AppendJson(&r.body, ex.ToJson());
  }
  r.body += '}';
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

HttpResponse Api::QueryBatch(Context& c) {
  auto body = Body(c, false);
  if (!body.ok()) return Err(body.status(), c);
  auto searches = BatchSearches(*body, "query batch request", "queries", limits_);
  if (!searches.ok()) return Err(searches.status(), c);
  const Json& s = **searches;
  std::vector<QueryPlan> plans;
  for (size_t i = 0; i < s.size(); ++i) {
    auto plan = ParseQueryRequest(s[i], limits_, "searches[" + std::to_string(i) + "]");
    if (!plan.ok()) return Err(plan.status(), c);
    plans.push_back(std::move(*plan));
  }
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  auto res = RunQueries(**col, plans, true);
  if (!res.ok()) return Err(res.status(), c);
  HttpResponse r;
  BeginEnvelope(&r.body);
  r.body += '[';
  for (size_t i = 0; i < res->size(); ++i) {
    if (i) r.body += ',';
    r.body += "{\"points\":";
    AppendScoredPoints(&r.body, (*res)[i]);
    r.body += '}';
  }
  r.body += ']';
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

HttpResponse Api::Scroll(Context& c) {
  auto body = Body(c, true);
  if (!body.ok()) return Err(body.status(), c);
  auto req = ParseScrollRequest(*body, limits_);
  if (!req.ok()) return Err(req.status(), c);
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  auto res = (*col)->Scroll(*req);
  if (!res.ok()) return Err(res.status(), c);
  HttpResponse r;
  BeginEnvelope(&r.body);
  r.body += "{\"points\":[";
  for (size_t i = 0; i < res->points.size(); ++i) {
    if (i) r.body += ',';
    AppendRecord(&r.body, res->points[i]);
  }
  r.body += "],\"next_page_offset\":";
  if (res->next_page_offset) {
    AppendPointId(&r.body, *res->next_page_offset);
  } else {
    r.body += "null";
  }
  r.body += '}';
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

HttpResponse Api::Count(Context& c) {
  auto body = Body(c, true);
  if (!body.ok()) return Err(body.status(), c);
  Status st = CheckKnownFields(*body, {"filter", "exact", "shard_key"}, "count request");
  if (!st.ok()) return Err(st, c);
  auto exact = GetBool(*body, "exact", true, "");
  if (!exact.ok()) return Err(exact.status(), c);
  FilterPtr filter;
  if (body->contains("filter") && !(*body)["filter"].is_null()) {
    auto f = ParseFilter((*body)["filter"], "filter");
    if (!f.ok()) return Err(f.status(), c);
    filter = *f;
  }
  auto col = OpenCollection(c);
  if (!col.ok()) return Err(col.status(), c);
  auto n = (*col)->Count(filter);
  if (!n.ok()) return Err(n.status(), c);
  HttpResponse r;
  BeginEnvelope(&r.body);
  r.body += "{\"count\":";
  AppendUint(&r.body, *n);
  r.body += '}';
  FinishEnvelope(&r.body, c.Elapsed());
  return r;
}

}  // namespace vectord::server
