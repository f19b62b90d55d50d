// Disk ceiling benchmark: 4 KiB random reads with O_DIRECT through vectord's IoReader (io_uring
// and the pread pool) at several queue depths, and fio's figure for the same file beside it. The
// SPANN benchmarks divide this ceiling by pages per query. Prints the machine, a table and CSV.
//
// Usage: bench_io [--dir DIR (bench_tmp)] [--size-mib N (2048)] [--seconds S (3)]
//                 [--depths 1,8,32,64] [--no-fio] [--csv FILE] [--remove]
// DIR is created if missing (a relative DIR under the current directory). The file
// DIR/bench_io.dat is reused when it already has the requested size.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "storage/aligned_buffer.h"
#include "storage/io_reader.h"

namespace {

using vectord::bench::CpuModel;
using vectord::bench::Percentile;

using Clock = std::chrono::steady_clock;
using vectord::storage::AlignedBuffer;
using vectord::storage::IoReader;
using vectord::storage::IoReaderOptions;

struct Args {
  std::string dir = "bench_tmp";
  uint64_t size_mib = 2048;
  double seconds = 3;
  std::vector<uint32_t> depths = {1, 8, 32, 64};
  bool fio = true;
  bool remove = false;
  std::string csv;
};

struct Row {
  std::string engine;  // uring-batch | uring-stream | pread-pool | fio-io_uring
  uint32_t depth = 0;
  uint32_t batch = 0;  // reads per ReadBatch call (0 for fio)
  double iops = 0;
  double batch_p50_us = -1;
  double batch_p99_us = -1;
};

// The mount (device, type) that holds `path`: the longest mount point that prefixes it.
std::string MountOf(const std::string& path) {
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, type, rest, best = "unknown";
  size_t best_len = 0;
  const std::string abs = std::filesystem::weakly_canonical(path).string();
  while (in >> dev >> mnt >> type && std::getline(in, rest)) {
    if (abs.rfind(mnt, 0) == 0 && mnt.size() >= best_len) {
      best_len = mnt.size();
      best = dev + " on " + mnt + " (" + type + ")";
    }
  }
  return best;
}

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Creates `path` with `bytes` of random data (written, not fallocated: unwritten extents would be
// answered without touching the device), unless it already has that size.
bool PrepareFile(const std::string& path, uint64_t bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == bytes) {
    std::printf("file: %s (reused, %.1f GiB)\n", path.c_str(), bytes / double(1 << 30));
    return true;
  }
  std::printf("file: %s (writing %.1f GiB ...)\n", path.c_str(), bytes / double(1 << 30));
  std::fflush(stdout);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "cannot create %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  const auto t0 = Clock::now();
  std::vector<uint64_t> chunk((4 << 20) / 8);
  uint64_t seed = 42;
  for (uint64_t done = 0; done < bytes;) {
    for (auto& v : chunk) v = SplitMix(&seed);
    const size_t n = std::min<uint64_t>(chunk.size() * 8, bytes - done);
    if (::pwrite(fd, chunk.data(), n, static_cast<off_t>(done)) != static_cast<ssize_t>(n)) {
      std::fprintf(stderr, "write %s: %s\n", path.c_str(), std::strerror(errno));
      ::close(fd);
      return false;
    }
    done += n;
  }
  ::fsync(fd);
  ::close(fd);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("file written in %.1f s (%.0f MiB/s)\n", s, bytes / s / (1 << 20));
  return true;
}

// Random 4 KiB reads in batches of `batch` through one IoReader for `seconds`.
bool Measure(int fd, uint64_t pages, const IoReaderOptions& o, const std::string& engine,
             uint32_t batch, double seconds, Row* row, bool* uring_refused) {
  auto r = IoReader::Create(o);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return false;
  }
  IoReader& reader = **r;
  if (!o.force_pread && !reader.uses_io_uring()) *uring_refused = true;
  AlignedBuffer buf(size_t{batch} * 4096);
  std::vector<IoReader::Request> reqs(batch);
  uint64_t seed = 7 + o.queue_depth * 131 + batch;
  std::vector<double> lat_us;
  uint64_t reads = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  auto now = start;
  while (now < end) {
    for (uint32_t i = 0; i < batch; ++i) {
      reqs[i] = {fd, (SplitMix(&seed) % pages) * 4096, 4096, buf.data() + size_t{i} * 4096};
    }
    const auto t0 = Clock::now();
    vectord::Status s = reader.ReadBatch(reqs.data(), batch);
    now = Clock::now();
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return false;
    }
    lat_us.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
    reads += batch;
  }
  const double elapsed = std::chrono::duration<double>(now - start).count();
  row->engine = engine;
  row->depth = o.force_pread ? o.pread_threads : o.queue_depth;
  row->batch = batch;
  row->iops = reads / elapsed;
  row->batch_p50_us = Percentile(lat_us, 0.50);
  row->batch_p99_us = Percentile(lat_us, 0.99);
  if (reader.pages_read() != reads) {
    std::fprintf(stderr, "pages_read %llu != reads %llu\n",
                 static_cast<unsigned long long>(reader.pages_read()),
                 static_cast<unsigned long long>(reads));
    return false;
  }
  return true;
}

