// libFuzzer entry point for destination parsing (tools/fuzz builds it with clang).
// Besides "no crash": a parsed sftp destination has a host and no control
// characters, and a rejected one is errc::kInvalidArgument.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ferry/error.h"
#include "lib/transport/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = ferry::transport::ParseDestination(text);
  if (!spec.ok()) {
    if (spec.code() != ferry::errc::kInvalidArgument) __builtin_trap();
    return 0;
  }
  if (spec->kind == ferry::transport::DestinationSpec::Kind::kSftp && spec->host.empty()) {
    __builtin_trap();
  }
  for (char c : spec->host) {
    if (static_cast<unsigned char>(c) < 0x20) __builtin_trap();
  }
  (void)spec->ToString();
  return 0;
}
