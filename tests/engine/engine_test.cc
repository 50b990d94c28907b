// engine::RunPush against an in-memory destination, with faults injected.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <stop_token>

#include "ferry/error.h"
#include "lib/base/path.h"
#include "lib/engine/push_engine.h"
#include "tests/engine/fake_destination.h"
#include "tests/testing/tree.h"

namespace ferry::engine {
namespace {

using testing::FakeDestination;
using testing::Fault;
using testing::FaultyDestination;
using testing::Op;

constexpr int64_t kOld = 1'000'000'000'123'456'789;  // 2001-09-09, odd nanoseconds

class RecordingObserver : public Observer {
 public:
  void OnFile(const FileEvent& e) override { events.push_back(e); }
  void OnWarning(const std::string& m) override { warnings.push_back(m); }
  std::vector<FileEvent> events;
  std::vector<std::string> warnings;

  const FileEvent* Find(const std::string& path, FileAction action) const {
    for (const FileEvent& e : events) {
      if (e.path == path && e.action == action) return &e;
    }
    return nullptr;
  }
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { src_ = testing::MakeTempDir("src"); }

  EngineConfig Config() {
    EngineConfig c;
    c.source_root = src_;
    c.jobs = 4;
    c.observer = &observer_;
    return c;
  }

  std::string Src(const std::string& rel) const { return src_ + "/" + rel; }

  // Runs one push to completion on a private io_context and pool.
  Report Run(EngineConfig config, transport::Destination& dest) {
    asio::io_context io(1);
    asio::thread_pool pool(4);
    Report report;
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(io, RunPush(std::move(config), dest, pool), [&](std::exception_ptr e, Report r) {
      error = e;
      report = std::move(r);
      done = true;
    });
    io.run();
    pool.join();
    if (error) std::rethrow_exception(error);
    EXPECT_TRUE(done);
    return report;
  }

  static std::vector<std::string> Temps(const FakeDestination& dest) {
    std::vector<std::string> out;
    for (const auto& [path, node] : dest.nodes()) {
      if (std::string(BaseName(path)).starts_with(kTempPrefix)) out.push_back(path);
    }
    return out;
  }

  static const Problem* FindProblem(const Report& r, const std::string& path) {
    for (const Problem& p : r.problems) {
      if (p.path == path) return &p;
    }
    return nullptr;
  }

