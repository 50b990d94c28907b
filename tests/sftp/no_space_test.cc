// The decision behind reporting a full remote disk: OpenSSH answers ENOSPC
// with FX_FAILURE, and ferry asks statvfs@openssh.com whether the room left
// explains it (lib/transport/sftp/file_sink.cc).
#include <gtest/gtest.h>

#include <cstdint>

#include "lib/sftp/codec.h"

namespace ferry::sftp {
namespace {

StatVfs Vfs(uint64_t bavail, uint64_t frsize, uint64_t bsize = 4096) {
  StatVfs v;
  v.bavail = bavail;
  v.frsize = frsize;
  v.bsize = bsize;
  v.bfree = bavail;
  v.blocks = 1000;
  return v;
}

TEST(NoSpaceTest, AvailableBytesAreUserFreeFragmentsTimesFragmentSize) {
  EXPECT_EQ(AvailableBytes(Vfs(3, 1024)), 3072u);
  // bfree counts the root-reserved blocks too: only bavail is the user's.
  StatVfs reserved = Vfs(0, 4096);
  reserved.bfree = 50;
  EXPECT_EQ(AvailableBytes(reserved), 0u);
}

TEST(NoSpaceTest, ZeroFragmentSizeFallsBackToBlockSize) {
  EXPECT_EQ(AvailableBytes(Vfs(2, 0, 512)), 1024u);
}

TEST(NoSpaceTest, HugeCountsSaturateInsteadOfWrapping) {
  EXPECT_EQ(AvailableBytes(Vfs(UINT64_MAX / 2, 4096)), UINT64_MAX);
  EXPECT_FALSE(LooksOutOfSpace(Vfs(UINT64_MAX / 2, 4096), 1 << 20));
}

TEST(NoSpaceTest, NothingAvailableIsOutOfSpaceWhateverWasNeeded) {
  EXPECT_TRUE(LooksOutOfSpace(Vfs(0, 4096), 0));
  EXPECT_TRUE(LooksOutOfSpace(Vfs(0, 4096), 1 << 20));
}

TEST(NoSpaceTest, LessAvailableThanTheFailedWriteNeededIsOutOfSpace) {
  EXPECT_TRUE(LooksOutOfSpace(Vfs(10, 4096), 256 << 10));
  EXPECT_FALSE(LooksOutOfSpace(Vfs(64, 4096), 256 << 10));  // exactly enough
}

TEST(NoSpaceTest, RoomLeftMeansTheFailureHadAnotherCause) {
  // A CLOSE or FSETSTAT failure (needed 0) with free space: not a full disk.
  EXPECT_FALSE(LooksOutOfSpace(Vfs(1, 4096), 0));
  EXPECT_FALSE(LooksOutOfSpace(Vfs(1000, 4096), 4096));
}

}  // namespace
}  // namespace ferry::sftp
