#include "tests/engine/fake_destination.h"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "ferry/error.h"
#include "lib/base/path.h"

namespace ferry::testing {
namespace {

// Lets other coroutines run, as a real destination's I/O would.
asio::awaitable<void> Yield() {
  auto ex = co_await asio::this_coro::executor;
  co_await asio::post(ex, asio::use_awaitable);
}

std::error_code Sys(std::errc e) { return std::make_error_code(e); }

bool IsChildOf(const std::string& path, const std::string& dir) {
  if (!IsSafeRelPath(path) || path.empty()) return false;
  return ParentOf(path) == dir;
}

}  // namespace

class FakeSink final : public transport::FileSink {
 public:
  FakeSink(FakeDestination& dest, std::string path, std::string temp, bool part = false)
      : dest_(dest), path_(std::move(path)), temp_(std::move(temp)), part_(part) {
    ++dest_.sinks_created_;
    ++dest_.open_sinks_;
    dest_.max_open_sinks_ = std::max(dest_.max_open_sinks_, dest_.open_sinks_);
    // A part file keeps what it holds; any other temp starts empty.
    if (!part_ || dest_.nodes_.count(temp_) == 0) {
      dest_.nodes_[temp_] = FakeNode{EntryType::kFile, "", "", 0600, 0};
    }
  }

  asio::awaitable<Status> ResumeAt(uint64_t offset) override {
    if (!part_ || wrote_ || finished_) {
      co_return Status(errc::kUnsupported, "cannot resume: " + path_);
    }
    co_await Yield();
    auto it = dest_.nodes_.find(temp_);
    if (it == dest_.nodes_.end())
      co_return Status(Sys(std::errc::no_such_file_or_directory), path_);
    it->second.content.resize(offset);
    co_return Status();
  }
  ~FakeSink() override {
    if (!finished_) {
      ++dest_.sinks_dropped_;
      Finish();
    }
  }

  asio::awaitable<Status> Write(std::span<const std::byte> data) override {
    if (finished_) co_return Status(errc::kInvalidArgument, "write after end: " + path_);
    wrote_ = true;
    co_await Yield();
    auto it = dest_.nodes_.find(temp_);
    if (it == dest_.nodes_.end())
      co_return Status(Sys(std::errc::no_such_file_or_directory), path_);
    it->second.content.append(reinterpret_cast<const char*>(data.data()), data.size());
    ++dest_.writes_;
    if (dest_.after_write) dest_.after_write(dest_.writes_);
    co_return Status();
  }

  asio::awaitable<Status> Commit(transport::CommitAttrs attrs) override {
    if (finished_) co_return Status(errc::kInvalidArgument, "commit after end: " + path_);
    co_await Yield();
    auto it = dest_.nodes_.find(temp_);
    Status st;
    if (it == dest_.nodes_.end()) {
      st = Status(Sys(std::errc::no_such_file_or_directory), path_);
    } else if (const FakeNode* existing = dest_.Find(path_);
               existing != nullptr && existing->type == EntryType::kDirectory) {
      st = Status(Sys(std::errc::is_a_directory), path_);
    } else if (Status parent = dest_.CheckParentDir(path_); !parent.ok()) {
      st = parent;
    }
    if (!st.ok()) {
      Finish();
      co_return st;
    }
    FakeNode node = std::move(it->second);
    dest_.nodes_.erase(it);
    node.mode = attrs.mode;
    node.mtime_ns = attrs.mtime_ns;
    dest_.nodes_[path_] = std::move(node);
    ++dest_.sinks_committed_;
    finished_ = true;
    --dest_.open_sinks_;
    co_return Status();
  }

  asio::awaitable<void> Abort() override {
    if (finished_) co_return;
    co_await Yield();
    ++dest_.sinks_aborted_;
    Finish();
  }

 private:
  void Finish() {
    if (finished_) return;
    finished_ = true;
    if (!part_) dest_.nodes_.erase(temp_);
    --dest_.open_sinks_;
  }

