// One directory entry, as listed on either side of a transfer. The scanner fills
// it from lstat(2); destinations fill it from their own listings.
#ifndef FERRY_BASE_ENTRY_H_
#define FERRY_BASE_ENTRY_H_

#include <cstdint>
#include <string>

namespace ferry {

enum class EntryType : uint8_t { kFile, kDirectory, kSymlink, kSpecial };

const char* EntryTypeName(EntryType type);

struct Entry {
  std::string name;  // one path component, never "." or ".." or containing '/'
  EntryType type = EntryType::kFile;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0;        // permission bits (07777)
  std::string link_target;  // symlinks only
  // Local identity, for the hash cache; zero when the side cannot tell.
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t ctime_ns = 0;
  // Scanner with follow_links only: errno of stat(2) on a symlink that could not
  // be followed (ENOENT dangling, ELOOP a loop, EACCES ...); the entry is then
  // the link itself. Zero otherwise.
  int follow_errno = 0;
};

}  // namespace ferry

#endif  // FERRY_BASE_ENTRY_H_
