#include "lib/plan/plan.h"

#include <gtest/gtest.h>

namespace ferry::plan {
namespace {

Entry File(std::string name, uint64_t size, int64_t mtime_ns) {
  Entry e;
  e.name = std::move(name);
  e.type = EntryType::kFile;
  e.size = size;
  e.mtime_ns = mtime_ns;
  e.mode = 0644;
  return e;
}

Entry Dir(std::string name) {
  Entry e;
  e.name = std::move(name);
  e.type = EntryType::kDirectory;
  e.mode = 0755;
  return e;
}

Entry Link(std::string name, std::string target) {
  Entry e;
  e.name = std::move(name);
  e.type = EntryType::kSymlink;
  e.link_target = std::move(target);
  return e;
}

const Action* Find(const std::vector<Action>& actions, std::string_view name) {
  for (const Action& a : actions) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

TEST(PlanTest, NewFileIsUploaded) {
  auto actions = PlanDirectory({File("a", 3, 10)}, {}, {}, nullptr);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ActionKind::kUpload);
  EXPECT_STREQ(actions[0].reason, "new");
}

TEST(PlanTest, SameSizeAndMtimeIsSkipped) {
  auto actions = PlanDirectory({File("a", 3, 10)}, {File("a", 3, 10)}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kSkip);
}

TEST(PlanTest, SizeChangeIsUploaded) {
  auto actions = PlanDirectory({File("a", 4, 10)}, {File("a", 3, 10)}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kUpload);
  EXPECT_STREQ(actions[0].reason, "size");
}

TEST(PlanTest, MtimeChangeIsUploaded) {
  auto actions = PlanDirectory({File("a", 3, 11)}, {File("a", 3, 10)}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kUpload);
  EXPECT_STREQ(actions[0].reason, "mtime");
}

TEST(PlanTest, PermissionChangeAloneIsUploaded) {
  Entry local = File("a", 3, 10);
  local.mode = 0600;
  auto actions = PlanDirectory({local}, {File("a", 3, 10)}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kUpload);
  EXPECT_STREQ(actions[0].reason, "mode");
}

TEST(PlanTest, SetIdBitsAloneDoNotMakeAFileDifferent) {
  // A destination kernel may drop set-id bits: comparing them would resend forever.
  Entry local = File("a", 3, 10);
  local.mode = 04755;
  Entry dest = File("a", 3, 10);
  dest.mode = 0755;
  auto actions = PlanDirectory({local}, {dest}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kSkip);
}

TEST(PlanTest, MtimeComparedAtDestinationGranularity) {
  PlanOptions options;
  options.mtime_granularity_ns = 1'000'000'000;
  auto actions =
      PlanDirectory({File("a", 3, 5'123'456'789)}, {File("a", 3, 5'000'000'000)}, options, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kSkip);
}

TEST(PlanTest, ChecksumModeVerifiesEqualSizes) {
  PlanOptions options;
  options.checksum = true;
  auto actions = PlanDirectory({File("a", 3, 10), File("b", 4, 10)},
                               {File("a", 3, 99), File("b", 5, 10)}, options, nullptr);
  EXPECT_EQ(Find(actions, "a")->kind, ActionKind::kVerify);
  EXPECT_EQ(Find(actions, "b")->kind, ActionKind::kUpload);
}

TEST(PlanTest, ExtraneousEntriesAreKeptWithoutDelete) {
  auto actions = PlanDirectory({}, {File("old", 1, 1), Dir("olddir")}, {}, nullptr);
  EXPECT_TRUE(actions.empty());
}

TEST(PlanTest, DeleteRemovesExtraneousButNotExcluded) {
  PlanOptions options;
  options.delete_extraneous = true;
  auto excluded = [](const Entry& e) { return e.name == "keep.log"; };
  auto actions = PlanDirectory({}, {File("old", 1, 1), File("keep.log", 1, 1)}, options, excluded);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ActionKind::kDelete);
  EXPECT_EQ(actions[0].name, "old");
}

TEST(PlanTest, DeleteExcludedRemovesExcludedToo) {
  PlanOptions options;
  options.delete_excluded = true;
  auto excluded = [](const Entry& e) { return e.name == "keep.log"; };
  auto actions = PlanDirectory({}, {File("keep.log", 1, 1)}, options, excluded);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ActionKind::kDelete);
}

TEST(PlanTest, LeftoverTempFilesAreRemovedEvenWithoutDelete) {
  auto actions = PlanDirectory({}, {File(".ferry-tmp-0123456789abcdef", 1, 1)}, {}, nullptr);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind, ActionKind::kRemoveTemp);
}

TEST(PlanTest, NewDirectoryIsCreatedExistingIsRecursed) {
  auto actions = PlanDirectory({Dir("new"), Dir("old")}, {Dir("old")}, {}, nullptr);
  EXPECT_EQ(Find(actions, "new")->kind, ActionKind::kMkdir);
  EXPECT_EQ(Find(actions, "old")->kind, ActionKind::kRecurse);
}

