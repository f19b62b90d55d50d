// RowCodes implementation; file format in docs/formats.md "Row codes".
#include "src/spann/row_codes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <string_view>
#include <thread>
#include <type_traits>

#include "index/l2_block.h"
#include "index/posting_codec.h"
#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord {
namespace {

constexpr uint32_t kMagic = 0x43524456;  // "VDRC"
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 64;
constexpr uint64_t kMaxTrainRows = 10000;  // >= 39 x 256: what Faiss asks of 256-means
constexpr uint64_t kChunkRows = 8192;      // rows read and encoded at a time

using storage::GetU32;
using storage::GetU64;
using storage::PutU32;
using storage::PutU64;

}  // namespace

void RowCodes::Append(const uint8_t* rows, uint64_t n, DataType dtype) {
  const uint32_t dim = pq_.params().dim;
  const size_t row_bytes = size_t{dim} * DataTypeSize(dtype);
  std::vector<float> f(size_t{dim});
  const uint64_t tail = rows_ - mapped_rows_;
  codes_.resize((tail + n) * code_bytes());
  for (uint64_t i = 0; i < n; ++i) {
    index::RowsToFloat(rows + i * row_bytes, 1, dim, dtype, f.data());
    pq_.Encode(f.data(), 1, codes_.data() + (tail + i) * code_bytes());
  }
  rows_ += n;
}

RowCodes::~RowCodes() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

uint32_t RowCodeSubquantizers(uint32_t dim, uint32_t bytes) {
  for (uint32_t m = std::min(dim, bytes); m > 0; --m) {
    if (dim % m == 0) return m;
  }
  return 0;
}

