// Resume of interrupted large uploads, through the engine, against a real sshd
// and against a local directory (same engine, same part-file mechanism):
// an interrupted upload leaves a part file that the next run verifies and
// continues; a changed source, a corrupted part or a vanished source start
// over or clean up; part files never show up as user files.
//
// The interruption is deterministic: a wrapper destination requests the stop
// once a given number of bytes went into a part file, and the engine checks
// the stop token before every chunk.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <filesystem>
#include <memory>
#include <stop_token>

#include "ferry/error.h"
#include "lib/base/path.h"
#include "lib/engine/push_engine.h"
#include "lib/transport/local/local_destination.h"
#include "lib/transport/sftp/sftp_destination.h"
#include "tests/sftp/test_util.h"
#include "tests/sshd/sshd_fixture.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using ferry::testing::Exists;
using ferry::testing::ReadLocalFile;
using ferry::testing::RunCoroutine;
using ferry::testing::TestBytes;
using ferry::testing::WriteLocalFile;
using transport::Destination;
using transport::FileSink;

constexpr size_t kChunk = 256 << 10;
constexpr size_t kBig = 8 << 20;  // 32 chunks
constexpr uint64_t kThreshold = 1 << 20;
// SFTP: unanswered bytes per channel, small so that the resume slack is too.
constexpr size_t kOutstanding = 256 << 10;

// Forwards everything; the sinks of part files request `stop` once `limit`
// bytes were written through them in this run.
class InterruptingDestination final : public Destination {
 public:
  InterruptingDestination(Destination& inner, std::stop_source stop, uint64_t limit)
      : inner_(inner), stop_(std::move(stop)), limit_(limit) {}

  std::string Describe() const override { return inner_.Describe(); }
  int64_t MtimeGranularityNs() const override { return inner_.MtimeGranularityNs(); }
  asio::awaitable<Status> Open(bool dry_run) override { return inner_.Open(dry_run); }
  asio::awaitable<Result<transport::Listing>> List(std::string dir) override {
    return inner_.List(std::move(dir));
  }
  asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) override {
    return inner_.MakeDir(std::move(path), mode);
  }
  asio::awaitable<Result<std::unique_ptr<FileSink>>> CreateFile(std::string path) override {
    return inner_.CreateFile(std::move(path));
  }
  asio::awaitable<Status> PutFile(std::string path, std::span<const std::byte> data,
                                  transport::CommitAttrs attrs) override {
    return inner_.PutFile(std::move(path), data, attrs);
  }
  asio::awaitable<Status> Symlink(std::string path, std::string target) override {
    return inner_.Symlink(std::move(path), std::move(target));
  }
  asio::awaitable<Status> Remove(std::string path, EntryType type) override {
    return inner_.Remove(std::move(path), type);
  }
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
  asio::awaitable<Result<std::vector<std::byte>>> ReadRange(std::string path, uint64_t offset,
                                                            size_t max_bytes) override {
    return inner_.ReadRange(std::move(path), offset, max_bytes);
  }
  asio::awaitable<Result<transport::PartSink>> OpenPart(std::string path,
                                                        std::string part_name) override {
    auto part = co_await inner_.OpenPart(std::move(path), std::move(part_name));
    if (!part.ok()) co_return part;
    part->sink = std::make_unique<Sink>(std::move(part->sink), stop_, limit_);
    co_return part;
  }

 private:
  class Sink final : public FileSink {
   public:
    Sink(std::unique_ptr<FileSink> inner, std::stop_source stop, uint64_t limit)
        : inner_(std::move(inner)), stop_(std::move(stop)), limit_(limit) {}
    asio::awaitable<Status> Write(std::span<const std::byte> data) override {
      written_ += data.size();
      if (written_ >= limit_) stop_.request_stop();
      return inner_->Write(data);
    }
    asio::awaitable<Status> Commit(transport::CommitAttrs attrs) override {
      return inner_->Commit(attrs);
    }
    asio::awaitable<void> Abort() override { return inner_->Abort(); }
    asio::awaitable<Status> ResumeAt(uint64_t offset) override { return inner_->ResumeAt(offset); }

   private:
    std::unique_ptr<FileSink> inner_;
    std::stop_source stop_;
    uint64_t limit_;
    uint64_t written_ = 0;
  };

  Destination& inner_;
  std::stop_source stop_;
  uint64_t limit_;
};