  std::string src_;
  RecordingObserver observer_;
};

TEST_F(EngineTest, CopiesTreeWithAttributes) {
  testing::WriteFile(Src("a"), "alpha", 0600, kOld);
  testing::WriteFile(Src("d/b"), "beta", 0755, kOld + 1);
  testing::WriteFile(Src("d/e/empty"), "", 0644, kOld + 2);
  testing::MakeDir(Src("hollow"), 0700);
  testing::MakeSymlink(Src("link"), "d/b");

  FakeDestination dest;
  Report r = Run(Config(), dest);

  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? r.fatal_message : r.problems[0].message);
  EXPECT_EQ(r.totals.files_sent, 3u);
  EXPECT_EQ(r.totals.dirs_created, 3u);  // d, d/e, hollow
  EXPECT_EQ(r.totals.symlinks, 1u);
  ASSERT_NE(dest.Find("a"), nullptr);
  EXPECT_EQ(dest.Find("a")->content, "alpha");
  EXPECT_EQ(dest.Find("a")->mode, 0600u);
  EXPECT_EQ(dest.Find("a")->mtime_ns, kOld);
  ASSERT_NE(dest.Find("d/b"), nullptr);
  EXPECT_EQ(dest.Find("d/b")->mode, 0755u);
  EXPECT_EQ(dest.Find("d/b")->mtime_ns, kOld + 1);
  ASSERT_NE(dest.Find("d/e/empty"), nullptr);
  EXPECT_EQ(dest.Find("d/e/empty")->content, "");
  ASSERT_NE(dest.Find("hollow"), nullptr);
  EXPECT_EQ(dest.Find("hollow")->type, EntryType::kDirectory);
  ASSERT_NE(dest.Find("link"), nullptr);
  EXPECT_EQ(dest.Find("link")->type, EntryType::kSymlink);
  EXPECT_EQ(dest.Find("link")->target, "d/b");
  EXPECT_EQ(dest.open_sinks(), 0);
  EXPECT_TRUE(Temps(dest).empty());
}

// While the destination connects, the source tree is listed ahead (a no-op
// push then costs the larger of connect and scan, not their sum); excluded
// directories are not entered, and the read-ahead listings are what is synced.
TEST_F(EngineTest, SourceIsReadAheadWhileTheDestinationOpens) {
  for (int i = 0; i < 20; ++i) {
    testing::WriteFile(Src("d" + std::to_string(i) + "/sub/f"), "file " + std::to_string(i), 0644,
                       kOld);
  }
  testing::WriteFile(Src("skip/x"), "excluded", 0644, kOld);
  FakeDestination dest;
  dest.open_delay = std::chrono::milliseconds(500);
  // Written once the source was read ahead: this run does not see it.
  dest.on_opened = [this] { testing::WriteFile(Src("d7/sub/late"), "late", 0644, kOld); };
  EngineConfig config = Config();
  config.excluded = [](std::string_view rel, bool) { return rel == "skip"; };

  Report r = Run(std::move(config), dest);

  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? r.fatal_message : r.problems[0].message);
  EXPECT_EQ(r.totals.files_sent, 20u);
  for (int i = 0; i < 20; ++i) {
    const auto* f = dest.Find("d" + std::to_string(i) + "/sub/f");
    ASSERT_NE(f, nullptr) << i;
    EXPECT_EQ(f->content, "file " + std::to_string(i));
  }
  EXPECT_EQ(dest.Find("d7/sub/late"), nullptr);
  EXPECT_EQ(dest.Find("skip"), nullptr);
  EXPECT_TRUE(Temps(dest).empty());
}

TEST_F(EngineTest, FailedWriteNeverCommitsAPartialFileAndAbortsTheTemp) {
  std::string big = testing::RandomBytes(20000);
  testing::WriteFile(Src("big"), big, 0644, kOld);
  testing::WriteFile(Src("small"), "s", 0644, kOld);
  FakeDestination inner;
  inner.PutFile("big", "old", 5);
  FaultyDestination dest(inner);
  dest.AddFault({Op::kWrite, 2, std::make_error_code(std::errc::no_space_on_device), "big"});

  EngineConfig config = Config();
  config.chunk_bytes = 4096;
  Report r = Run(std::move(config), dest);

  EXPECT_EQ(dest.injected(), 1);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].path, "big");
  EXPECT_EQ(r.problems[0].stage, "write");
  EXPECT_EQ(r.problems[0].code, std::errc::no_space_on_device);
  EXPECT_FALSE(r.fatal);
  EXPECT_EQ(r.totals.files_failed, 1u);
  EXPECT_EQ(r.totals.files_sent, 1u);
  // The old copy is untouched: never a half-written "big".
  EXPECT_EQ(inner.Find("big")->content, "old");
  EXPECT_EQ(inner.Find("small")->content, "s");
  EXPECT_EQ(inner.sinks_aborted(), 1);
  EXPECT_EQ(inner.sinks_dropped_unfinished(), 0);
  EXPECT_EQ(inner.open_sinks(), 0);
  EXPECT_TRUE(Temps(inner).empty());
  const FileEvent* ev = observer_.Find("big", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->outcome, Outcome::kFailed);
  EXPECT_EQ(ev->error, std::errc::no_space_on_device);
}