Result<std::unique_ptr<RowCodes>> RowCodes::Build(const VectorSource& src, Distance metric,
                                                  uint32_t m, uint64_t seed, unsigned threads,
                                                  const std::atomic<bool>* cancel) {
  const uint64_t n = src.rows();
  const uint32_t dim = src.dim();
  const size_t row_bytes = src.row_bytes();
  if (m == 0 || dim % m != 0) {
    return Status::InvalidArgument("row codes: " + std::to_string(m) +
                                   " subquantizers do not divide dimension " + std::to_string(dim));
  }
  if (n < 256) {
    return Status::InvalidArgument("row codes need at least 256 rows to train, got " +
                                   std::to_string(n));
  }
  auto cancelled = [&] { return cancel != nullptr && cancel->load(); };
  threads = std::max(1u, threads);
  // Training sample: evenly spaced rows (deterministic), read one at a time.
  const uint64_t tn = std::min(n, kMaxTrainRows);
  std::vector<float> train(tn * dim);
  {
    std::vector<uint8_t> row(row_bytes);
    for (uint64_t i = 0; i < tn; ++i) {
      const uint64_t r = i * n / tn;
      VECTORD_RETURN_IF_ERROR(src.Read(r, 1, row.data()));
      index::RowsToFloat(row.data(), 1, dim, src.dtype(), &train[i * dim]);
    }
  }
  if (cancelled()) return Status::Unavailable("row codes: build cancelled");
  // Each subquantizer is an independent 256-means over its dsub columns (what Faiss's PQ training
  // does one after the other): trained on `threads` threads at once, then assembled.
  const uint32_t ds = dim / m;
  std::vector<float> cents(size_t{m} * 256 * ds);
  {
    std::atomic<uint32_t> next_sub{0};
    std::vector<Status> status(threads);
    auto train_subs = [&](unsigned t) {
      std::vector<float> cols(tn * ds);
      for (uint32_t j; (j = next_sub.fetch_add(1)) < m;) {
        if (cancelled()) return;
        for (uint64_t i = 0; i < tn; ++i) {
          std::memcpy(&cols[i * ds], &train[i * dim + size_t{j} * ds], ds * sizeof(float));
        }
        auto sub = index::ProductQuantizer::Train({ds, 1, 8}, cols.data(), tn, seed + j, 1);
        if (!sub.ok()) {
          status[t] = sub.status();
          return;
        }
        std::memcpy(&cents[size_t{j} * 256 * ds], sub->centroids().data(),
                    size_t{256} * ds * sizeof(float));
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(train_subs, t);
    train_subs(0);
    for (auto& th : pool) th.join();
    for (const Status& st : status) VECTORD_RETURN_IF_ERROR(st);
  }
  if (cancelled()) return Status::Unavailable("row codes: build cancelled");
  VECTORD_ASSIGN_OR_RETURN(auto pq, index::ProductQuantizer::FromCentroids({dim, m, 8}, cents));
  std::vector<float>().swap(train);
  // Encoding: per subquantizer, the blocked L2 kernel against its 256 centroids, then argmin.
  std::vector<index::CentroidPanels> panels(m);
  for (uint32_t j = 0; j < m; ++j) panels[j].Pack(&cents[size_t{j} * 256 * ds], 256, ds);
  std::unique_ptr<RowCodes> out(
      new RowCodes(std::move(pq), metric == Distance::kDot || metric == Distance::kCosine));
  out->rows_ = n;
  out->codes_.resize(n * m);
  // Encode in chunks; each thread reads and encodes its own chunks.
  threads = std::max(
      1u, std::min<unsigned>(threads, static_cast<unsigned>((n + kChunkRows - 1) / kChunkRows)));
  std::atomic<uint64_t> next{0};
  std::vector<Status> status(threads);
  auto work = [&](unsigned t) {
    std::vector<uint8_t> raw;
    std::vector<float> f, sub, norms, d;
    for (;;) {
      if (cancelled()) {
        status[t] = Status::Unavailable("row codes: build cancelled");
        return;
      }
      const uint64_t first = next.fetch_add(kChunkRows);
      if (first >= n) return;
      const uint64_t cnt = std::min(kChunkRows, n - first);
      raw.resize(cnt * row_bytes);
      f.resize(cnt * dim);
      Status st = src.Read(first, cnt, raw.data());
      if (!st.ok()) {
        status[t] = st;
        return;
      }
      index::RowsToFloat(raw.data(), cnt, dim, src.dtype(), f.data());
      sub.resize(cnt * ds);
      norms.resize(cnt);
      d.resize(cnt * 256);
      uint8_t* codes = &out->codes_[first * m];
      for (uint32_t j = 0; j < m; ++j) {
        for (uint64_t i = 0; i < cnt; ++i) {
          std::memcpy(&sub[i * ds], &f[i * dim + size_t{j} * ds], ds * sizeof(float));
        }
        index::SquaredNorms(sub.data(), cnt, ds, norms.data());
        index::L2SqrBlock(sub.data(), norms.data(), cnt, panels[j], 0, panels[j].panels(), d.data(),
                          256);
        for (uint64_t i = 0; i < cnt; ++i) {
          const float* di = &d[i * 256];
          codes[i * m + j] = static_cast<uint8_t>(std::min_element(di, di + 256) - di);
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (const Status& st : status) VECTORD_RETURN_IF_ERROR(st);
  return out;
}

Status RowCodes::Write(const std::string& path) const {
  const uint32_t m = code_bytes();
  const std::string pq_bytes = pq_.Serialize();
  std::string s(kHeaderBytes, '\0');
  auto* h = reinterpret_cast<uint8_t*>(s.data());
  PutU32(h + 0, kMagic);
  PutU32(h + 4, kVersion);
  PutU32(h + 8, pq_.params().dim);
  PutU32(h + 12, m);
  PutU32(h + 16, 8);
  PutU32(h + 20, ip_ ? 1 : 0);
  PutU64(h + 24, rows_);
  PutU64(h + 32, pq_bytes.size());
  PutU32(h + 40, kBlockRows);
  PutU32(h + 60, storage::Crc32c(0, h, 60));
  s += pq_bytes;
  for (uint64_t first = 0; first < rows_; first += kBlockRows) {
    const uint64_t end = std::min<uint64_t>(first + kBlockRows, rows_);
    const size_t bytes = static_cast<size_t>((end - first) * m);
    const size_t at = s.size();
    // A block's rows may straddle the mapping and the heap tail: row by row through code().
    for (uint64_t r = first; r < end; ++r) s.append(reinterpret_cast<const char*>(code(r)), m);
    const char* p = s.data() + at;
    uint8_t crc[4];
    PutU32(crc, storage::Crc32c(0, p, bytes));
    s.append(reinterpret_cast<const char*>(crc), 4);
  }
  return storage::WriteFileAtomic(path, s);
}

Result<std::unique_ptr<RowCodes>> RowCodes::Read(const std::string& path, uint64_t expected_rows) {
  auto bad = [&](const std::string& what) {
    return Status::Corruption("row code file '" + path + "': " + what);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("row code file '" + path + "' does not exist");
    return storage::ErrnoStatus(path, "open row code file");
  }
  struct stat stt;
  if (::fstat(fd, &stt) != 0) {
    const Status st = storage::ErrnoStatus(path, "stat row code file");
    ::close(fd);
    return st;
  }
  const size_t size = static_cast<size_t>(stt.st_size);
  if (size < kHeaderBytes) {
    ::close(fd);
    return bad("too short (" + std::to_string(size) + " B)");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const Status map_st =
      map == MAP_FAILED ? storage::ErrnoStatus(path, "map row code file") : Status::OK();
  ::close(fd);  // the mapping keeps the file
  if (!map_st.ok()) return map_st;
  // Owns the mapping until it is handed to the result.
  std::unique_ptr<void, std::function<void(void*)>> guard(map,
                                                          [size](void* m) { ::munmap(m, size); });
  const std::string_view data(static_cast<const char*>(map), size);
  const auto* h = reinterpret_cast<const uint8_t*>(data.data());
  if (GetU32(h) != kMagic) return bad("bad magic");
  if (storage::Crc32c(0, h, 60) != GetU32(h + 60)) return bad("header checksum mismatch");
  if (GetU32(h + 4) != kVersion) {
    return bad("version " + std::to_string(GetU32(h + 4)) + ", expected " +
               std::to_string(kVersion));
  }
  const uint32_t dim = GetU32(h + 8), m = GetU32(h + 12), nbits = GetU32(h + 16);
  const uint32_t metric = GetU32(h + 20), block_rows = GetU32(h + 40);
  const uint64_t rows = GetU64(h + 24), pq_len = GetU64(h + 32);
  if (nbits != 8 || m == 0 || dim % m != 0 || metric > 1 || block_rows != kBlockRows) {
    return bad("bad parameters (dim " + std::to_string(dim) + ", m " + std::to_string(m) +
               ", nbits " + std::to_string(nbits) + ", block rows " + std::to_string(block_rows) +
               ")");
  }
  if (rows > expected_rows) {
    return bad("holds " + std::to_string(rows) + " rows, the index only " +
               std::to_string(expected_rows));
  }
  const uint64_t blocks = (rows + block_rows - 1) / block_rows;
  const uint64_t want = kHeaderBytes + pq_len + rows * m + blocks * 4;
  if (pq_len > size || size != want) {
    return bad("size " + std::to_string(size) + " B, expected " + std::to_string(want));
  }
  VECTORD_ASSIGN_OR_RETURN(auto pq,
                           index::ProductQuantizer::Deserialize(data.substr(kHeaderBytes, pq_len)));
  if (pq.params().dim != dim || pq.params().m != m || pq.params().nbits != 8) {
    return bad("quantizer does not match the header");
  }
  std::unique_ptr<RowCodes> out(new RowCodes(std::move(pq), metric == 1));
  out->rows_ = rows;
  const uint8_t* first_code = h + kHeaderBytes + pq_len;
  const uint8_t* p = first_code;
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t first = b * block_rows;
    const size_t bytes = static_cast<size_t>(std::min<uint64_t>(block_rows, rows - first) * m);
    if (storage::Crc32c(0, p, bytes) != GetU32(p + bytes)) {
      return bad("checksum mismatch in block " + std::to_string(b) + " (rows " +
                 std::to_string(first) + "..)");
    }
    p += bytes + 4;
  }
  // Served from the mapping. The checksum pass faulted every page in: give them back (they stay
  // in the page cache), and let filtered scans fault in what they touch.
  ::madvise(map, size, MADV_DONTNEED);
  ::madvise(map, size, MADV_RANDOM);
  out->map_ = guard.release();
  out->map_bytes_ = size;
  out->map_codes_ = first_code;
  out->block_stride_ = size_t{kBlockRows} * m + 4;
  out->mapped_rows_ = rows;
  return out;
}

void RowCodes::BestRows(const float* q, const Roaring& allowed, uint64_t end_row, size_t r,
                        std::vector<std::pair<float, uint32_t>>* out, uint64_t* scored) const {
  out->clear();
  const uint32_t m = code_bytes();
  const uint64_t end = std::min(end_row, rows_);
  thread_local std::vector<float> lut;
  lut.resize(size_t{m} * 256);
  pq_.ComputeLut(q, ip_ ? index::PqMetric::kIP : index::PqMetric::kL2, lut.data());
  if (ip_) {
    for (float& v : lut) v = -v;  // smaller is closer everywhere below
  }
  const float* t = lut.data();
  // Candidates below the running threshold tau (the r-th best so far) are kept; when 4r have
  // piled up, the best r stay and tau tightens. Rows come from the bitmap 256 at a time.
  r = std::max<size_t>(r, 1);
  float tau = std::numeric_limits<float>::infinity();
  auto shrink = [&] {
    std::nth_element(out->begin(), out->begin() + static_cast<ptrdiff_t>(r - 1), out->end());
    out->resize(r);
    tau = (*out)[r - 1].first;
  };
  auto scan = [&](auto fixed_m) {
    constexpr uint32_t kM = decltype(fixed_m)::value;
    const uint32_t mm = kM != 0 ? kM : m;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(&allowed.roaring, &it);
    uint32_t buf[256];
    uint64_t seen = 0;
    for (;;) {
      uint32_t got = roaring_read_uint32_iterator(&it, buf, 256);
      while (got > 0 && buf[got - 1] >= end) --got;  // ascending: drop rows past the end
      for (uint32_t i = 0; i < got; ++i) {
        const uint8_t* c = code(buf[i]);
        // Four partial sums: a chain of 16 dependent float adds would bound the loop by latency.
        float p[4] = {0, 0, 0, 0};
        uint32_t j = 0;
        for (; j + 4 <= mm; j += 4) {
          p[0] += t[j * 256 + c[j]];
          p[1] += t[(j + 1) * 256 + c[j + 1]];
          p[2] += t[(j + 2) * 256 + c[j + 2]];
          p[3] += t[(j + 3) * 256 + c[j + 3]];
        }
        for (; j < mm; ++j) p[0] += t[j * 256 + c[j]];
        const float d = (p[0] + p[1]) + (p[2] + p[3]);
        if (d < tau) {
          out->emplace_back(d, buf[i]);
          if (out->size() >= 4 * r) shrink();
        }
      }
      seen += got;
      if (got < 256) break;
    }
    *scored += seen;
  };
  if (m == 8) {
    scan(std::integral_constant<uint32_t, 8>());
  } else if (m == 16) {
    scan(std::integral_constant<uint32_t, 16>());
  } else {
    scan(std::integral_constant<uint32_t, 0>());
  }
  if (out->size() > r) shrink();
  std::sort(out->begin(), out->end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
}

}  // namespace vectord
