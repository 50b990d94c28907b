// libFuzzer entry point for the ssh_config parser (target //lib/ssh:ssh_config_fuzz).
//
// Input: the first line is the host alias to resolve; the rest is the text of a
// config file (named "fuzz" in messages). So "web\nHost web\n  Port 2222\n"
// resolves "web" against a one-block config.
//
// Besides "does not crash or hang", it checks invariants and traps if one breaks:
// a rejected config is errc::kInvalidArgument with a "fuzz:LINE: " detail; every
// kept entry has a lower-case keyword and at least one argument; `*` matches every
// alias and `!*` none; Resolve() is deterministic and never returns more identity
// files than there are entries; and when the config parses, prepending a
// "Host *" + "Port 1" block still parses and resolves every alias to port 1
// (the first value obtained wins).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/error.h"
#include "lib/ssh/ssh_config.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool SameConfig(const ferry::ssh::HostConfig& a, const ferry::ssh::HostConfig& b) {
  return a.hostname == b.hostname && a.user == b.user && a.port == b.port &&
         a.identity_files == b.identity_files && a.known_hosts == b.known_hosts &&
         a.strict_host_key_checking == b.strict_host_key_checking &&
         a.identities_only == b.identities_only && a.connect_timeout_s == b.connect_timeout_s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::ssh;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const std::string_view alias = input.substr(0, nl);
  const std::string_view text =
      nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);

  Check(HostPatternsMatch({"*"}, alias));
  Check(!HostPatternsMatch({"!*"}, alias));
  Check(!HostPatternsMatch({"*", "!*"}, alias));

  auto config = ParseSshConfig(text, "fuzz");
  if (!config) {
    Check(config.code() == ferry::errc::kInvalidArgument);
    Check(config.error().detail.starts_with("fuzz:"));
    return 0;
  }
  for (const SshConfigEntry& e : config->entries) {
    Check(!e.args.empty());
    Check(e.origin.starts_with("fuzz:"));
    for (char c : e.keyword) Check(!std::isupper(static_cast<unsigned char>(c)));
  }

  const ResolveContext context{"/home/u", "u", "", 0};
  const HostConfig a = Resolve(*config, alias, context);
  const HostConfig b = Resolve(*config, alias, context);
  Check(SameConfig(a, b));
  Check(a.identity_files.size() <= config->entries.size());
  if (a.connect_timeout_s) Check(*a.connect_timeout_s >= 0);

  // First value wins: a leading catch-all block decides the port for every alias.
  auto pinned = ParseSshConfig("Host *\nPort 1\n" + std::string(text), "fuzz");
  Check(pinned.ok());
  Check(Resolve(*pinned, alias, context).port == 1);
  return 0;
}