class Recorder : public Observer {
 public:
  void OnFile(const FileEvent& e) override { events.push_back(e); }
  void OnWarning(const std::string& m) override { warnings.push_back(m); }
  const FileEvent* Find(const std::string& path, FileAction action) const {
    for (const FileEvent& e : events) {
      if (e.path == path && e.action == action) return &e;
    }
    return nullptr;
  }
  std::vector<FileEvent> events;
  std::vector<std::string> warnings;
};

std::string Describe(const Report& r) {
  std::string s = r.fatal ? "fatal: " + r.fatal_message + "\n" : "";
  for (const Problem& p : r.problems) s += p.stage + " " + p.path + ": " + p.message + "\n";
  return s;
}

// Ferry temp files (part files included) anywhere under `dir`.
std::vector<std::string> TempsUnder(const std::string& dir) {
  std::vector<std::string> temps;
  if (!fs::exists(dir)) return temps;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    if (IsTempName(e.path().filename().string())) temps.push_back(e.path().string());
  }
  return temps;
}

void SetMtime(const std::string& path, int64_t sec) {
  struct timeval tv[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimes(path.c_str(), tv), 0);
}

enum class Kind { kSftp, kLocal };

class ResumeTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kSftp) {
      Status started = sshd_.Start();
      ASSERT_TRUE(started.ok()) << started.error().Message();
      dst_ = sshd_.root() + "/dest";
      src_ = sshd_.root() + "/src";
    } else {
      const char* tmp = std::getenv("TEST_TMPDIR");
      base_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/resume_local";
      fs::remove_all(base_);
      dst_ = base_ + "/dest";
      src_ = base_ + "/src";
    }
    fs::create_directories(src_ + "/sub");
    big_ = TestBytes(kBig, 7);
    WriteLocalFile(src_ + "/sub/big", big_);
    SetMtime(src_ + "/sub/big", 1'600'000'000);
    WriteLocalFile(src_ + "/small", "small");
  }
  void TearDown() override {
    if (HasFailure() && GetParam() == Kind::kSftp) {
      std::fprintf(stderr, "sshd log:\n%s\n", sshd_.Log().c_str());
    }
  }

  // One push; `interrupt_after` > 0 stops it once that many bytes went into a
  // part file.
  Report Push(uint64_t interrupt_after = 0, bool delete_extraneous = false) {
    rec_ = Recorder();
    Report report;
    std::stop_source stop;
    RunCoroutine(io_, [&]() -> asio::awaitable<void> {
      std::unique_ptr<Destination> inner;
      if (GetParam() == Kind::kSftp) {
        transport::SftpConfig config;
        config.connect = sshd_.ConnectOptions();
        config.root = dst_;
        config.outstanding_bytes_per_channel = kOutstanding;
        if (split_) {
          // Every file of 1 MiB or more over 3 channels, whatever the RTT.
          config.split_threshold_bytes = 1 << 20;
          config.split_min_rtt = std::chrono::milliseconds(0);
          config.max_channels_per_file = 3;
        } else {
          config.split_threshold_bytes = 0;
        }
        auto made = transport::MakeSftpDestination(config, io_.get_executor(), pool_);
        CO_ASSERT_OK(made);
        inner = std::move(*made);
      } else {
        inner = transport::MakeLocalDestination(dst_, pool_);
      }
      InterruptingDestination dest(*inner, stop,
                                   interrupt_after > 0 ? interrupt_after : UINT64_MAX);
      engine::EngineConfig config;
      config.source_root = src_;
      config.plan.mtime_granularity_ns = inner->MtimeGranularityNs();
      config.plan.delete_extraneous = delete_extraneous;
      config.jobs = 2;
      config.chunk_bytes = kChunk;
      config.resume_threshold_bytes = kThreshold;
      config.observer = &rec_;
      config.stop = stop.get_token();
      report = co_await engine::RunPush(config, dest, pool_);
      Status closed = co_await inner->Close();
      EXPECT_TRUE(closed.ok()) << closed.error().Message();
    });
    return report;
  }

  // What the destination does not count of an interrupted part file (the
  // holes a split upload may leave below its end): SftpDestination::ResumeSlack.
  uint64_t Slack() const {
    if (GetParam() == Kind::kLocal) return 0;
    return (split_ ? 3 : 1) * (kOutstanding + (1 << 20));
  }

  // Interrupts an upload of sub/big and returns the part file it left.
  std::string Interrupt() {
    Report first = Push(5 << 20);
    EXPECT_TRUE(first.cancelled);
    EXPECT_FALSE(Exists(dst_ + "/sub/big")) << "nothing partial under the final name";
    std::vector<std::string> parts = TempsUnder(dst_);
    EXPECT_EQ(parts.size(), 1u);
    if (parts.size() != 1) return "";
    EXPECT_TRUE(fs::path(parts[0]).filename().string().starts_with(".ferry-tmp-part-"));
    EXPECT_GE(fs::file_size(parts[0]), uint64_t{5} << 20);
    return parts[0];
  }

  asio::io_context io_;
  asio::thread_pool pool_{2};
  ferry::testing::TestSshd sshd_;
  bool split_ = false;  // SFTP: split big files over channels
  std::string base_, src_, dst_, big_;
  Recorder rec_;
};

