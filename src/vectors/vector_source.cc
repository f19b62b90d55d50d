// VectorSource implementations over dataset files, vector files and memory.
#include "src/vectors/vector_source.h"

#include <cstring>
#include <mutex>

#include "storage/dataset_io.h"
#include "storage/vector_file.h"

namespace vectord {
namespace {

Status CheckRange(uint64_t first, uint64_t n, uint64_t rows, const std::string& what) {
  if (first > rows || n > rows - first) {
    return Status::InvalidArgument(what + ": rows " + std::to_string(first) + "+" +
                                   std::to_string(n) + " past the end (" + std::to_string(rows) +
                                   " rows)");
  }
  return Status::OK();
}

class DatasetSource : public VectorSource {
 public:
  DatasetSource(std::unique_ptr<storage::DatasetReader> r, DataType t)
      : reader_(std::move(r)), dtype_(t) {}
  uint64_t rows() const override { return reader_->info().n; }
  uint32_t dim() const override { return reader_->info().dim; }
  DataType dtype() const override { return dtype_; }
  Status Read(uint64_t first, uint64_t n, uint8_t* out) const override {
    VECTORD_RETURN_IF_ERROR(CheckRange(first, n, rows(), "'" + reader_->info().path + "'"));
    return reader_->ReadRaw(first, n, out);
  }

 private:
  std::unique_ptr<storage::DatasetReader> reader_;
  DataType dtype_;
};

class VectorFileSource : public VectorSource {
 public:
  VectorFileSource(const storage::VectorFile& f, uint32_t dim, DataType t, uint64_t rows)
      : file_(f), dim_(dim), dtype_(t), rows_(rows) {}
  uint64_t rows() const override { return rows_; }
  uint32_t dim() const override { return dim_; }
  DataType dtype() const override { return dtype_; }
  Status Read(uint64_t first, uint64_t n, uint8_t* out) const override {
    VECTORD_RETURN_IF_ERROR(CheckRange(first, n, rows_, "'" + file_.path() + "'"));
    std::lock_guard<std::mutex> lock(mu_);
    return file_.Read(first, n, out);
  }

 private:
  const storage::VectorFile& file_;
  uint32_t dim_;
  DataType dtype_;
  uint64_t rows_;
  mutable std::mutex mu_;  // serializes reads of file_
};

class MemorySource : public VectorSource {
 public:
  MemorySource(const void* d, uint64_t rows, uint32_t dim, DataType t)
      : data_(static_cast<const uint8_t*>(d)), rows_(rows), dim_(dim), dtype_(t) {}
  uint64_t rows() const override { return rows_; }
  uint32_t dim() const override { return dim_; }
  DataType dtype() const override { return dtype_; }
  Status Read(uint64_t first, uint64_t n, uint8_t* out) const override {
    VECTORD_RETURN_IF_ERROR(CheckRange(first, n, rows_, "memory source"));
    std::memcpy(out, data_ + first * row_bytes(), n * row_bytes());
    return Status::OK();
  }

 private:
  const uint8_t* data_;
  uint64_t rows_;
  uint32_t dim_;
  DataType dtype_;
};

}  // namespace

Result<std::unique_ptr<VectorSource>> OpenDatasetSource(const std::string& path) {
  VECTORD_ASSIGN_OR_RETURN(auto reader, storage::DatasetReader::Open(path));
  DataType t;
  switch (reader->info().type) {
    case storage::ElementType::kFloat32:
      t = DataType::kFloat32;
      break;
    case storage::ElementType::kUint8:
      t = DataType::kUint8;
      break;
    case storage::ElementType::kInt8:
      t = DataType::kInt8;
      break;
    default:
      return Status::InvalidArgument("'" + path + "' holds int32 elements, not vectors to index");
  }
  if (reader->info().n == 0 || reader->info().dim == 0) {
    return Status::InvalidArgument("'" + path + "' holds no vectors");
  }
  return std::unique_ptr<VectorSource>(new DatasetSource(std::move(reader), t));
}

std::unique_ptr<VectorSource> MakeVectorFileSource(const storage::VectorFile& file, uint32_t dim,
                                                   DataType dtype, uint64_t rows) {
  return std::make_unique<VectorFileSource>(file, dim, dtype, rows);
}

std::unique_ptr<VectorSource> MakeMemorySource(const void* data, uint64_t rows, uint32_t dim,
                                               DataType dtype) {
  return std::make_unique<MemorySource>(data, rows, dim, dtype);
}

}  // namespace vectord
