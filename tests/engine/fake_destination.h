// An in-memory Destination (a map from path to node) and a fault-injecting
// wrapper around any Destination, for unit tests of the engine.
//
// Both are used from one executor, as the Destination contract says; every
// operation yields once (a post to the executor) so that concurrent callers
// really interleave.
#ifndef FERRY_TESTS_ENGINE_FAKE_DESTINATION_H_
#define FERRY_TESTS_ENGINE_FAKE_DESTINATION_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "lib/transport/destination.h"

namespace ferry::testing {

struct FakeNode {
  EntryType type = EntryType::kFile;
  std::string content;  // files
  std::string target;   // symlinks
  uint32_t mode = 0644;
  int64_t mtime_ns = 0;
  bool operator==(const FakeNode&) const = default;
};

class FakeDestination : public transport::Destination {
 public:
  FakeDestination();
  ~FakeDestination() override;

  // Test setup and inspection (call outside the run, or from its executor).
  void PutFile(const std::string& path, std::string content, int64_t mtime_ns = 0,
               uint32_t mode = 0644);
  void PutDir(const std::string& path, uint32_t mode = 0755);
  void PutSymlink(const std::string& path, std::string target);
  const std::map<std::string, FakeNode>& nodes() const { return nodes_; }
  const FakeNode* Find(const std::string& path) const;

  int open_sinks() const { return open_sinks_; }
  int max_open_sinks() const { return max_open_sinks_; }
  int sinks_created() const { return sinks_created_; }
  int sinks_aborted() const { return sinks_aborted_; }
  int sinks_committed() const { return sinks_committed_; }
  int sinks_dropped_unfinished() const { return sinks_dropped_; }
  int writes() const { return writes_; }
  int removes() const { return removes_; }
  int parts_opened() const { return parts_opened_; }
  // Whether OpenPart/ReadRange work (off by default, as for most destinations).
  bool supports_resume = false;
  int suggested_jobs = 0;  // SuggestedJobs()
  // Runs on the executor after every Write (e.g. to request a stop mid-run).
  std::function<void(int writes)> after_write;
  // Open() takes this long (a connection being made), then calls `on_opened`.
  std::chrono::milliseconds open_delay{0};
  std::function<void()> on_opened;

  std::string Describe() const override { return "fake:"; }
  int64_t MtimeGranularityNs() const override { return 1; }
  asio::awaitable<Status> Open(bool dry_run) override;
  asio::awaitable<Result<transport::Listing>> List(std::string dir) override;
  asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) override;
  asio::awaitable<Result<std::unique_ptr<transport::FileSink>>> CreateFile(
      std::string path) override;
  asio::awaitable<Status> Symlink(std::string path, std::string target) override;
  asio::awaitable<Status> Remove(std::string path, EntryType type) override;
  asio::awaitable<Status> Rename(std::string from, std::string to) override;
  asio::awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path,
                                                           size_t max_bytes) override;
  asio::awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) override;
  asio::awaitable<Status> Close() override;
  bool SupportsResume() const override { return supports_resume; }
  int SuggestedJobs() const override { return suggested_jobs; }
  asio::awaitable<Result<transport::PartSink>> OpenPart(std::string path,
                                                        std::string part_name) override;
  asio::awaitable<Result<std::vector<std::byte>>> ReadRange(std::string path, uint64_t offset,
                                                            size_t max_bytes) override;

 private:
  friend class FakeSink;
  Status CheckParentDir(const std::string& path) const;

  std::map<std::string, FakeNode> nodes_;  // "" is the root
  int open_sinks_ = 0;
  int max_open_sinks_ = 0;
  int sinks_created_ = 0;
  int sinks_aborted_ = 0;
  int sinks_committed_ = 0;
  int sinks_dropped_ = 0;
  int writes_ = 0;
  int removes_ = 0;
  int parts_opened_ = 0;
  bool opened_ = false;
};

// Which operation a fault hits.
enum class Op { kList, kMakeDir, kCreateFile, kWrite, kCommit, kSymlink, kRemove };

struct Fault {
  Op op;
  int nth = 1;           // the Nth call of `op` (1-based) fails...
  std::error_code code;  // ...with this error
  std::string path;      // if set, only calls for this path count
  int times = 1;         // consecutive matching calls that fail
};

// Forwards to `inner`, failing chosen calls. Sinks are wrapped too, so Write and
// Commit faults hit the sink of the matching file.
class FaultyDestination : public transport::Destination {
 public:
  explicit FaultyDestination(transport::Destination& inner) : inner_(inner) {}
  void AddFault(Fault fault) { faults_.push_back({std::move(fault), 0, 0}); }
  int injected() const { return injected_; }

  std::string Describe() const override { return inner_.Describe(); }
  int64_t MtimeGranularityNs() const override { return inner_.MtimeGranularityNs(); }
  asio::awaitable<Status> Open(bool dry_run) override { return inner_.Open(dry_run); }
  asio::awaitable<Result<transport::Listing>> List(std::string dir) override;
  asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) override;
  asio::awaitable<Result<std::unique_ptr<transport::FileSink>>> CreateFile(
      std::string path) override;
  asio::awaitable<Status> Symlink(std::string path, std::string target) override;
  asio::awaitable<Status> Remove(std::string path, EntryType type) override;
  asio::awaitable<Status> Rename(std::string from, std::string to) override {
    return inner_.Rename(std::move(from), std::move(to));
  }
  asio::awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path,
                                                           size_t max_bytes) override {
    return inner_.ReadHead(std::move(path), max_bytes);
  }
  asio::awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) override {
    return inner_.ReadAll(std::move(path), std::move(chunk_fn));
  }
  asio::awaitable<Status> Close() override { return inner_.Close(); }
  bool SupportsResume() const override { return inner_.SupportsResume(); }
  int SuggestedJobs() const override { return inner_.SuggestedJobs(); }
  // Part sinks are wrapped as CreateFile's (Write and Commit faults hit them).
  asio::awaitable<Result<transport::PartSink>> OpenPart(std::string path,
                                                        std::string part_name) override;
  asio::awaitable<Result<std::vector<std::byte>>> ReadRange(std::string path, uint64_t offset,
                                                            size_t max_bytes) override {
    return inner_.ReadRange(std::move(path), offset, max_bytes);
  }

  // The error to inject for this call, or none.
  std::error_code Check(Op op, const std::string& path);

 private:
  struct Armed {
    Fault fault;
    int seen = 0;
    int fired = 0;
  };
  transport::Destination& inner_;
  std::vector<Armed> faults_;
  int injected_ = 0;
};

}  // namespace ferry::testing

#endif  // FERRY_TESTS_ENGINE_FAKE_DESTINATION_H_
