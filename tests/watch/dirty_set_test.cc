#include "lib/watch/dirty_set.h"

#include <gtest/gtest.h>

namespace ferry::watch {
namespace {

using Strings = std::vector<std::string>;

TEST(DirtySetTest, NewFileMarksItsDirectoryAndIsUnsettledUntilClosed) {
  DirtySet set;
  set.FileWritten("a/b/f.txt");
  EXPECT_FALSE(set.Settled());
  set.FileClosed("a/b/f.txt");
  EXPECT_TRUE(set.Settled());
  Batch b = set.Take();
  EXPECT_EQ(b.dirs, Strings{"a/b"});
  EXPECT_TRUE(b.subtrees.empty());
  EXPECT_TRUE(set.empty());
}

TEST(DirtySetTest, WrittenFilesAreAHintForTheirDirectory) {
  DirtySet set;
  set.FileWritten("a/b/f.txt");
  set.FileClosed("a/b/f.txt");
  set.FileWritten("a/b/g.txt");
  set.FileWritten("top.txt");
  Batch b = set.Take();
  EXPECT_EQ(b.dirs, (Strings{"", "a/b"}));
  EXPECT_EQ(b.written[""], Strings{"top.txt"});
  EXPECT_EQ(b.written["a/b"], (Strings{"f.txt", "g.txt"}));
  // Taken: the next batch starts without hints.
  set.DirChanged("a/b");
  EXPECT_TRUE(set.Take().written.empty());
}

TEST(DirtySetTest, AnythingButWritesNeedsTheListingsOfTheDirectory) {
  DirtySet set;
  set.FileWritten("attr/f");
  set.FileChanged("attr/f");  // IN_ATTRIB: only a listing tells what changed
  set.FileWritten("moved/f");
  set.MovedFrom(7, "moved/g", false);
  (void)set.MovedTo(7, "moved/h", false);  // a rename into the same directory
  for (size_t i = 0; i <= Batch::kMaxWrittenHint; ++i) {
    set.FileWritten("many/f" + std::to_string(i));
  }
  set.FileWritten("kept/f");
  Batch b = set.Take();
  EXPECT_EQ(b.dirs, (Strings{"attr", "kept", "many", "moved"}));
  ASSERT_EQ(b.written.size(), 1u);
  EXPECT_EQ(b.written["kept"], Strings{"f"});
}

TEST(DirtySetTest, NoWrittenHintsAfterADirectoryRename) {
  DirtySet set;
  set.FileWritten("d/f");
  set.MovedFrom(1, "d", true);
  (void)set.MovedTo(1, "e", true);
  Batch b = set.Take();
  EXPECT_EQ(b.dirs, Strings{"e"});
  EXPECT_TRUE(b.written.empty());
}

TEST(DirtySetTest, TakeForgetsWritersSoABatchCanStartOnMaxDelay) {
  DirtySet set;
  set.FileWritten("log.txt");
  EXPECT_FALSE(set.Settled());
  (void)set.Take();
  EXPECT_TRUE(set.Settled());
}

TEST(DirtySetTest, SubtreeCoversDirectoriesAndSubtreesBelowIt) {
  DirtySet set;
  set.DirChanged("a/b");
  set.SubtreeChanged("a/b/c");
  set.DirChanged("x");
  set.SubtreeChanged("a");
  set.DirChanged("a/b/c/d");  // covered
  set.SubtreeChanged("a/z");  // covered
  Batch b = set.Take();
  EXPECT_EQ(b.subtrees, Strings{"a"});
  EXPECT_EQ(b.dirs, Strings{"x"});
}

TEST(DirtySetTest, SiblingWithCommonPrefixIsNotCovered) {
  DirtySet set;
  set.SubtreeChanged("a");
  set.DirChanged("ab");
  set.DirChanged("a-b");
  Batch b = set.Take();
  EXPECT_EQ(b.subtrees, Strings{"a"});
  EXPECT_EQ(b.dirs, (Strings{"a-b", "ab"}));
}

TEST(DirtySetTest, RootSubtreeCoversEverything) {
  DirtySet set;
  set.DirChanged("q");
  set.SubtreeChanged("");
  set.DirChanged("");
  Batch b = set.Take();
  EXPECT_EQ(b.subtrees, Strings{""});
  EXPECT_TRUE(b.dirs.empty());
}

TEST(DirtySetTest, DeletedDirectoryDropsWhatWasRecordedBelowIt) {
  DirtySet set;
  set.FileWritten("d/x");
  set.Deleted("d/x", false);
  set.SubtreeChanged("d/sub");
  set.Deleted("d/sub", true);
  set.Deleted("d", true);
  EXPECT_TRUE(set.Settled());
  Batch b = set.Take();
  EXPECT_EQ(b.deleted, (std::vector<Deletion>{{"d", true}}));
  EXPECT_TRUE(b.subtrees.empty());
  EXPECT_TRUE(b.dirs.empty());
}

TEST(DirtySetTest, MoveWithMatchingCookieIsARename) {
  DirtySet set;
  set.MovedFrom(7, "a/old", false);
  EXPECT_FALSE(set.Settled());  // waiting for the other half
  std::optional<std::string> from = set.MovedTo(7, "b/new", false);
  ASSERT_TRUE(from.has_value());
  EXPECT_EQ(*from, "a/old");
  EXPECT_TRUE(set.Settled());
  Batch b = set.Take();
  EXPECT_EQ(b.renames, (std::vector<Rename>{{"a/old", "b/new", false}}));
  // A file rename re-plans the new directory (the file may have been written too).
  EXPECT_EQ(b.dirs, Strings{"b"});
  EXPECT_TRUE(b.deleted.empty());
}

TEST(DirtySetTest, UnpairedMovedFromBecomesADeletionAtTake) {
  DirtySet set;
  set.MovedFrom(9, "gone", true);
  EXPECT_TRUE(set.has_pending_moves());
  std::vector<Deletion> moved_out;
  Batch b = set.Take(&moved_out);
  EXPECT_EQ(b.deleted, (std::vector<Deletion>{{"gone", true}}));
  EXPECT_EQ(moved_out, (std::vector<Deletion>{{"gone", true}}));
  EXPECT_TRUE(b.renames.empty());
}

TEST(DirtySetTest, UnpairedMovedToIsNewContent) {
  DirtySet set;
  EXPECT_FALSE(set.MovedTo(3, "in/dir", true).has_value());
  EXPECT_FALSE(set.MovedTo(4, "in/file", false).has_value());
  Batch b = set.Take();
  EXPECT_EQ(b.subtrees, Strings{"in/dir"});
  EXPECT_EQ(b.dirs, Strings{"in"});
}

TEST(DirtySetTest, DirectoryRenameRebasesWhatWasRecordedUnderTheOldName) {
  DirtySet set;
  set.DirChanged("src/sub");
  set.SubtreeChanged("src/new");
  set.Deleted("src/x", false);
  set.FileWritten("src/w");
  set.DirChanged("srcx");  // not under src
  set.MovedFrom(1, "src", true);
  set.MovedTo(1, "dst", true);
  EXPECT_FALSE(set.Settled());  // dst/w is still being written
  set.FileClosed("dst/w");
  EXPECT_TRUE(set.Settled());
  Batch b = set.Take();
  EXPECT_EQ(b.renames, (std::vector<Rename>{{"src", "dst", true}}));
  EXPECT_EQ(b.subtrees, Strings{"dst/new"});
  EXPECT_EQ(b.dirs, (Strings{"dst", "dst/sub", "srcx"}));
  EXPECT_EQ(b.deleted, (std::vector<Deletion>{{"dst/x", false}}));
}

TEST(DirtySetTest, DeletedThenRecreatedDirectoryKeepsItsDeletion) {
  // The loop sees the deletion of a directory that exists again and mirrors it exactly.
  DirtySet set;
  set.Deleted("d", true);
  set.SubtreeChanged("d");
  Batch b = set.Take();
  EXPECT_EQ(b.deleted, (std::vector<Deletion>{{"d", true}}));
  EXPECT_EQ(b.subtrees, Strings{"d"});
}

TEST(DirtySetTest, RenamesKeepTheirOrder) {
  DirtySet set;
  set.MovedFrom(1, "a", false);
  set.MovedTo(1, "b", false);
  set.MovedFrom(2, "b", false);
  set.MovedTo(2, "c", false);
  Batch b = set.Take();
  EXPECT_EQ(b.renames, (std::vector<Rename>{{"a", "b", false}, {"b", "c", false}}));
}

TEST(DirtySetTest, PastTheCapItDegradesToAFullRescan) {
  DirtySet set(/*max_entries=*/3);
  set.DirChanged("a");
  set.DirChanged("b");
  set.DirChanged("c");
  EXPECT_FALSE(set.full_rescan());
  set.DirChanged("d");
  EXPECT_TRUE(set.full_rescan());
  EXPECT_EQ(set.size(), 0u);
  set.DirChanged("e");  // nothing more is recorded
  Batch b = set.Take();
  EXPECT_TRUE(b.full_rescan);
  EXPECT_TRUE(b.dirs.empty());
  EXPECT_FALSE(set.full_rescan());
}

TEST(DirtySetTest, TooManyWritersKeepsItUnsettledUntilTake) {
  DirtySet set(/*max_entries=*/2);
  set.FileWritten("d/1");
  set.FileWritten("d/2");
  set.FileWritten("d/3");  // not tracked
  set.FileClosed("d/1");
  set.FileClosed("d/2");
  EXPECT_FALSE(set.Settled());
  (void)set.Take();
  EXPECT_TRUE(set.Settled());
}

TEST(DirtySetTest, RequeuePutsTheBatchBackBeforeNewerRenames) {
  DirtySet set;
  set.MovedFrom(1, "a", false);
  set.MovedTo(1, "b", false);
  set.Deleted("gone", false);
  Batch b = set.Take();
  set.MovedFrom(2, "b", false);
  set.MovedTo(2, "c", false);
  set.Requeue(std::move(b));
  Batch again = set.Take();
  EXPECT_FALSE(again.full_rescan);
  EXPECT_EQ(again.renames, (std::vector<Rename>{{"a", "b", false}, {"b", "c", false}}));
  EXPECT_EQ(again.deleted, (std::vector<Deletion>{{"gone", false}}));
}

TEST(DirtySetTest, RequeueAfterADirectoryRenameFallsBackToFullRescan) {
  DirtySet set;
  set.DirChanged("x/y");
  Batch b = set.Take();
  set.MovedFrom(1, "x", true);
  set.MovedTo(1, "z", true);
  set.Requeue(std::move(b));
  EXPECT_TRUE(set.Take().full_rescan);
}

TEST(DirtySetTest, IsWithin) {
  EXPECT_TRUE(IsWithin("a/b", "a"));
  EXPECT_TRUE(IsWithin("a", "a"));
  EXPECT_TRUE(IsWithin("a", ""));
  EXPECT_FALSE(IsWithin("ab", "a"));
  EXPECT_FALSE(IsWithin("a", "a/b"));
}

}  // namespace
}  // namespace ferry::watch