TEST(PlanTest, ExistingDirectoryWithTheSameModeIsRecursedWithoutChmod) {
  auto actions = PlanDirectory({Dir("d")}, {Dir("d")}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kRecurse);
  EXPECT_FALSE(actions[0].set_dir_mode);
}

TEST(PlanTest, ChangedDirectoryModeIsSetThenRecursed) {
  Entry local = Dir("d");
  local.mode = 0750;
  auto actions = PlanDirectory({local}, {Dir("d")}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kRecurse);
  EXPECT_TRUE(actions[0].set_dir_mode);
  EXPECT_STREQ(actions[0].reason, "mode");
}

TEST(PlanTest, DirectoryModesCompareOnlyPermissionBitsWithOwnerRwxKept) {
  // The destination keeps owner rwx (DestDirMode): a 0555 source directory
  // copied as 0755 is not a change, and neither is a set-gid bit dropped.
  Entry local = Dir("ro");
  local.mode = 02555;
  auto actions = PlanDirectory({local}, {Dir("ro")}, {}, nullptr);
  EXPECT_FALSE(actions[0].set_dir_mode);
  EXPECT_EQ(DestDirMode(0000), 0700u);
  EXPECT_EQ(DestDirMode(04750), 0750u);
}

TEST(PlanTest, FileWhereDirectoryStandsIsAConflictWithoutDelete) {
  auto actions = PlanDirectory({File("x", 1, 1)}, {Dir("x")}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kConflict);
}

TEST(PlanTest, FileWhereDirectoryStandsReplacesItWithDelete) {
  PlanOptions options;
  options.delete_extraneous = true;
  auto actions = PlanDirectory({File("x", 1, 1)}, {Dir("x")}, options, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kUpload);
  EXPECT_TRUE(actions[0].delete_dest_dir_first);
}

TEST(PlanTest, DirectoryWhereFileStandsReplacesTheFile) {
  auto actions = PlanDirectory({Dir("x")}, {File("x", 1, 1)}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kReplace);
}

TEST(PlanTest, SymlinkWithSameTargetIsSkipped) {
  auto actions = PlanDirectory({Link("l", "t"), Link("m", "new")},
                               {Link("l", "t"), Link("m", "old")}, {}, nullptr);
  EXPECT_EQ(Find(actions, "l")->kind, ActionKind::kSkip);
  EXPECT_EQ(Find(actions, "m")->kind, ActionKind::kSymlink);
}

TEST(PlanTest, SymlinkOnDestinationIsReplacedByFile) {
  auto actions = PlanDirectory({File("a", 1, 1)}, {Link("a", "/etc/passwd")}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kUpload);
  EXPECT_STREQ(actions[0].reason, "type");
}

TEST(PlanTest, SpecialFilesAreSkippedWithAnAction) {
  Entry fifo;
  fifo.name = "fifo";
  fifo.type = EntryType::kSpecial;
  auto actions = PlanDirectory({fifo}, {}, {}, nullptr);
  EXPECT_EQ(actions[0].kind, ActionKind::kSpecialSkipped);
}

TEST(PlanTest, UnsafeDestinationNamesAreIgnored) {
  PlanOptions options;
  options.delete_extraneous = true;
  auto actions =
      PlanDirectory({}, {File("..", 1, 1), File("a/b", 1, 1), File("", 1, 1)}, options, nullptr);
  EXPECT_TRUE(actions.empty());
}

TEST(PlanTest, CompressModeMapsToZstNames) {
  PlanOptions options;
  options.compress = true;
  options.delete_extraneous = true;
  auto actions = PlanDirectory({File("a", 3, 10), File("b", 3, 10)},
                               {File("a.zst", 2, 10), File("b", 3, 10)}, options, nullptr);
  const Action* a = Find(actions, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dest_name, "a.zst");
  EXPECT_EQ(a->kind, ActionKind::kVerify);  // the header must confirm the size
  const Action* b = nullptr;
  for (const Action& x : actions) {
    if (x.name == "b" && x.kind == ActionKind::kDelete) b = &x;
  }
  ASSERT_NE(b, nullptr) << "uncompressed leftover is extraneous in compress mode";
  EXPECT_EQ(Find(actions, "b")->kind, ActionKind::kUpload);
}

TEST(PlanTest, OutputIsSortedWithDeletionsLast) {
  PlanOptions options;
  options.delete_extraneous = true;
  auto actions =
      PlanDirectory({File("c", 1, 1), File("a", 1, 1)}, {File("b", 1, 1)}, options, nullptr);
  ASSERT_EQ(actions.size(), 3u);
  EXPECT_EQ(actions[0].name, "a");
  EXPECT_EQ(actions[1].name, "c");
  EXPECT_EQ(actions[2].kind, ActionKind::kDelete);
}

}  // namespace
}  // namespace ferry::plan