  FakeDestination& dest_;
  std::string path_;
  std::string temp_;
  bool part_ = false;
  bool wrote_ = false;
  bool finished_ = false;
};

FakeDestination::FakeDestination() {
  nodes_[""] = FakeNode{EntryType::kDirectory, "", "", 0755, 0};
}
FakeDestination::~FakeDestination() = default;

void FakeDestination::PutFile(const std::string& path, std::string content, int64_t mtime_ns,
                              uint32_t mode) {
  nodes_[path] = FakeNode{EntryType::kFile, std::move(content), "", mode, mtime_ns};
}
void FakeDestination::PutDir(const std::string& path, uint32_t mode) {
  nodes_[path] = FakeNode{EntryType::kDirectory, "", "", mode, 0};
}
void FakeDestination::PutSymlink(const std::string& path, std::string target) {
  nodes_[path] = FakeNode{EntryType::kSymlink, "", std::move(target), 0777, 0};
}

const FakeNode* FakeDestination::Find(const std::string& path) const {
  auto it = nodes_.find(path);
  return it == nodes_.end() ? nullptr : &it->second;
}

Status FakeDestination::CheckParentDir(const std::string& path) const {
  if (path.empty() || !IsSafeRelPath(path)) return Status(errc::kUnsafePath, path);
  const FakeNode* parent = Find(std::string(ParentOf(path)));
  if (parent == nullptr) return Status(Sys(std::errc::no_such_file_or_directory), path);
  // A symlink on the way would be followed by a naive implementation: refuse.
  if (parent->type == EntryType::kSymlink) return Status(errc::kUnsafePath, path);
  if (parent->type != EntryType::kDirectory) return Status(Sys(std::errc::not_a_directory), path);
  return Status();
}

asio::awaitable<Status> FakeDestination::Open(bool dry_run) {
  co_await Yield();
  if (open_delay.count() > 0) {
    asio::steady_timer timer(co_await asio::this_coro::executor, open_delay);
    co_await timer.async_wait(asio::use_awaitable);
  }
  if (on_opened) on_opened();
  opened_ = true;
  co_return Status();
}

asio::awaitable<Result<transport::Listing>> FakeDestination::List(std::string dir) {
  co_await Yield();
  if (!IsSafeRelPath(dir)) co_return Error{errc::kUnsafePath, dir};
  const FakeNode* node = Find(dir);
  if (node == nullptr) co_return transport::Listing{};
  if (node->type == EntryType::kSymlink) co_return Error{errc::kUnsafePath, dir};
  if (node->type != EntryType::kDirectory) co_return Error{Sys(std::errc::not_a_directory), dir};
  transport::Listing listing;
  listing.exists = true;
  std::string prefix = dir.empty() ? "" : dir + "/";
  for (auto it = nodes_.lower_bound(prefix); it != nodes_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    if (!IsChildOf(it->first, dir)) continue;
    Entry e;
    e.name = std::string(BaseName(it->first));
    e.type = it->second.type;
    e.size = e.type == EntryType::kFile ? it->second.content.size() : 0;
    e.mtime_ns = it->second.mtime_ns;
    e.mode = it->second.mode;
    e.link_target = it->second.target;
    listing.entries.push_back(std::move(e));
  }
  co_return listing;
}

asio::awaitable<Status> FakeDestination::MakeDir(std::string path, uint32_t mode) {
  co_await Yield();
  if (Status st = CheckParentDir(path); !st.ok()) co_return st;
  if (const FakeNode* n = Find(path)) {
    if (n->type == EntryType::kDirectory) co_return Status();
    co_return Status(Sys(std::errc::file_exists), path);
  }
  PutDir(path, mode);
  co_return Status();
}

asio::awaitable<Result<std::unique_ptr<transport::FileSink>>> FakeDestination::CreateFile(
    std::string path) {
  co_await Yield();
  if (Status st = CheckParentDir(path); !st.ok()) co_return st.error();
  std::string temp =
      JoinRel(ParentOf(path), std::string(kTempPrefix) + std::to_string(sinks_created_));
  co_return std::unique_ptr<transport::FileSink>(std::make_unique<FakeSink>(*this, path, temp));
}

asio::awaitable<Result<transport::PartSink>> FakeDestination::OpenPart(std::string path,
                                                                       std::string part_name) {
  co_await Yield();
  if (!supports_resume) co_return Error{errc::kUnsupported, "fake: no resume"};
  if (!IsTempName(part_name)) co_return Error{errc::kInvalidArgument, part_name};
  if (Status st = CheckParentDir(path); !st.ok()) co_return st.error();
  std::string part = JoinRel(ParentOf(path), part_name);
  if (const FakeNode* n = Find(part); n != nullptr && n->type != EntryType::kFile) {
    co_return Error{Sys(std::errc::invalid_argument), part};
  }
  ++parts_opened_;
  transport::PartSink out;
  const FakeNode* existing = Find(part);
  out.existing_bytes = existing != nullptr ? existing->content.size() : 0;
  out.sink = std::make_unique<FakeSink>(*this, path, part, /*part=*/true);
  co_return out;
}

asio::awaitable<Result<std::vector<std::byte>>> FakeDestination::ReadRange(std::string path,
                                                                           uint64_t offset,
                                                                           size_t max_bytes) {
  co_await Yield();
  const FakeNode* n = Find(path);
  if (n == nullptr || n->type != EntryType::kFile) {
    co_return Error{Sys(std::errc::no_such_file_or_directory), path};
  }
  std::vector<std::byte> out;
  if (offset < n->content.size()) {
    const size_t len = std::min<size_t>(max_bytes, n->content.size() - offset);
    const auto* p = reinterpret_cast<const std::byte*>(n->content.data() + offset);
    out.assign(p, p + len);
  }
  co_return out;
}

asio::awaitable<Status> FakeDestination::Symlink(std::string path, std::string target) {
  co_await Yield();
  if (Status st = CheckParentDir(path); !st.ok()) co_return st;
  if (const FakeNode* n = Find(path); n != nullptr && n->type == EntryType::kDirectory) {
    co_return Status(Sys(std::errc::is_a_directory), path);
  }
  PutSymlink(path, std::move(target));
  co_return Status();
}

asio::awaitable<Status> FakeDestination::Remove(std::string path, EntryType type) {
  co_await Yield();
  if (path.empty() || !IsSafeRelPath(path)) co_return Status(errc::kUnsafePath, path);
  ++removes_;
  std::string prefix = path + "/";
  for (auto it = nodes_.lower_bound(prefix); it != nodes_.end();) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    it = nodes_.erase(it);
  }
  nodes_.erase(path);
  co_return Status();
}