TEST_F(EngineTest, PerFileFailuresAreProblemsWithPathStageAndCodeAndTheRunGoesOn) {
  for (int i = 0; i < 10; ++i) {
    testing::WriteFile(Src("ok" + std::to_string(i)), "x" + std::to_string(i), 0644, kOld);
  }
  testing::WriteFile(Src("create_fails"), "c", 0644, kOld);
  testing::WriteFile(Src("commit_fails"), "c", 0644, kOld);
  testing::MakeSymlink(Src("link_fails"), "ok1");
  testing::WriteFile(Src("mkdir_fails/inner"), "i", 0644, kOld);
  testing::WriteFile(Src("list_fails/inner"), "i", 0644, kOld);
  FakeDestination inner;
  inner.PutDir("list_fails");  // present, so the engine lists it
  FaultyDestination dest(inner);
  const auto eacces = std::make_error_code(std::errc::permission_denied);
  const auto enospc = std::make_error_code(std::errc::no_space_on_device);
  const auto eio = std::make_error_code(std::errc::io_error);
  dest.AddFault({Op::kCreateFile, 1, eacces, "create_fails"});
  dest.AddFault({Op::kCommit, 1, enospc, "commit_fails"});
  dest.AddFault({Op::kSymlink, 1, eacces, "link_fails"});
  dest.AddFault({Op::kMakeDir, 1, eacces, "mkdir_fails"});
  dest.AddFault({Op::kList, 1, eio, "list_fails"});

  Report r = Run(Config(), dest);

  EXPECT_FALSE(r.fatal) << r.fatal_message;
  EXPECT_EQ(dest.injected(), 5);
  struct Want {
    const char* path;
    const char* stage;
    std::error_code code;
  };
  // A file read whole in one chunk goes through Destination::PutFile, whose
  // single step reports every failure (commit included) as "write".
  for (const Want& w :
       {Want{"create_fails", "write", eacces}, Want{"commit_fails", "write", enospc},
        Want{"link_fails", "symlink", eacces}, Want{"mkdir_fails", "mkdir", eacces},
        Want{"list_fails", "list", eio}}) {
    const Problem* p = FindProblem(r, w.path);
    ASSERT_NE(p, nullptr) << w.path;
    EXPECT_EQ(p->stage, w.stage) << w.path;
    EXPECT_EQ(p->code, w.code) << w.path;
    EXPECT_NE(p->message.find(w.path), std::string::npos) << p->message;
  }
  EXPECT_EQ(r.problems.size(), 5u);
  EXPECT_EQ(r.totals.files_sent, 10u);
  for (int i = 0; i < 10; ++i) {
    ASSERT_NE(inner.Find("ok" + std::to_string(i)), nullptr) << i;
  }
  EXPECT_EQ(inner.Find("create_fails"), nullptr);
  EXPECT_EQ(inner.Find("commit_fails"), nullptr);
  EXPECT_EQ(inner.Find("mkdir_fails/inner"), nullptr);
  EXPECT_EQ(inner.Find("list_fails/inner"), nullptr);
  EXPECT_EQ(inner.open_sinks(), 0);
  EXPECT_TRUE(Temps(inner).empty());
}

TEST_F(EngineTest, ConnectionLostOnFirstAttemptIsRetriedAndSucceeds) {
  std::string content = testing::RandomBytes(10000, 7);
  testing::WriteFile(Src("a"), content, 0640, kOld);
  FakeDestination inner;
  FaultyDestination dest(inner);
  dest.AddFault({Op::kWrite, 1, make_error_code(errc::kConnectionLost), "a"});

  Report r = Run(Config(), dest);

  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems[0].message);
  EXPECT_EQ(dest.injected(), 1);
  EXPECT_EQ(r.totals.files_sent, 1u);
  EXPECT_EQ(r.totals.files_failed, 0u);
  ASSERT_NE(inner.Find("a"), nullptr);
  EXPECT_EQ(inner.Find("a")->content, content);
  EXPECT_EQ(inner.Find("a")->mode, 0640u);
  EXPECT_EQ(inner.sinks_aborted(), 1);  // the first attempt's temp
  EXPECT_TRUE(Temps(inner).empty());
}

TEST_F(EngineTest, ConnectionLostOnEveryAttemptFailsAfterTheRetries) {
  testing::WriteFile(Src("a"), "abc", 0644, kOld);
  FakeDestination inner;
  FaultyDestination dest(inner);
  dest.AddFault({Op::kCreateFile, 1, make_error_code(errc::kConnectionLost), "a", 100});
  EngineConfig config = Config();
  config.retries = 2;

  Report r = Run(std::move(config), dest);

  EXPECT_EQ(dest.injected(), 3);  // first attempt + 2 retries
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].code, errc::kConnectionLost);
  EXPECT_EQ(r.totals.files_failed, 1u);
  EXPECT_EQ(inner.Find("a"), nullptr);
}

