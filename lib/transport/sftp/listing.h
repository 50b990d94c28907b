// Turning SFTP directory entries into ferry Entries (private to
// //lib/transport/sftp; pure, so the hostile-name rules are unit-tested).
#ifndef FERRY_TRANSPORT_SFTP_LISTING_H_
#define FERRY_TRANSPORT_SFTP_LISTING_H_

#include <cstddef>
#include <string>
#include <vector>

#include "lib/base/entry.h"
#include "lib/sftp/codec.h"
#include "lib/transport/destination.h"

namespace ferry::transport::sftp_internal {

// An Entry from SFTP attributes (READDIR gives lstat's: a symlink is a symlink).
// Type from the S_IFMT bits (unknown or absent: kSpecial); mtime in whole seconds.
Entry EntryFromAttrs(std::string name, const sftp::Attrs& attrs);

// Accumulates READDIR batches into a Listing. "." and ".." are dropped
// silently; any other name that is not a safe single component ("", "a/b",
// "../x", a NUL byte) is dropped and counted in listing.unsafe_names.
class ListingBuilder {
 public:
  ListingBuilder() { listing_.exists = true; }
  void Add(std::vector<sftp::NameEntry> names);
  // Indexes into listing().entries of symlinks, whose targets need a READLINK.
  const std::vector<size_t>& symlinks() const { return symlinks_; }
  Listing& listing() { return listing_; }

 private:
  Listing listing_;
  std::vector<size_t> symlinks_;
};

// Whole seconds for SFTP v3's uint32 times: floor(ns / 1e9), clamped to 0..2^32-1.
uint32_t SecondsForSftp(int64_t ns);

}  // namespace ferry::transport::sftp_internal

#endif  // FERRY_TRANSPORT_SFTP_LISTING_H_
