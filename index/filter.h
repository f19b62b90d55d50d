// Qdrant's filter language as an immutable tree (parsed by vectord::ParseFilter), its evaluation
// on one JSON payload, and the selection of all matching rows of a collection through payload
// indexes (index/payload_index.h) with a row-by-row fallback. Semantics: docs/filters.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <roaring/roaring.hh>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vectord/filter.h"
#include "vectord/types.h"

namespace vectord {

// A payload key as Qdrant writes it: `a.b`, `a[].b` (every element), `a[2].b`, `a."x.y"`.
struct JsonPathItem {
  enum class Kind : uint8_t { kKey, kIndex, kWildcard };
  Kind kind = Kind::kKey;
  std::string key;   // kKey
  size_t index = 0;  // kIndex
};

struct JsonPath {
  std::string text;  // as the user wrote it; index lookups compare this
  std::vector<JsonPathItem> items;

  // `what` names the key in error messages ("filter.must[0].key").
  static Result<JsonPath> Parse(std::string_view text, const std::string& what);

  // Values the path reaches in `payload`, arrays kept whole (Qdrant's non-flat lookup): `a` on
  // {"a": [1, 2]} gives one value [1, 2]; `a[]` gives 1 and 2. Pointers into `payload`.
  void Resolve(const Json& payload, std::vector<const Json*>* out) const;
  // As Resolve, but an array reached through a final key is replaced by its elements (one level):
  // the values match/range conditions and payload indexes look at.
  void ResolveFlat(const Json& payload, std::vector<const Json*>* out) const;
};

struct Condition;

// Both bounds optional; all given bounds must hold. NaN never satisfies a bound.
template <typename T>
struct Bounds {
  std::optional<T> gt, gte, lt, lte;
  bool Contains(T v) const {
    return (!gt || v > *gt) && (!gte || v >= *gte) && (!lt || v < *lt) && (!lte || v <= *lte);
  }
};
using Range = Bounds<double>;
using CountRange = Bounds<uint64_t>;

struct Match {
  enum class Kind : uint8_t { kValue, kAny, kExcept, kText };
  Kind kind = Kind::kValue;
  std::variant<std::string, int64_t, bool> value;  // kValue
  // kAny / kExcept: exactly one list is used (Qdrant's AnyVariants: strings or integers).
  bool strings = true;
  std::vector<std::string> string_list;  // sorted, unique
  std::vector<int64_t> int_list;         // sorted, unique
  std::string text;                      // kText: substring

  // One (already flattened) payload value against this match, Qdrant semantics.
  bool Check(const Json& v) const;
};

struct Filter {
  std::vector<Condition> must;
  std::vector<Condition> should;    // empty = no constraint
  std::vector<Condition> must_not;  // none may match
  struct MinShould {
    std::vector<Condition> conditions;
    uint64_t min_count = 1;  // >= 1
  };
  std::optional<MinShould> min_should;
};

struct Condition {
  enum class Kind : uint8_t {
    kMatch,        // key + match
    kRange,        // key + range
    kValuesCount,  // key + count
    kIsEmpty,      // key; `expect` false for {"key": k, "is_empty": false}
    kIsNull,       // key; `expect` as above
    kHasId,        // ids
    kNested,       // key (array of objects) + filter, applied per element
    kFilter,       // a sub-filter used as a condition
  };
  Kind kind = Kind::kFilter;
  JsonPath key;
  Match match;
  Range range;
  CountRange count;
  bool expect = true;
  std::vector<PointId> ids;  // sorted by PointId's order, unique
  std::shared_ptr<const Filter> filter;
};

// Maximum nesting of filters inside filters (sub-filters and nested conditions) ParseFilter
// accepts.
inline constexpr int kMaxFilterDepth = 64;

namespace index {

class PayloadIndexSet;

// How a selection reaches a collection's rows. Every accessor may be empty except `payload`.
struct FilterContext {
  // Payload of a row, nullptr when it has none. The pointer must stay valid until the next call.
  std::function<const Json*(InternalId)> payload;
  // External id of a row (has_id when `lookup` is empty, and Matches()).
  std::function<PointId(InternalId)> point_id;
  // Current row of an external id, if any (has_id in Select()).
  std::function<std::optional<InternalId>(const PointId&)> lookup;
  const PayloadIndexSet* indexes = nullptr;  // may be null: everything is evaluated row by row
  // Where a failed read (an index range on disk, a payload) is reported, when given: the
  // selection is then incomplete and must not be used. The accessors above may set it too.
  Status* error = nullptr;
};

// Exactly the rows of `live` that match `filter` (all of `live` for a null filter). Conditions on
// indexed fields are answered from the index bitmaps, has_id through `lookup`, the rest row by
// row over the remaining candidates only. The result does not depend on which indexes exist.
Roaring Select(const Filter* filter, const Roaring& live, const FilterContext& ctx);

// Whether one row matches (ignores indexes).
bool Matches(const Filter& filter, InternalId row, const FilterContext& ctx);

// Whether a payload (nullptr = none) with point id `id` (nullptr = unknown: has_id fails) matches.
bool MatchesPayload(const Filter& filter, const Json* payload, const PointId* id);

}  // namespace index
}  // namespace vectord