TEST_F(EngineTest, NonRetryableErrorIsNotRetried) {
  testing::WriteFile(Src("a"), "abc", 0644, kOld);
  FakeDestination inner;
  FaultyDestination dest(inner);
  dest.AddFault({Op::kCreateFile, 1, std::make_error_code(std::errc::permission_denied), "a", 100});
  Report r = Run(Config(), dest);
  EXPECT_EQ(dest.injected(), 1);
  EXPECT_EQ(r.totals.files_failed, 1u);
}

// A destination that refuses to let us back in (kAuthFailed, kHostKey*) ends
// the run: no later file could succeed, so none is started.
TEST_F(EngineTest, RefusedReconnectIsFatalAndNoFurtherFileIsStarted) {
  for (int i = 0; i < 50; ++i) {
    testing::WriteFile(Src("f" + std::to_string(100 + i)), "x", 0644, kOld);
  }
  FakeDestination inner;
  FaultyDestination dest(inner);
  dest.AddFault({Op::kCreateFile, 3, make_error_code(errc::kHostKeyMismatch), "", 1000});
  EngineConfig config = Config();
  config.jobs = 1;

  Report r = Run(std::move(config), dest);

  EXPECT_EQ(r.fatal, errc::kHostKeyMismatch);
  EXPECT_EQ(r.fatal_message.rfind("reconnecting to fake:", 0), 0u) << r.fatal_message;
  EXPECT_EQ(dest.injected(), 1);  // not retried, and no other file tried
  EXPECT_EQ(r.totals.files_sent, 2u);
  EXPECT_EQ(r.totals.files_failed, 1u);
  EXPECT_TRUE(r.problems.empty());  // the fatal error says it once
  EXPECT_FALSE(r.cancelled);
}

void MakeWideTree(const std::string& root, int dirs, int files_per_dir) {
  for (int d = 0; d < dirs; ++d) {
    for (int f = 0; f < files_per_dir; ++f) {
      std::string rel =
          "d" + std::to_string(d) + "/sub" + std::to_string(f % 3) + "/f" + std::to_string(f);
      testing::WriteFile(
          root + "/" + rel,
          testing::RandomBytes(static_cast<size_t>(f * 37), static_cast<uint32_t>(d * 1000 + f)),
          f % 2 ? 0600 : 0644, kOld + f);
    }
  }
  testing::MakeSymlink(root + "/d0/link", "../d1");
  testing::MakeDir(root + "/empty", 0700);
}

TEST_F(EngineTest, OneJobAndSixtyFourJobsGiveTheSameResult) {
  MakeWideTree(src_, 6, 30);
  FakeDestination one, many;
  EngineConfig c1 = Config();
  c1.jobs = 1;
  c1.chunk_bytes = 512;
  EngineConfig c64 = Config();
  c64.jobs = 64;
  c64.chunk_bytes = 512;
  Report r1 = Run(std::move(c1), one);
  Report r64 = Run(std::move(c64), many);
  EXPECT_TRUE(r1.ok());
  EXPECT_TRUE(r64.ok());
  EXPECT_EQ(r1.totals.files_sent, 180u);
  EXPECT_EQ(r64.totals.files_sent, r1.totals.files_sent);
  EXPECT_EQ(r64.totals.dirs_created, r1.totals.dirs_created);
  EXPECT_EQ(r64.totals.bytes_written, r1.totals.bytes_written);
  EXPECT_EQ(r64.totals.symlinks, 1u);
  EXPECT_TRUE(one.nodes() == many.nodes());
  EXPECT_EQ(one.max_open_sinks(), 1);
  EXPECT_GT(many.max_open_sinks(), 1);
}

