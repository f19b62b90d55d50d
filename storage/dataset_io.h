// Streaming readers and writers for the dataset files benchmarks use: texmex fvecs/bvecs/ivecs and
// big-ann-benchmarks fbin/u8bin/i8bin/ibin. The format is chosen by the file's extension.
//
//   texmex  *.fvecs / *.bvecs / *.ivecs: per record int32 d, then d float32 / uint8 / int32.
//   big-ann *.fbin / *.u8bin / *.i8bin / *.ibin: int32 n, int32 d, then n*d
//   float32/uint8/int8/int32.
//
// Readers never load the whole file: rows are read by range with pread, so one reader may be shared
// by several threads. Every error names the file and, where it applies, the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vectord/status.h"

namespace vectord::storage {

enum class DatasetFormat : uint8_t { kFvecs, kBvecs, kIvecs, kFbin, kU8bin, kI8bin, kIbin };
enum class ElementType : uint8_t { kFloat32, kUint8, kInt8, kInt32 };

const char* DatasetFormatName(DatasetFormat f);  // "fvecs", "u8bin", ...
const char* ElementTypeName(ElementType t);      // "float32", "uint8", "int8", "int32"
size_t ElementSize(ElementType t);               // bytes per element
ElementType FormatElementType(DatasetFormat f);
bool IsTexmex(DatasetFormat f);  // per-record dimension header (fvecs/bvecs/ivecs)

// The format named by the path's extension; InvalidArgument naming the path otherwise.
Result<DatasetFormat> FormatFromPath(std::string_view path);

struct DatasetInfo {
  std::string path;
  DatasetFormat format = DatasetFormat::kFvecs;
  ElementType type = ElementType::kFloat32;
  size_t n = 0;      // rows
  uint32_t dim = 0;  // elements per row
  size_t row_bytes() const { return dim * ElementSize(type); }
};

class DatasetReader {
 public:
  // Opens `path` and reads its header (first record for texmex). An empty texmex file has n = 0 and
  // dim = 0. Errors: unknown extension, unreadable file, truncated file, bad header.
  static Result<std::unique_ptr<DatasetReader>> Open(const std::string& path);
  ~DatasetReader();
  DatasetReader(const DatasetReader&) = delete;
  DatasetReader& operator=(const DatasetReader&) = delete;

  const DatasetInfo& info() const { return info_; }

  // Rows [begin, begin + count) as raw elements, row-major, no per-record headers:
  // count * info().row_bytes() bytes into `out`. For texmex files each record's dimension is
  // checked (Corruption naming the file, row and offset on a mismatch). Thread-safe.
  Status ReadRaw(size_t begin, size_t count, void* out) const;
  // The same rows converted to float (count * dim floats). Thread-safe.
  Status ReadFloat(size_t begin, size_t count, float* out) const;

 private:
  DatasetReader(int fd, DatasetInfo info) : fd_(fd), info_(std::move(info)) {}
  Status PreadFull(void* buf, size_t len, uint64_t offset) const;
  int fd_;
  DatasetInfo info_;
};

// Writes a dataset file row by row; used for ground-truth output (ivecs/ibin) and tests. The
// big-ann header's n is patched in Finish(). Formats: any of the above, chosen by extension.
class DatasetWriter {
 public:
  static Result<std::unique_ptr<DatasetWriter>> Create(const std::string& path, uint32_t dim);
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // Appends `count` rows of dim elements of the file's element type.
  Status Append(const void* rows, size_t count);
  // Writes the header's row count (big-ann formats), flushes and closes. Must be called once.
  Status Finish();
  size_t rows_written() const { return n_; }

 private:
  DatasetWriter(int fd, std::string path, DatasetFormat format, uint32_t dim)
      : fd_(fd), path_(std::move(path)), format_(format), dim_(dim) {}
  Status WriteFull(const void* buf, size_t len);
  int fd_;
  std::string path_;
  DatasetFormat format_;
  uint32_t dim_;
  size_t n_ = 0;
  uint64_t offset_ = 0;
};

}  // namespace vectord::storage
