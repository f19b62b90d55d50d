// JobScheduler (job_scheduler.h).
#include "src/jobs/job_scheduler.h"

#include <algorithm>
#include <chrono>

namespace vectord {

void Job::Request() {
  JobScheduler* s = owner_->scheduler_.get();
  std::lock_guard<std::mutex> l(s->mu_);
  if (owner_->cancelled_ || s->threads_.empty()) return;
  if (running_) {
    again_ = true;
    return;
  }
  if (queued_) return;
  s->Enqueue(this);
}

void Job::SetProgress(uint64_t done, uint64_t total) {
  std::lock_guard<std::mutex> l(owner_->scheduler_->mu_);
  done_ = done;
  total_ = total;
}

bool Job::cancelled() const {
  std::lock_guard<std::mutex> l(owner_->scheduler_->mu_);
  return owner_->cancelled_;
}

JobStatus Job::Status() const {
  std::lock_guard<std::mutex> l(owner_->scheduler_->mu_);
  JobStatus st;
  st.name = name_;
  st.running = running_;
  st.queued = queued_ || again_;
  st.runs = runs_;
  st.seconds = seconds_;
  st.done = done_;
  st.total = total_;
  return st;
}

JobSet::JobSet(std::shared_ptr<JobScheduler> scheduler, std::string owner)
    : scheduler_(std::move(scheduler)), owner_(std::move(owner)) {}

JobSet::~JobSet() {
  Cancel();
  WaitIdle();
}

Job* JobSet::Add(std::string name, JobPriority priority, std::function<void(Job&)> fn) {
  jobs_.push_back(std::unique_ptr<Job>(new Job(this, std::move(name), priority, std::move(fn))));
  return jobs_.back().get();
}

void JobSet::Cancel() {
  std::lock_guard<std::mutex> l(scheduler_->mu_);
  cancelled_ = true;
  auto& q = scheduler_->queue_;
  q.erase(std::remove_if(q.begin(), q.end(), [this](Job* j) { return j->owner_ == this; }),
          q.end());
  for (auto& j : jobs_) {
    j->queued_ = false;
    j->again_ = false;
  }
  scheduler_->idle_cv_.notify_all();
}

bool JobSet::Idle() const {
  std::lock_guard<std::mutex> l(scheduler_->mu_);
  for (const auto& j : jobs_) {
    if (j->queued_ || j->running_ || j->again_) return false;
  }
  return true;
}

bool JobSet::WaitIdle(uint64_t timeout_ms) const {
  std::unique_lock<std::mutex> l(scheduler_->mu_);
  auto idle = [this] {
    for (const auto& j : jobs_) {
      if (j->queued_ || j->running_ || j->again_) return false;
    }
    return true;
  };
  if (timeout_ms == 0) {
    scheduler_->idle_cv_.wait(l, idle);
    return true;
  }
  return scheduler_->idle_cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), idle);
}

std::vector<JobStatus> JobSet::Status() const {
  std::vector<JobStatus> out;
  for (const auto& j : jobs_) out.push_back(j->Status());
  return out;
}

JobScheduler::JobScheduler(unsigned threads) {
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

JobScheduler::~JobScheduler() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void JobScheduler::Enqueue(Job* job) {
  job->queued_ = true;
  // Before the first job of a lower priority: FIFO among equals.
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [job](Job* j) { return j->priority_ > job->priority_; });
  queue_.insert(it, job);
  work_cv_.notify_one();
}

void JobScheduler::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    work_cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Job* job = queue_.front();
    queue_.pop_front();
    job->queued_ = false;
    job->running_ = true;
    job->again_ = false;
    l.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    job->fn_(*job);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    l.lock();
    job->running_ = false;
    job->runs_++;
    job->seconds_ += secs;
    if (job->again_ && !job->owner_->cancelled_) Enqueue(job);
    job->again_ = false;
    idle_cv_.notify_all();
  }
}

}  // namespace vectord