// Many files in flight hide round trips; memory is set by the large ones:
// only `large_jobs` files of at least a small buffer's size are read at once.
TEST_F(EngineTest, LargeFilesInFlightAreBoundedByLargeJobsSmallOnesByJobs) {
  for (int i = 0; i < 40; ++i) {
    testing::WriteFile(Src("big/f" + std::to_string(i)),
                       testing::RandomBytes(20000, static_cast<uint32_t>(i)), 0644, kOld);
  }
  FakeDestination large_only;
  EngineConfig config = Config();
  config.jobs = 16;
  config.large_jobs = 2;
  config.chunk_bytes = 4096;  // the small buffer is 4 KiB too: every file here is large
  Report r = Run(config, large_only);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.totals.files_sent, 40u);
  EXPECT_EQ(large_only.max_open_sinks(), 2);
  EXPECT_EQ(large_only.Find("big/f7")->content, testing::RandomBytes(20000, 7));

  for (int i = 0; i < 400; ++i) {
    testing::WriteFile(Src("small/f" + std::to_string(i)), std::to_string(i), 0644, kOld);
  }
  FakeDestination mixed;
  Report r2 = Run(config, mixed);
  EXPECT_TRUE(r2.ok());
  EXPECT_EQ(r2.totals.files_sent, 440u);
  EXPECT_GT(mixed.max_open_sinks(), 2);  // small files are not held back
  EXPECT_LE(mixed.max_open_sinks(), 16);
  EXPECT_EQ(mixed.open_sinks(), 0);
  EXPECT_TRUE(large_only.Find("big/f39")->content == mixed.Find("big/f39")->content);
}

// A destination over a slow link asks for more files in flight; the engine
// follows only when the user did not choose.
TEST_F(EngineTest, DestinationMaySuggestMoreJobsWhenTheUserDidNotChoose) {
  for (int i = 0; i < 400; ++i) {
    testing::WriteFile(Src("d/f" + std::to_string(i)), std::to_string(i), 0644, kOld);
  }
  FakeDestination chosen, suggested;
  chosen.suggested_jobs = suggested.suggested_jobs = 64;
  EngineConfig config = Config();
  config.jobs = 2;
  Report r1 = Run(config, chosen);
  config.jobs_from_destination = true;
  Report r2 = Run(config, suggested);
  EXPECT_TRUE(r1.ok());
  EXPECT_TRUE(r2.ok());
  EXPECT_LE(chosen.max_open_sinks(), 2);
  EXPECT_GT(suggested.max_open_sinks(), 2);
  EXPECT_LE(suggested.max_open_sinks(), 64);
  EXPECT_TRUE(chosen.nodes() == suggested.nodes());
}

TEST_F(EngineTest, FiveThousandFilesNeverHaveMoreSinksOpenThanJobs) {
  for (int i = 0; i < 5000; ++i) {
    std::string rel = "dir" + std::to_string(i % 10) + "/f" + std::to_string(i);
    testing::WriteFile(Src(rel), std::to_string(i), 0644, kOld);
  }
  FakeDestination dest;
  EngineConfig config = Config();
  config.jobs = 8;
  Report r = Run(std::move(config), dest);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.totals.files_sent, 5000u);
  EXPECT_EQ(dest.sinks_created(), 5000);
  EXPECT_LE(dest.max_open_sinks(), 8);
  EXPECT_GE(dest.max_open_sinks(), 2);  // the bound was actually exercised
  EXPECT_EQ(dest.open_sinks(), 0);
  ASSERT_NE(dest.Find("dir3/f4993"), nullptr);
  EXPECT_EQ(dest.Find("dir3/f4993")->content, "4993");
}

TEST_F(EngineTest, MaxDeleteOverTheLimitDeletesNothingAndIsFatal) {
  testing::WriteFile(Src("keep"), "k", 0644, kOld);
  FakeDestination dest;
  dest.PutFile("keep", "k", kOld);
  dest.PutFile("x", "1");
  dest.PutFile("y", "2");
  dest.PutDir("z");
  dest.PutFile("z/inner", "3");
  EngineConfig config = Config();
  config.plan.delete_extraneous = true;
  config.max_delete = 2;

  Report r = Run(std::move(config), dest);

  EXPECT_EQ(r.fatal, errc::kMaxDeleteExceeded);
  EXPECT_EQ(dest.removes(), 0);
  EXPECT_NE(dest.Find("x"), nullptr);
  EXPECT_NE(dest.Find("y"), nullptr);
  EXPECT_NE(dest.Find("z/inner"), nullptr);
  EXPECT_EQ(r.totals.files_deleted, 0u);
}

