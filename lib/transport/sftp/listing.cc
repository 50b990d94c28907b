#include "lib/transport/sftp/listing.h"

#include <sys/stat.h>

#include <cstdint>

#include "lib/base/path.h"

namespace ferry::transport::sftp_internal {

Entry EntryFromAttrs(std::string name, const sftp::Attrs& attrs) {
  Entry e;
  e.name = std::move(name);
  if (attrs.Has(sftp::kAttrPermissions)) {
    switch (attrs.permissions & S_IFMT) {
      case S_IFREG:
        e.type = EntryType::kFile;
        break;
      case S_IFDIR:
        e.type = EntryType::kDirectory;
        break;
      case S_IFLNK:
        e.type = EntryType::kSymlink;
        break;
      default:
        e.type = EntryType::kSpecial;
        break;
    }
    e.mode = attrs.permissions & 07777;
  } else {
    e.type = EntryType::kSpecial;  // cannot tell: never treated as a file we own
  }
  if (attrs.Has(sftp::kAttrSize)) e.size = attrs.size;
  if (attrs.Has(sftp::kAttrAcModTime)) e.mtime_ns = int64_t{attrs.mtime} * 1'000'000'000;
  return e;
}

void ListingBuilder::Add(std::vector<sftp::NameEntry> names) {
  for (sftp::NameEntry& n : names) {
    if (n.filename == "." || n.filename == "..") continue;
    if (!IsSafeName(n.filename)) {
      ++listing_.unsafe_names;
      continue;
    }
    Entry e = EntryFromAttrs(std::move(n.filename), n.attrs);
    if (e.type == EntryType::kSymlink) symlinks_.push_back(listing_.entries.size());
    listing_.entries.push_back(std::move(e));
  }
}

uint32_t SecondsForSftp(int64_t ns) {
  int64_t s = ns / 1'000'000'000;
  if (ns % 1'000'000'000 < 0) --s;  // floor for times before 1970
  if (s < 0) return 0;
  if (s > int64_t{UINT32_MAX}) return UINT32_MAX;
  return static_cast<uint32_t>(s);
}

}  // namespace ferry::transport::sftp_internal
