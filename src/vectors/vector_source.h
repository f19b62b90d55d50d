// VectorSource: where an index build reads its rows from, in chunks (it never holds them all):
// a dataset file (fvecs/bvecs/fbin/u8bin/i8bin, storage/dataset_io.h) or a collection's vector
// file (storage/vector_file.h). Row r of the source becomes InternalId r in the index.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {
namespace storage {
class VectorFile;
}

class VectorSource {
 public:
  virtual ~VectorSource() = default;
  virtual uint64_t rows() const = 0;
  virtual uint32_t dim() const = 0;
  virtual DataType dtype() const = 0;
  size_t row_bytes() const { return size_t{dim()} * DataTypeSize(dtype()); }
  // Rows [first, first + n) as raw elements of dtype(), row-major: n * row_bytes() bytes.
  // Safe to call from several threads at once.
  virtual Status Read(uint64_t first, uint64_t n, uint8_t* out) const = 0;
};

// A dataset file; the format comes from the extension. int32 files (ivecs/ibin) are refused.
Result<std::unique_ptr<VectorSource>> OpenDatasetSource(const std::string& path);
// The first `rows` rows of a vector file (borrowed; must outlive the source). Reads are serialized
// by a mutex (VectorFile is not thread-safe).
std::unique_ptr<VectorSource> MakeVectorFileSource(const storage::VectorFile& file, uint32_t dim,
                                                   DataType dtype, uint64_t rows);
// Rows held in memory (borrowed), for tests.
std::unique_ptr<VectorSource> MakeMemorySource(const void* data, uint64_t rows, uint32_t dim,
                                               DataType dtype);

}  // namespace vectord