TEST_F(EngineTest, MaxDeleteAtTheLimitDeletes) {
  testing::WriteFile(Src("keep"), "k", 0644, kOld);
  FakeDestination dest;
  dest.PutFile("x", "1");
  dest.PutDir("z");
  dest.PutFile("z/inner", "3");
  EngineConfig config = Config();
  config.plan.delete_extraneous = true;
  config.max_delete = 2;
  Report r = Run(std::move(config), dest);
  EXPECT_TRUE(r.ok()) << r.fatal_message;
  EXPECT_EQ(r.totals.files_deleted, 2u);
  EXPECT_EQ(dest.Find("x"), nullptr);
  EXPECT_EQ(dest.Find("z"), nullptr);
  EXPECT_EQ(dest.Find("z/inner"), nullptr);
}

TEST_F(EngineTest, DeletionsAreSkippedAfterAnEarlierError) {
  testing::WriteFile(Src("a"), "a", 0644, kOld);
  testing::WriteFile(Src("b"), "b", 0644, kOld);
  FakeDestination inner;
  inner.PutFile("extra", "e");
  FaultyDestination dest(inner);
  dest.AddFault({Op::kCreateFile, 1, std::make_error_code(std::errc::permission_denied), "a"});
  EngineConfig config = Config();
  config.plan.delete_extraneous = true;

  Report r = Run(std::move(config), dest);

  EXPECT_NE(inner.Find("extra"), nullptr);
  EXPECT_EQ(inner.removes(), 0);
  EXPECT_EQ(r.totals.files_deleted, 0u);
  bool skipped = false;
  for (const Problem& p : r.problems) skipped |= p.code == errc::kDeleteSkipped;
  EXPECT_TRUE(skipped);
  EXPECT_NE(FindProblem(r, "a"), nullptr);
}

TEST_F(EngineTest, CancellationMidRunLeavesNoOpenSinksAndNoPartialFiles) {
  for (int i = 0; i < 300; ++i) {
    testing::WriteFile(Src("f" + std::to_string(i)), testing::RandomBytes(8192, i), 0644, kOld);
  }
  FakeDestination dest;
  std::stop_source stop;
  dest.after_write = [&stop](int writes) {
    if (writes == 60) stop.request_stop();
  };
  EngineConfig config = Config();
  config.jobs = 8;
  config.chunk_bytes = 1024;
  config.stop = stop.get_token();

  Report r = Run(std::move(config), dest);

  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(dest.open_sinks(), 0);
  EXPECT_EQ(dest.sinks_dropped_unfinished(), 0);
  EXPECT_TRUE(Temps(dest).empty());
  EXPECT_LT(dest.sinks_committed(), 300);
  // Nothing new started after the stop: at most the files in flight then.
  EXPECT_LE(dest.sinks_created(), 60 / 8 + 8 + 1);
  for (const auto& [path, node] : dest.nodes()) {
    if (node.type != EntryType::kFile) continue;
    EXPECT_EQ(node.content, testing::ReadFile(Src(path))) << path;
  }
}

TEST_F(EngineTest, ChecksumCatchesSameSizeSameMtimeChange) {
  testing::WriteFile(Src("a"), "new!", 0644, kOld);
  FakeDestination dest;
  dest.PutFile("a", "old!", kOld);
  {
    Report r = Run(Config(), dest);  // size + mtime agree: skipped
    EXPECT_EQ(r.totals.files_skipped, 1u);
    EXPECT_EQ(dest.Find("a")->content, "old!");
  }
  EngineConfig config = Config();
  config.plan.checksum = true;
  Report r = Run(std::move(config), dest);
  EXPECT_EQ(r.totals.files_sent, 1u);
  EXPECT_EQ(dest.Find("a")->content, "new!");
  const FileEvent* ev = observer_.Find("a", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->reason, "checksum");
}