// fio randread 4k direct=1 with io_uring at `depth`; returns IOPS or -1.
double RunFio(const std::string& path, uint32_t depth, double seconds) {
  const std::string cmd =
      "fio --name=bench_io --filename=" + path +
      " --rw=randread --bs=4k --direct=1 --ioengine=io_uring --iodepth=" + std::to_string(depth) +
      " --numjobs=1 --time_based --runtime=" + std::to_string(static_cast<int>(seconds + 0.5)) +
      " --output-format=json 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) return -1;
  try {
    // fio may print notes before the JSON document.
    const size_t brace = out.find('{');
    if (brace == std::string::npos) return -1;
    auto j = nlohmann::json::parse(out.substr(brace));
    return j.at("jobs").at(0).at("read").at("iops").get<double>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cannot parse fio output: %s\n", e.what());
    return -1;
  }
}

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (k == "--no-fio") {
      a->fio = false;
    } else if (k == "--remove") {
      a->remove = true;
    } else if ((k == "--dir" || k == "--size-mib" || k == "--seconds" || k == "--depths" ||
                k == "--csv") &&
               (v = value()) != nullptr) {
      if (k == "--dir") a->dir = v;
      if (k == "--size-mib") a->size_mib = std::strtoull(v, nullptr, 10);
      if (k == "--seconds") a->seconds = std::atof(v);
      if (k == "--csv") a->csv = v;
      if (k == "--depths") {
        a->depths.clear();
        std::stringstream ss(v);
        std::string item;
        while (std::getline(ss, item, ',')) {
          a->depths.push_back(static_cast<uint32_t>(std::strtoul(item.c_str(), nullptr, 10)));
        }
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--dir DIR] [--size-mib N] [--seconds S] [--depths 1,8,32,64] "
                   "[--no-fio] [--csv FILE] [--remove]\n",
                   argv[0]);
      return false;
    }
  }
  if (a->size_mib == 0 || a->seconds <= 0 || a->depths.empty()) return false;
  for (uint32_t d : a->depths) {
    if (d == 0 || d > 4096) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) return 2;
  std::error_code ec;
  std::filesystem::create_directories(args.dir, ec);
  const std::string path = args.dir + "/bench_io.dat";
  const uint64_t bytes = args.size_mib << 20;

  utsname u{};
  ::uname(&u);
  std::printf("bench_io: 4 KiB random reads, O_DIRECT\n");
  std::printf("cpu: %s x %u, kernel %s %s\n", CpuModel().c_str(),
              std::thread::hardware_concurrency(), u.sysname, u.release);
  std::printf("dir: %s, %s\n", args.dir.c_str(), MountOf(args.dir).c_str());
  if (!PrepareFile(path, bytes)) return 1;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  if (fd < 0) {
    std::fprintf(stderr, "open %s with O_DIRECT: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  const uint64_t pages = bytes / 4096;

  std::vector<Row> rows;
  bool uring_refused = false;
  const bool have_fio = args.fio && std::system("command -v fio >/dev/null 2>&1") == 0;
  for (uint32_t d : args.depths) {
    // uring-batch: one query-like batch of d reads, submitted at once, waited for in full.
    // uring-stream: 256 reads per call with d kept in flight (the disk's sustained rate at d).
    // pread-pool: the fallback, d threads, 256 reads per call.
    struct Config {
      const char* engine;
      bool pread;
      uint32_t batch;
    };
    const Config configs[] = {{"uring-batch", false, d},
                              {"uring-stream", false, std::max<uint32_t>(256, 4 * d)},
                              {"pread-pool", true, std::max<uint32_t>(256, 4 * d)}};
    for (const Config& c : configs) {
      IoReaderOptions o;
      o.queue_depth = d;
      o.force_pread = c.pread;
      o.pread_threads = d;
      Row row;
      if (!Measure(fd, pages, o, c.engine, c.batch, args.seconds, &row, &uring_refused)) return 1;
      rows.push_back(row);
      std::printf("  %-12s depth %3u: %9.0f IOPS\n", row.engine.c_str(), d, row.iops);
      std::fflush(stdout);
    }
    if (have_fio) {
      Row row;
      row.engine = "fio-io_uring";
      row.depth = d;
      row.iops = RunFio(path, d, args.seconds);
      rows.push_back(row);
      std::printf("  %-12s depth %3u: %9.0f IOPS\n", row.engine.c_str(), d, row.iops);
      std::fflush(stdout);
    }
  }
  ::close(fd);
  if (uring_refused) std::printf("NOTE: io_uring was refused; uring-* rows ran on pread\n");
  if (!have_fio) std::printf("NOTE: fio not found (apt-get install fio) or --no-fio\n");

  std::printf("\n%-13s %6s %6s %10s %9s %12s %12s\n", "engine", "depth", "batch", "IOPS", "MiB/s",
              "batch_p50us", "batch_p99us");
  for (const Row& r : rows) {
    std::printf("%-13s %6u %6u %10.0f %9.1f %12.1f %12.1f\n", r.engine.c_str(), r.depth, r.batch,
                r.iops, r.iops * 4096 / (1 << 20), r.batch_p50_us, r.batch_p99_us);
  }
  std::ostringstream csv;
  csv << "engine,depth,batch,iops,batch_p50_us,batch_p99_us\n";
  for (const Row& r : rows) {
    csv << r.engine << ',' << r.depth << ',' << r.batch << ',' << static_cast<uint64_t>(r.iops)
        << ',' << r.batch_p50_us << ',' << r.batch_p99_us << '\n';
  }
  std::printf("\nCSV\n%s", csv.str().c_str());
  if (!args.csv.empty()) std::ofstream(args.csv) << csv.str();
  if (args.remove) std::filesystem::remove(path, ec);
  return 0;
}