TEST_P(ResumeTest, InterruptedUploadResumesFromItsPartFileByteIdentical) {
  const std::string part = Interrupt();
  ASSERT_FALSE(part.empty());

  Report second = Push();
  ASSERT_TRUE(second.ok()) << Describe(second);
  EXPECT_EQ(ReadLocalFile(dst_ + "/sub/big"), big_);
  EXPECT_EQ(ReadLocalFile(dst_ + "/small"), "small");
  const FileEvent* ev = rec_.Find("sub/big", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_GE(ev->resumed_from, (uint64_t{5} << 20) - Slack() - kChunk);
  EXPECT_EQ(ev->resumed_from % kChunk, 0u);
  EXPECT_EQ(ev->bytes_read, kBig - ev->resumed_from);
  EXPECT_EQ(second.totals.files_resumed, 1u);
  EXPECT_EQ(second.totals.bytes_resumed, ev->resumed_from);
  EXPECT_LT(second.totals.bytes_read, kBig) << "only the rest was sent";
  EXPECT_TRUE(TempsUnder(dst_).empty());
  EXPECT_TRUE(rec_.warnings.empty());

  // And the next run has nothing to do.
  Report third = Push();
  ASSERT_TRUE(third.ok()) << Describe(third);
  EXPECT_EQ(third.totals.files_sent, 0u);
}

// A part file written over several channels (as big files are on links with
// latency) may have holes just below its end; the resume starts below them.
TEST_P(ResumeTest, PartFileSplitOverChannelsResumesByteIdentical) {
  if (GetParam() == Kind::kLocal) GTEST_SKIP() << "a local destination has no channels";
  split_ = true;
  const std::string part = Interrupt();
  ASSERT_FALSE(part.empty());

  Report second = Push();
  ASSERT_TRUE(second.ok()) << Describe(second);
  EXPECT_EQ(ReadLocalFile(dst_ + "/sub/big"), big_);
  const FileEvent* ev = rec_.Find("sub/big", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_GE(ev->resumed_from, (uint64_t{5} << 20) - Slack() - kChunk);
  EXPECT_GT(ev->resumed_from, 0u);
  EXPECT_EQ(second.totals.files_resumed, 1u);
  EXPECT_TRUE(rec_.warnings.empty());
  EXPECT_TRUE(TempsUnder(dst_).empty());
}

TEST_P(ResumeTest, ChangedSourceStartsOverAndItsOldPartFileIsRemoved) {
  const std::string part = Interrupt();
  ASSERT_FALSE(part.empty());
  const std::string changed = TestBytes(kBig, 8);
  WriteLocalFile(src_ + "/sub/big", changed);
  SetMtime(src_ + "/sub/big", 1'600'000'100);

  Report second = Push();
  ASSERT_TRUE(second.ok()) << Describe(second);
  EXPECT_EQ(ReadLocalFile(dst_ + "/sub/big"), changed);
  const FileEvent* ev = rec_.Find("sub/big", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->resumed_from, 0u);
  EXPECT_EQ(ev->bytes_read, kBig);
  EXPECT_EQ(second.totals.files_resumed, 0u);
  EXPECT_FALSE(Exists(part));
  EXPECT_TRUE(TempsUnder(dst_).empty());
}

TEST_P(ResumeTest, CorruptedPartFileIsDetectedAndTheUploadStartsOver) {
  const std::string part = Interrupt();
  ASSERT_FALSE(part.empty());
  // Flip a byte just before where the resume would start (the verified tail).
  const uint64_t held = fs::file_size(part) - Slack();
  const uint64_t point = held / kChunk * kChunk;
  ASSERT_GT(point, 0u);
  std::string bytes = ReadLocalFile(part);
  bytes[point - 100] = static_cast<char>(bytes[point - 100] ^ 0x5a);
  WriteLocalFile(part, bytes);

  Report second = Push();
  ASSERT_TRUE(second.ok()) << Describe(second);
  EXPECT_EQ(ReadLocalFile(dst_ + "/sub/big"), big_);
  const FileEvent* ev = rec_.Find("sub/big", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->resumed_from, 0u);
  EXPECT_EQ(ev->bytes_read, kBig);
  ASSERT_EQ(rec_.warnings.size(), 1u);
  EXPECT_NE(rec_.warnings[0].find("does not match the source"), std::string::npos)
      << rec_.warnings[0];
  EXPECT_TRUE(TempsUnder(dst_).empty());
}

TEST_P(ResumeTest, PartFileOfAVanishedSourceIsRemovedNotDeletedAsAUserFile) {
  const std::string part = Interrupt();
  ASSERT_FALSE(part.empty());
  fs::remove(src_ + "/sub/big");

  Report second = Push(0, /*delete_extraneous=*/true);
  ASSERT_TRUE(second.ok()) << Describe(second);
  EXPECT_FALSE(Exists(part));
  EXPECT_TRUE(TempsUnder(dst_).empty());
  EXPECT_EQ(second.totals.files_deleted, 0u) << "a part file is no user file";
  for (const FileEvent& e : rec_.events) {
    EXPECT_FALSE(IsTempName(BaseName(e.path))) << e.path;
  }
}

TEST_P(ResumeTest, PartFileIsKeptOnlyWhileItsSourceIsUnchanged) {
  const std::string part = Interrupt();
  ASSERT_FALSE(part.empty());
  // Interrupted again while resuming: the same part file carries on.
  Report second = Push(1 << 20);
  EXPECT_TRUE(second.cancelled);
  EXPECT_TRUE(Exists(part));
  EXPECT_GE(fs::file_size(part), (uint64_t{6} << 20) - Slack() - kChunk);
  EXPECT_EQ(TempsUnder(dst_).size(), 1u);

  Report third = Push();
  ASSERT_TRUE(third.ok()) << Describe(third);
  EXPECT_EQ(ReadLocalFile(dst_ + "/sub/big"), big_);
  EXPECT_EQ(third.totals.files_resumed, 1u);
  EXPECT_TRUE(TempsUnder(dst_).empty());
}

TEST(PartFileNameTest, DependsOnNameAndEverySourceIdentityField) {
  const std::string base = engine::PartFileName("big", 100, 5, 9);
  EXPECT_TRUE(IsTempName(base));
  EXPECT_TRUE(IsSafeName(base));
  EXPECT_EQ(base, engine::PartFileName("big", 100, 5, 9));
  EXPECT_NE(base, engine::PartFileName("big2", 100, 5, 9));
  EXPECT_NE(base, engine::PartFileName("big", 101, 5, 9));
  EXPECT_NE(base, engine::PartFileName("big", 100, 6, 9));
  EXPECT_NE(base, engine::PartFileName("big", 100, 5, 10));
}

INSTANTIATE_TEST_SUITE_P(Destinations, ResumeTest, ::testing::Values(Kind::kSftp, Kind::kLocal),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return info.param == Kind::kSftp ? "Sftp" : "Local";
                         });

}  // namespace
}  // namespace ferry