TEST_F(EngineTest, DryRunChangesNothing) {
  testing::WriteFile(Src("a"), "a", 0644, kOld);
  testing::WriteFile(Src("d/b"), "b", 0644, kOld);
  testing::MakeSymlink(Src("l"), "a");
  FakeDestination dest;
  dest.PutFile("a", "older", kOld - 5);
  dest.PutFile("extra", "e");
  auto before = dest.nodes();
  EngineConfig config = Config();
  config.dry_run = true;
  config.plan.delete_extraneous = true;

  Report r = Run(std::move(config), dest);

  EXPECT_TRUE(r.dry_run);
  EXPECT_TRUE(dest.nodes() == before);
  EXPECT_EQ(dest.sinks_created(), 0);
  EXPECT_EQ(dest.removes(), 0);
  EXPECT_EQ(r.totals.files_sent, 2u);
  EXPECT_EQ(r.totals.files_deleted, 1u);
  const FileEvent* del = observer_.Find("extra", FileAction::kDelete);
  ASSERT_NE(del, nullptr);
  EXPECT_EQ(del->outcome, Outcome::kDryRun);
}

TEST_F(EngineTest, FileWhereDestinationHasADirectoryIsAConflictWithoutDelete) {
  testing::WriteFile(Src("x"), "file now", 0644, kOld);
  FakeDestination dest;
  dest.PutDir("x");
  dest.PutFile("x/old", "o");
  Report r = Run(Config(), dest);
  const Problem* p = FindProblem(r, "x");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->code, errc::kTypeConflict);
  EXPECT_NE(dest.Find("x/old"), nullptr);

  EngineConfig config = Config();
  config.plan.delete_extraneous = true;
  Report r2 = Run(std::move(config), dest);
  EXPECT_TRUE(r2.ok()) << (r2.problems.empty() ? "" : r2.problems[0].message);
  ASSERT_NE(dest.Find("x"), nullptr);
  EXPECT_EQ(dest.Find("x")->type, EntryType::kFile);
  EXPECT_EQ(dest.Find("x/old"), nullptr);
}

TEST_F(EngineTest, DirectoryWhereDestinationHasASymlinkReplacesTheLink) {
  testing::WriteFile(Src("a/f"), "f", 0644, kOld);
  FakeDestination dest;
  dest.PutSymlink("a", "/somewhere/outside");
  Report r = Run(Config(), dest);
  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems[0].message);
  ASSERT_NE(dest.Find("a"), nullptr);
  EXPECT_EQ(dest.Find("a")->type, EntryType::kDirectory);
  ASSERT_NE(dest.Find("a/f"), nullptr);
}

TEST_F(EngineTest, LeftoverTempFilesAreRemoved) {
  testing::WriteFile(Src("a"), "a", 0644, kOld);
  FakeDestination dest;
  dest.PutFile(std::string(kTempPrefix) + "deadbeef", "partial");
  Report r = Run(Config(), dest);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(Temps(dest).empty());
}

TEST_F(EngineTest, FifoInSourceIsSkippedWithAWarning) {
  testing::MakeFifo(Src("pipe"));
  testing::WriteFile(Src("a"), "a", 0644, kOld);
  FakeDestination dest;
  Report r = Run(Config(), dest);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.totals.ignored, 1u);
  EXPECT_EQ(dest.Find("pipe"), nullptr);
  ASSERT_EQ(observer_.warnings.size(), 1u);
  EXPECT_NE(observer_.warnings[0].find("pipe"), std::string::npos);
}

// ---- resume of large uploads ----------------------------------------------

