// Payload edits and projections (payload_edit.h).
#include "src/points/payload_edit.h"

namespace vectord {
namespace {

// Splits "a.b.c" into keys (payload key paths of set_payload `key` and delete keys).
std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '.') {
      parts.push_back(path.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

void EraseAtPath(Json& obj, const std::vector<std::string>& parts, size_t i = 0) {
  if (!obj.is_object()) return;
  if (i + 1 == parts.size()) {
    obj.erase(parts[i]);
    return;
  }
  auto it = obj.find(parts[i]);
  if (it != obj.end()) EraseAtPath(*it, parts, i + 1);
}

const Json* FindAtPath(const Json& obj, const std::vector<std::string>& parts) {
  const Json* cur = &obj;
  for (const auto& p : parts) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(p);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

void SetAtPath(Json& obj, const std::vector<std::string>& parts, const Json& value) {
  Json* cur = &obj;
  for (const auto& p : parts) {
    if (!cur->is_object()) *cur = Json::object();
    cur = &(*cur)[p];
  }
  *cur = value;
}

}  // namespace

Json MergePayload(const Json& current, const Json& update, const std::optional<std::string>& key) {
  Json p = current.is_null() ? Json::object() : current;
  Json* target = &p;
  if (key) {
    const auto parts = SplitPath(*key);
    const Json* existing = FindAtPath(p, parts);
    if (!existing || !existing->is_object()) SetAtPath(p, parts, Json::object());
    for (const auto& part : parts) target = &(*target)[part];
  }
  for (auto it = update.begin(); it != update.end(); ++it) (*target)[it.key()] = it.value();
  return p;
}

Json EraseKeys(const Json& current, const std::vector<std::string>& keys) {
  Json p = current.is_null() ? Json::object() : current;
  for (const auto& k : keys) EraseAtPath(p, SplitPath(k));
  return p;
}

Json ProjectPayload(const Json& p, const std::vector<std::string>& include,
                    const std::vector<std::string>& exclude) {
  if (p.is_null()) return Json::object();
  if (include.empty() && exclude.empty()) return p;
  Json out;
  if (!include.empty()) {
    out = Json::object();
    for (const auto& k : include) {
      const auto parts = SplitPath(k);
      if (const Json* v = FindAtPath(p, parts)) SetAtPath(out, parts, *v);
    }
  } else {
    out = p;
  }
  for (const auto& k : exclude) EraseAtPath(out, SplitPath(k));
  return out;
}

}  // namespace vectord