asio::awaitable<Status> FakeDestination::Rename(std::string from, std::string to) {
  co_await Yield();
  auto it = nodes_.find(from);
  if (it == nodes_.end()) co_return Status(Sys(std::errc::no_such_file_or_directory), from);
  FakeNode node = std::move(it->second);
  nodes_.erase(it);
  nodes_[to] = std::move(node);
  co_return Status();
}

asio::awaitable<Result<std::vector<std::byte>>> FakeDestination::ReadHead(std::string path,
                                                                          size_t max_bytes) {
  co_await Yield();
  const FakeNode* n = Find(path);
  if (n == nullptr || n->type != EntryType::kFile) {
    co_return Error{Sys(std::errc::no_such_file_or_directory), path};
  }
  size_t len = std::min(max_bytes, n->content.size());
  std::vector<std::byte> out(len);
  std::memcpy(out.data(), n->content.data(), len);
  co_return out;
}

asio::awaitable<Status> FakeDestination::ReadAll(std::string path, ChunkFn chunk_fn) {
  co_await Yield();
  const FakeNode* n = Find(path);
  if (n == nullptr || n->type != EntryType::kFile) {
    co_return Status(Sys(std::errc::no_such_file_or_directory), path);
  }
  std::string copy = n->content;
  chunk_fn(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(copy.data()), copy.size()));
  co_return Status();
}

