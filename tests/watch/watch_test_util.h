// Helpers for the watch tests: real trees under $TEST_TMPDIR, a watch running
// on a background thread, and a recording observer.
#ifndef FERRY_TESTS_WATCH_WATCH_TEST_UTIL_H_
#define FERRY_TESTS_WATCH_WATCH_TEST_UTIL_H_

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ferry/observer.h"

namespace ferry::watch_test {

namespace fs = std::filesystem;

// "rel" -> "F:<content>", "D", "L:<target>"
using Tree = std::map<std::string, std::string>;

inline Tree ReadTree(const fs::path& root) {
  Tree t;
  std::error_code ec;
  if (!fs::exists(root, ec)) return t;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string rel = fs::relative(it->path(), root, ec).string();
    if (it->is_symlink(ec)) {
      t[rel] = "L:" + fs::read_symlink(it->path(), ec).string();
    } else if (it->is_directory(ec)) {
      t[rel] = "D";
    } else {
      std::ifstream in(it->path(), std::ios::binary);
      t[rel] = "F:" + std::string(std::istreambuf_iterator<char>(in), {});
    }
  }
  return t;
}

inline void WriteFile(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

inline void AppendFile(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::app);
  out << content;
}

// Polls `pred` every few milliseconds until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

class RecordingObserver final : public Observer {
 public:
  void OnFile(const FileEvent& event) override {
    std::lock_guard lock(mu_);
    files_.push_back(event);
  }
  void OnWarning(const std::string& message) override {
    std::lock_guard lock(mu_);
    warnings_.push_back(message);
  }
  void OnBatch(const BatchSummary& batch) override {
    std::lock_guard lock(mu_);
    batches_.push_back(batch);
  }
  std::vector<FileEvent> files() const {
    std::lock_guard lock(mu_);
    return files_;
  }
  std::vector<BatchSummary> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::vector<std::string> warnings() const {
    std::lock_guard lock(mu_);
    return warnings_;
  }
  bool initial_done() const {
    std::lock_guard lock(mu_);
    return !batches_.empty() && batches_.front().initial;
  }
  size_t Count(const std::string& path, FileAction action) const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const FileEvent& e : files_) n += e.path == path && e.action == action;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<FileEvent> files_;
  std::vector<BatchSummary> batches_;
  std::vector<std::string> warnings_;
};

}  // namespace ferry::watch_test

#endif  // FERRY_TESTS_WATCH_WATCH_TEST_UTIL_H_