TEST_F(EngineTest, ConnectionLostMidUploadIsRetriedFromThePartFile) {
  const std::string big = testing::RandomBytes(1 << 20, 3);
  testing::WriteFile(Src("big"), big, 0644, kOld);
  FakeDestination inner;
  inner.supports_resume = true;
  FaultyDestination dest(inner);
  // Two 64 KiB chunks land, the third write finds the connection gone.
  dest.AddFault({Op::kWrite, 3, make_error_code(errc::kConnectionLost), "big"});

  EngineConfig config = Config();
  config.chunk_bytes = 64 << 10;
  config.resume_threshold_bytes = 256 << 10;
  Report r = Run(std::move(config), dest);

  ASSERT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems[0].message);
  EXPECT_EQ(dest.injected(), 1);
  EXPECT_EQ(inner.Find("big")->content, big);
  EXPECT_EQ(inner.parts_opened(), 2);
  const FileEvent* ev = observer_.Find("big", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->resumed_from, 128u << 10);
  EXPECT_EQ(ev->bytes_read, (1u << 20) - (128u << 10));
  EXPECT_EQ(r.totals.files_resumed, 1u);
  EXPECT_EQ(r.totals.bytes_resumed, 128u << 10);
  EXPECT_EQ(r.totals.bytes_read, (1u << 20) - (128u << 10));
  EXPECT_TRUE(Temps(inner).empty());
  EXPECT_EQ(inner.open_sinks(), 0);
}

TEST_F(EngineTest, StaleTempsAreRemovedButAMatchingPartFileIsKeptAndResumed) {
  const std::string big = testing::RandomBytes(1 << 20, 4);
  testing::WriteFile(Src("big"), big, 0644, kOld);
  struct stat st;
  ASSERT_EQ(::stat(Src("big").c_str(), &st), 0);
  FakeDestination dest;
  dest.supports_resume = true;
  const std::string part = PartFileName("big", big.size(), kOld, st.st_ino);
  dest.PutFile(part, big.substr(0, 300 << 10), 0, 0600);  // an interrupted run's
  const std::string stale = PartFileName("big", big.size(), kOld + 1, st.st_ino);
  dest.PutFile(stale, big.substr(0, 500 << 10), 0, 0600);  // an older version's
  dest.PutFile(std::string(kTempPrefix) + "1234", "x", 0, 0600);

  EngineConfig config = Config();
  config.chunk_bytes = 64 << 10;
  config.resume_threshold_bytes = 256 << 10;
  Report r = Run(std::move(config), dest);

  ASSERT_TRUE(r.ok());
  EXPECT_EQ(dest.Find("big")->content, big);
  const FileEvent* ev = observer_.Find("big", FileAction::kUpload);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(ev->resumed_from, 256u << 10);  // 300 KiB rounded down to a chunk
  EXPECT_TRUE(Temps(dest).empty());
  EXPECT_TRUE(observer_.warnings.empty());
}

TEST_F(EngineTest, CompressedUploadsAreNotResumed) {
  const std::string big = testing::RandomBytes(1 << 20, 5);
  testing::WriteFile(Src("big"), big, 0644, kOld);
  FakeDestination dest;
  dest.supports_resume = true;
  EngineConfig config = Config();
  config.chunk_bytes = 64 << 10;
  config.resume_threshold_bytes = 256 << 10;
  config.plan.compress = true;
  config.compress_level = 3;
  Report r = Run(std::move(config), dest);

  ASSERT_TRUE(r.ok());
  EXPECT_EQ(dest.parts_opened(), 0);
  EXPECT_NE(dest.Find("big.zst"), nullptr);
  EXPECT_TRUE(Temps(dest).empty());
}

TEST_F(EngineTest, DestinationsWithoutResumeKeepUsingRandomTemps) {
  const std::string big = testing::RandomBytes(1 << 20, 6);
  testing::WriteFile(Src("big"), big, 0644, kOld);
  FakeDestination dest;  // supports_resume = false
  EngineConfig config = Config();
  config.chunk_bytes = 64 << 10;
  config.resume_threshold_bytes = 256 << 10;
  Report r = Run(std::move(config), dest);

  ASSERT_TRUE(r.ok());
  EXPECT_EQ(dest.parts_opened(), 0);
  EXPECT_EQ(dest.Find("big")->content, big);
}

}  // namespace
}  // namespace ferry::engine