asio::awaitable<Status> FakeDestination::Close() { co_return Status(); }

// ---- FaultyDestination ----------------------------------------------------

std::error_code FaultyDestination::Check(Op op, const std::string& path) {
  for (Armed& a : faults_) {
    if (a.fault.op != op) continue;
    if (!a.fault.path.empty() && a.fault.path != path) continue;
    ++a.seen;
    if (a.seen >= a.fault.nth && a.fired < a.fault.times) {
      ++a.fired;
      ++injected_;
      return a.fault.code;
    }
  }
  return {};
}

namespace {

class FaultySink final : public transport::FileSink {
 public:
  FaultySink(FaultyDestination& owner, std::unique_ptr<transport::FileSink> inner, std::string path)
      : owner_(owner), inner_(std::move(inner)), path_(std::move(path)) {}
  asio::awaitable<Status> Write(std::span<const std::byte> data) override {
    if (auto ec = owner_.Check(Op::kWrite, path_)) co_return Status(ec, "injected: " + path_);
    co_return co_await inner_->Write(data);
  }
  asio::awaitable<Status> Commit(transport::CommitAttrs attrs) override {
    if (auto ec = owner_.Check(Op::kCommit, path_)) {
      // As a real sink: a failed commit removes the temp.
      co_await inner_->Abort();
      co_return Status(ec, "injected: " + path_);
    }
    co_return co_await inner_->Commit(attrs);
  }
  asio::awaitable<void> Abort() override { co_await inner_->Abort(); }
  asio::awaitable<Status> ResumeAt(uint64_t offset) override {
    co_return co_await inner_->ResumeAt(offset);
  }

 private:
  FaultyDestination& owner_;
  std::unique_ptr<transport::FileSink> inner_;
  std::string path_;
};

}  // namespace

asio::awaitable<Result<transport::Listing>> FaultyDestination::List(std::string dir) {
  if (auto ec = Check(Op::kList, dir)) co_return Error{ec, "injected: " + dir};
  co_return co_await inner_.List(std::move(dir));
}

asio::awaitable<Status> FaultyDestination::MakeDir(std::string path, uint32_t mode) {
  if (auto ec = Check(Op::kMakeDir, path)) co_return Status(ec, "injected: " + path);
  co_return co_await inner_.MakeDir(std::move(path), mode);
}

asio::awaitable<Result<std::unique_ptr<transport::FileSink>>> FaultyDestination::CreateFile(
    std::string path) {
  if (auto ec = Check(Op::kCreateFile, path)) co_return Error{ec, "injected: " + path};
  auto sink = co_await inner_.CreateFile(path);
  if (!sink.ok()) co_return sink.error();
  co_return std::unique_ptr<transport::FileSink>(
      std::make_unique<FaultySink>(*this, std::move(*sink), std::move(path)));
}

asio::awaitable<Result<transport::PartSink>> FaultyDestination::OpenPart(std::string path,
                                                                         std::string part_name) {
  if (auto ec = Check(Op::kCreateFile, path)) co_return Error{ec, "injected: " + path};
  auto part = co_await inner_.OpenPart(path, std::move(part_name));
  if (!part.ok()) co_return part.error();
  part->sink = std::make_unique<FaultySink>(*this, std::move(part->sink), std::move(path));
  co_return part;
}

asio::awaitable<Status> FaultyDestination::Symlink(std::string path, std::string target) {
  if (auto ec = Check(Op::kSymlink, path)) co_return Status(ec, "injected: " + path);
  co_return co_await inner_.Symlink(std::move(path), std::move(target));
}

asio::awaitable<Status> FaultyDestination::Remove(std::string path, EntryType type) {
  if (auto ec = Check(Op::kRemove, path)) co_return Status(ec, "injected: " + path);
  co_return co_await inner_.Remove(std::move(path), type);
}

}  // namespace ferry::testing
