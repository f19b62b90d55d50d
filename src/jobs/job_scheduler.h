// JobScheduler: every collection's background work — SPANN builds, the living index's updater,
// row codes, list-summary refreshes, FDE PQ training, point-store checkpoints — runs on a few
// threads shared by the database, by priority, one run at a time per job, with progress and
// counters that GET /collections/{c} and /metrics show. A collection owns a JobSet (its jobs) and
// asks for runs; it starts no threads of its own. docs/storage.md "Background jobs".
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vectord {

// Lower runs first when several jobs wait for a thread.
enum class JobPriority : int {
  kHigh = 0,    // the living index's updater: writers wait when its delta is full
  kNormal = 1,  // index builds, row codes, summaries
  kLow = 2,     // checkpoints, FDE PQ training
};

struct JobStatus {
  std::string name;
  bool running = false;
  bool queued = false;  // a run is requested and not started
  uint64_t runs = 0;    // runs finished
  double seconds = 0;   // time spent running, all runs
  // Progress of the run in flight (or the last one), in the job's own unit (rows, lists, ...).
  uint64_t done = 0, total = 0;
};

class JobScheduler;
class JobSet;

// One job of one owner. Thread-safe.
class Job {
 public:
  // Asks for a run. A job that is queued stays queued once; a job that is running runs once more
  // after it returns (work that arrived during the run). Ignored after the owner's Cancel().
  void Request();
  // From inside a run: progress in the job's unit, and whether the owner is going away (return
  // soon; the run's work may be left undone).
  void SetProgress(uint64_t done, uint64_t total);
  bool cancelled() const;
  JobStatus Status() const;

 private:
  friend class JobScheduler;
  friend class JobSet;
  Job(JobSet* owner, std::string name, JobPriority priority, std::function<void(Job&)> fn)
      : owner_(owner), name_(std::move(name)), priority_(priority), fn_(std::move(fn)) {}

  JobSet* const owner_;
  const std::string name_;
  const JobPriority priority_;
  const std::function<void(Job&)> fn_;
  // All guarded by the scheduler's mu_.
  bool queued_ = false;
  bool running_ = false;
  bool again_ = false;  // Request() during a run
  uint64_t runs_ = 0;
  double seconds_ = 0;
  uint64_t done_ = 0, total_ = 0;
};

// The jobs of one owner (a collection). Destroying it cancels and waits for its runs, so a job's
// function may use its owner freely; it must not hold the last reference to it.
class JobSet {
 public:
  JobSet(std::shared_ptr<JobScheduler> scheduler, std::string owner);
  ~JobSet();
  JobSet(const JobSet&) = delete;
  JobSet& operator=(const JobSet&) = delete;

  // Registers a job; `fn` runs on a scheduler thread, never two runs of one job at once. The
  // returned pointer lives as long as the JobSet.
  Job* Add(std::string name, JobPriority priority, std::function<void(Job&)> fn);
  // No run starts from now on; runs in flight see cancelled() and are waited for by WaitIdle.
  void Cancel();
  // Waits until none of the jobs is queued or running, or `timeout_ms` passes (0 = forever); true
  // when idle.
  bool WaitIdle(uint64_t timeout_ms = 0) const;
  bool Idle() const;
  std::vector<JobStatus> Status() const;
  const std::string& owner() const { return owner_; }

 private:
  friend class Job;
  friend class JobScheduler;
  const std::shared_ptr<JobScheduler> scheduler_;  // outlives every JobSet
  const std::string owner_;
  std::vector<std::unique_ptr<Job>> jobs_;  // fixed after the owner's set-up; read lock-free
  bool cancelled_ = false;                  // guarded by the scheduler's mu_
};

class JobScheduler {
 public:
  // `threads` background threads; 0 = none: runs are never started (Request does nothing), for
  // offline tools.
  explicit JobScheduler(unsigned threads);
  ~JobScheduler();
  JobScheduler(const JobScheduler&) = delete;
  JobScheduler& operator=(const JobScheduler&) = delete;
  unsigned threads() const { return static_cast<unsigned>(threads_.size()); }

 private:
  friend class Job;
  friend class JobSet;
  void Loop();
  void Enqueue(Job* job);  // mu_ held

  mutable std::mutex mu_;
  std::condition_variable work_cv_;          // a job was queued, or stop_
  mutable std::condition_variable idle_cv_;  // a run finished or a queued job was dropped
  std::deque<Job*> queue_;                   // guarded by mu_; ordered by priority, then FIFO
  bool stop_ = false;                        // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace vectord
