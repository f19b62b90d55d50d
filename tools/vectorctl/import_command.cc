// `vectorctl import`: streams a dataset file (and optional JSON-lines payloads) into a running
// server through the Qdrant REST upsert, several batches in flight over keep-alive connections.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/dataset_io.h"
#include "tools/vectorctl/commands.h"
#include "tools/vectorctl/http_client.h"
#include "tools/vectorctl/point_body.h"
#include "tools/vectorctl/progress.h"

namespace vectord::vectorctl {
namespace {

// Hands out consecutive batches of rows and their payload lines; reads happen under mu_ so that
// the payload file can be read sequentially, formatting and sending happen outside it.
class BatchSource {
 public:
  // Rows [first, total).
  BatchSource(const storage::DatasetReader& reader, std::ifstream* payloads,
              std::string payload_path, size_t first, size_t total, size_t batch)
      : reader_(reader),
        payloads_(payloads),
        payload_path_(std::move(payload_path)),
        total_(total),
        batch_(batch),
        next_(first) {}

  // Fills the next batch; returns false at the end. On error sets *st and returns false.
  bool Next(size_t* begin, size_t* count, std::vector<char>* rows, std::vector<std::string>* lines,
            Status* st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (next_ >= total_ || failed_) return false;
    *begin = next_;
    *count = std::min(batch_, total_ - next_);
    next_ += *count;
    rows->resize(*count * reader_.info().row_bytes());
    *st = reader_.ReadRaw(*begin, *count, rows->data());
    if (st->ok() && payloads_ != nullptr) {
      lines->resize(*count);
      for (size_t i = 0; i < *count; ++i) {
        if (!std::getline(*payloads_, (*lines)[i])) {
          *st = Status::InvalidArgument("payload file '" + payload_path_ + "' ends at line " +
                                        std::to_string(*begin + i) + " but the vector file has " +
                                        std::to_string(reader_.info().n) + " rows");
          break;
        }
      }
    }
    if (!st->ok()) {
      failed_ = true;
      return false;
    }
    return true;
  }

 private:
  const storage::DatasetReader& reader_;
  std::ifstream* payloads_;
  std::string payload_path_;
  size_t total_;
  size_t batch_;
  std::mutex mu_;
  size_t next_;          // guarded by mu_
  bool failed_ = false;  // guarded by mu_
};

Status CreateCollection(HttpClient& client, const ImportOptions& o, uint32_t dim) {
  std::string body =
      "{\"vectors\":{\"size\":" + std::to_string(dim) + ",\"distance\":\"" + o.distance + "\"";
  if (!o.datatype.empty()) body += ",\"datatype\":\"" + o.datatype + "\"";
  body += "}}";
  VECTORD_ASSIGN_OR_RETURN(HttpResponse r,
                           client.Request("PUT", "/collections/" + o.collection, body));
  if (r.status / 100 != 2) {
    return Status::FailedPrecondition("creating collection '" + o.collection + "' with " + body +
                                      ": " + DescribeHttpError(r));
  }
  return Status::OK();
}

}  // namespace

int RunImport(const ImportOptions& o) {
  auto reader_or = storage::DatasetReader::Open(o.file);
  if (!reader_or.ok()) {
    std::fprintf(stderr, "vectorctl import: %s\n", reader_or.status().ToString().c_str());
    return 1;
  }
  const storage::DatasetReader& reader = **reader_or;
  const storage::DatasetInfo& info = reader.info();
  const size_t total = o.limit ? std::min(o.skip + o.limit, info.n) : info.n;
  const size_t first = std::min(o.skip, total);
  auto url = ParseUrl(o.url);
  if (!url.ok()) {
    std::fprintf(stderr, "vectorctl import: %s\n", url.status().ToString().c_str());
    return 1;
  }
  std::ifstream payload_file;
  if (!o.payload.empty()) {
    payload_file.open(o.payload);
    if (!payload_file) {
      std::fprintf(stderr, "vectorctl import: cannot open payload file '%s'\n", o.payload.c_str());
      return 1;
    }
    std::string line;
    for (size_t i = 0; i < first && std::getline(payload_file, line); ++i) {
    }
  }
  std::fprintf(stderr,
               "import: %s: %s x %u %s (%s) -> %s collection '%s', batch %zu, %u parallel\n",
               o.file.c_str(), WithCommas(total - first).c_str(), info.dim,
               storage::ElementTypeName(info.type), storage::DatasetFormatName(info.format),
               o.url.c_str(), o.collection.c_str(), o.batch, o.parallel);
  if (o.create) {
    HttpClient client(*url);
    Status st = CreateCollection(client, o, info.dim);
    if (!st.ok()) {
      std::fprintf(stderr, "vectorctl import: %s\n", st.ToString().c_str());
      return 1;
    }
  }

  BatchSource source(reader, o.payload.empty() ? nullptr : &payload_file, o.payload, first, total,
                     std::max<size_t>(1, o.batch));
  const std::string target =
      "/collections/" + o.collection + "/points?wait=" + (o.wait ? "true" : "false");
  std::mutex err_mu;
  Status first_error;  // guarded by err_mu
  std::atomic<bool> failed{false};
  Progress progress("import", "points", total - first);
  auto fail = [&](Status st) {
    std::lock_guard<std::mutex> lock(err_mu);
    if (first_error.ok()) first_error = std::move(st);
    failed = true;
  };

  std::vector<std::thread> workers;
  for (unsigned w = 0; w < std::max(1u, o.parallel); ++w) {
    workers.emplace_back([&] {
      HttpClient client(*url);
      std::vector<char> rows;
      std::vector<std::string> lines;
      std::vector<std::string_view> views;
      std::string body;
      size_t begin = 0, count = 0;
      Status st;
      while (!failed && source.Next(&begin, &count, &rows, &lines, &st)) {
        const std::string_view* payloads = nullptr;
        if (!o.payload.empty()) {
          views.assign(lines.begin(), lines.end());
          for (size_t i = 0; i < count; ++i) {
            Status v = ValidatePayloadLine(
                views[i], "payload file '" + o.payload + "' line " + std::to_string(begin + i + 1));
            if (!v.ok()) return fail(v);
          }
          payloads = views.data();
        }
        body.clear();
        AppendPointsBody(&body, info.type, info.dim, rows.data(), count, o.id_offset + begin,
                         payloads);
        auto r = client.Request("PUT", target, body);
        if (!r.ok()) return fail(r.status());
        if (r->status / 100 != 2) {
          return fail(Status::Internal("upsert of points " + std::to_string(o.id_offset + begin) +
                                       ".." + std::to_string(o.id_offset + begin + count - 1) +
                                       " into '" + o.collection + "': " + DescribeHttpError(*r)));
        }
        progress.Add(count);
      }
      if (!st.ok()) fail(st);
    });
  }
  for (auto& t : workers) t.join();
  progress.Finish();
  if (failed) {
    std::lock_guard<std::mutex> lock(err_mu);
    std::fprintf(stderr, "vectorctl import: FAILED: %s\n", first_error.ToString().c_str());
    return 1;
  }
  const double secs = progress.ElapsedSeconds();
  std::fprintf(stderr, "import: %s points in %.2f s: %s points/s\n",
               WithCommas(total - first).c_str(), secs,
               WithCommas(static_cast<uint64_t>(secs > 0 ? (total - first) / secs : 0)).c_str());
  return 0;
}

}  // namespace vectord::vectorctl
