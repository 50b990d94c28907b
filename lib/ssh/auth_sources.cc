#include "lib/ssh/auth_sources.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>

#include "ferry/error.h"
#include "lib/base/small_file.h"
#include "lib/ssh/host_key.h"
#include "lib/ssh/ssh_config.h"

namespace ferry::ssh {
namespace {

constexpr size_t kMaxKeyFileSize = 1 << 20;

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::optional<std::string> GetEnvOptional(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::string ExpandHome(const std::string& path, const std::string& home) {
  if (home.empty()) return path;
  if (path == "~") return home;
  if (path.starts_with("~/")) return home + path.substr(1);
  return path;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::string> ReadSmall(const std::string& path) {
  return ReadSmallFile(path, kMaxKeyFileSize, SpecialFiles::kReject);
}

bool ReadU32(std::string_view& in, uint32_t& v) {
  if (in.size() < 4) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  in.remove_prefix(4);
  return true;
}

bool ReadString(std::string_view& in, std::string_view& s) {
  uint32_t n = 0;
  if (!ReadU32(in, n) || n > in.size()) return false;
  s = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

// openssh-key-v1 (PROTOCOL.key): "openssh-key-v1\0", string ciphername, string
// kdfname, string kdfoptions, uint32 number of keys, string public key, ...
// The header and public key are in the clear even when the private part is not.
void InspectOpensshKey(std::string_view pem, KeyFileInfo& info) {
  constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
  const size_t begin = pem.find(kBegin);
  const size_t end = pem.find(kEnd);
  if (begin == std::string_view::npos || end == std::string_view::npos || end < begin) return;
  std::string body;
  for (char c : pem.substr(begin + kBegin.size(), end - begin - kBegin.size())) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') body += c;
  }
  const auto blob = Base64Decode(body);
  constexpr std::string_view kMagic("openssh-key-v1\0", 15);
  if (!blob || !std::string_view(*blob).starts_with(kMagic)) return;
  std::string_view in(*blob);
  in.remove_prefix(kMagic.size());
  std::string_view cipher, kdf, kdf_options, public_key;
  uint32_t keys = 0;
  if (!ReadString(in, cipher) || !ReadString(in, kdf)) return;
  info.encrypted = cipher != "none" || kdf != "none";  // "aes256-ctr" + "bcrypt"
  if (!ReadString(in, kdf_options) || !ReadU32(in, keys) || keys < 1 ||
      !ReadString(in, public_key)) {
    return;
  }
  if (info.type.empty()) info.type = KeyTypeOfBlob(public_key);
}

}  // namespace

Environment Environment::FromProcess() {
  Environment env;
  env.home_dir = GetEnv("HOME");
  env.user = GetEnv("USER");
  if (env.user.empty()) env.user = GetEnv("LOGNAME");
  if (env.home_dir.empty() || env.user.empty()) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::string buf(16384, '\0');
    if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found) {
      if (env.home_dir.empty() && pw.pw_dir) env.home_dir = pw.pw_dir;
      if (env.user.empty() && pw.pw_name) env.user = pw.pw_name;
    }
  }
  env.ssh_auth_sock = GetEnv("SSH_AUTH_SOCK");
  env.password = GetEnvOptional("FERRY_PASSWORD");
  env.passphrase = GetEnvOptional("FERRY_PASSPHRASE");
  return env;
}

Result<KeyFileInfo> InspectKeyFile(const std::string& private_key) {
  auto text = ReadSmall(private_key);
  if (!text) return text.error();
  KeyFileInfo info;
  if (auto pub = ReadSmall(private_key + ".pub"); pub.ok()) {
    const std::string& p = *pub;
    const size_t start = p.find_first_not_of(" \t\r\n");
    if (start != std::string::npos) {
      info.type = p.substr(start, p.find_first_of(" \t\r\n", start) - start);
    }
  }
  const std::string_view pem = *text;
  if (pem.find("-----BEGIN OPENSSH PRIVATE KEY-----") != std::string_view::npos) {
    InspectOpensshKey(pem, info);
    return info;
  }
  // PEM: "Proc-Type: 4,ENCRYPTED" (traditional) or "BEGIN ENCRYPTED PRIVATE KEY" (PKCS#8).
  info.encrypted = pem.find("ENCRYPTED") != std::string_view::npos;
  if (info.type.empty()) {
    if (pem.find("BEGIN RSA PRIVATE KEY") != std::string_view::npos) info.type = "ssh-rsa";
    if (pem.find("BEGIN EC PRIVATE KEY") != std::string_view::npos) info.type = "ecdsa";
    if (pem.find("BEGIN DSA PRIVATE KEY") != std::string_view::npos) info.type = "ssh-dss";
  }
  return info;
}

Result<ConnectSetup> BuildConnectOptions(const transport::DestinationSpec& spec,
                                         const SshOptions& opts, const Environment& env) {
  if (spec.kind != transport::DestinationSpec::Kind::kSftp || spec.host.empty()) {
    return Error{make_error_code(errc::kInvalidArgument), "not an SSH destination"};
  }
  ConnectSetup setup;
  ConnectOptions& o = setup.options;
  const std::string& home = env.home_dir;

  // ssh config. A missing ~/.ssh/config is normal; a missing -F file is not.
  HostConfig hc;
  if (opts.config_file != "none") {
    const bool explicit_file = !opts.config_file.empty();
    const std::string path = explicit_file  ? ExpandHome(opts.config_file, home)
                             : home.empty() ? std::string()
                                            : home + "/.ssh/config";
    if (!path.empty()) {
      auto config = LoadSshConfig(path, home);
      if (config.ok()) {
        for (std::string& w : config->warnings) setup.warnings.push_back(std::move(w));
        ResolveContext context{home, env.user, spec.user, spec.port};
        hc = Resolve(*config, spec.host, context);
      } else if (explicit_file || config.code().category() == ferry_category()) {
        return config.error();  // malformed (file:line in the detail), or -F unreadable
      } else if (config.code() != std::errc::no_such_file_or_directory &&
                 config.code() != std::errc::not_a_directory) {
        setup.warnings.push_back("ignoring ssh config: " + config.error().Message());
      }
    }
  }

  o.host = !hc.hostname.empty() ? hc.hostname : spec.host;
  o.port = spec.port ? spec.port : hc.port ? hc.port : 22;
  o.user = !spec.user.empty() ? spec.user : !hc.user.empty() ? hc.user : env.user;
  if (o.user.empty()) {
    return Error{make_error_code(errc::kInvalidArgument),
                 "no user name for " + spec.host + ": give user@" + spec.host + " or set $USER"};
  }

  if (!opts.known_hosts.empty()) {
    o.known_hosts_path = ExpandHome(opts.known_hosts, home);
  } else if (!hc.known_hosts.empty()) {
    o.known_hosts_path = hc.known_hosts;
  } else if (!home.empty()) {
    o.known_hosts_path = home + "/.ssh/known_hosts";
  } else {
    return Error{make_error_code(errc::kInvalidArgument),
                 "no known_hosts file: $HOME is unset and none was given"};
  }

  // ferry never connects to a host whose key CHANGED (Session refuses a mismatch
  // with kHostKeyMismatch under every policy), so "StrictHostKeyChecking no/off"
  // cannot mean what it means to ssh; the nearest safe reading is accept-new:
  // record unknown hosts, refuse changed keys. "ask" is strict: there is no prompt.
  const auto& strict = hc.strict_host_key_checking;
  const bool config_accepts_new = strict && (*strict == "accept-new" || *strict == "no" ||
                                             *strict == "off" || *strict == "false");
  o.host_key_policy = opts.accept_new_host_key || config_accepts_new ? HostKeyPolicy::kAcceptNew
                                                                     : HostKeyPolicy::kStrict;

  // SshOptions::connect_timeout always holds a value; only a changed one counts as
  // explicit.
  o.connect_timeout = opts.connect_timeout;
  if (opts.connect_timeout == SshOptions{}.connect_timeout && hc.connect_timeout_s &&
      *hc.connect_timeout_s > 0) {
    o.connect_timeout = std::chrono::seconds(*hc.connect_timeout_s);
  }

  // The embedder's callbacks override $FERRY_PASSWORD. Each answer is remembered
  // for the later connections of this push (the SFTP pool opens several, a watch
  // reconnects), so that a person is asked once, not once per connection.
  if (opts.password_callback) {
    struct PasswordMemo {
      std::mutex mu;
      bool asked = false;
      std::optional<std::string> answer;
    };
    auto memo = std::make_shared<PasswordMemo>();
    o.password_callback = [memo, callback = opts.password_callback](const std::string& prompt) {
      std::lock_guard lock(memo->mu);
      if (!memo->asked) {
        memo->answer = callback(prompt);
        memo->asked = true;
      }
      return memo->answer;
    };
  } else {
    o.password = env.password;
  }
  if (opts.host_key_callback) {
    struct HostKeyMemo {
      std::mutex mu;
      // (host, port, fingerprint, changed) -> the decision taken.
      std::map<std::tuple<std::string, uint16_t, std::string, bool>, HostKeyDecision> decisions;
    };
    auto memo = std::make_shared<HostKeyMemo>();
    o.host_key_callback = [memo, callback = opts.host_key_callback](const HostKeyQuestion& q) {
      std::lock_guard lock(memo->mu);
      auto key = std::make_tuple(q.host, q.port, q.fingerprint, q.changed);
      auto it = memo->decisions.find(key);
      if (it != memo->decisions.end()) return it->second;
      const HostKeyDecision decision = callback(q);
      memo->decisions.emplace(std::move(key), decision);
      return decision;
    };
  }

  // Identities. Explicit ones must exist; config and default ones are used if they
  // do (as ssh does). Config IdentityFile lines replace the defaults.
  enum class Source { kFlag, kConfig, kDefault };
  Source source = Source::kDefault;
  std::vector<std::string> candidates;
  if (!opts.identity_files.empty()) {
    source = Source::kFlag;
    for (const std::string& f : opts.identity_files) candidates.push_back(ExpandHome(f, home));
  } else if (!hc.identity_files.empty()) {
    source = Source::kConfig;
    candidates = hc.identity_files;
  } else if (!home.empty()) {
    candidates = {home + "/.ssh/id_ed25519", home + "/.ssh/id_ecdsa"};
  }

  struct Chosen {
    std::string path;
    KeyFileInfo info;
  };
  std::vector<Chosen> chosen;
  for (const std::string& path : candidates) {
    if (source != Source::kFlag && !Exists(path)) continue;
    auto info = InspectKeyFile(path);
    if (!info) {
      if (source == Source::kFlag) {
        return Error{info.code(), "identity file " + info.error().detail};
      }
      setup.warnings.push_back("skipping identity " + info.error().Message());
      continue;
    }
    if (info->type == "ssh-rsa") {
      setup.warnings.push_back(
          "identity " + path +
          " is an RSA key: libssh2 1.10 signs with ssh-rsa (SHA-1), which OpenSSH 8.8 and "
          "later refuse by default; use an ed25519 key (ssh-keygen -t ed25519)");
    }
    chosen.push_back({path, *info});
  }

  // One passphrase for every encrypted key (ConnectOptions holds one): from the
  // environment, else asked once, naming the first encrypted key.
  std::optional<std::string> passphrase;
  for (const Chosen& c : chosen) {
    if (!c.info.encrypted) continue;
    if (opts.passphrase_callback) {  // the embedder's, over $FERRY_PASSPHRASE
      try {
        passphrase = opts.passphrase_callback("Enter passphrase for key '" + c.path + "': ");
      } catch (...) {
        passphrase.reset();  // the contract says it must not throw
      }
      if (passphrase && passphrase->empty()) passphrase.reset();
    } else if (env.passphrase) {
      passphrase = env.passphrase;
    } else if (env.prompt_passphrase) {
      passphrase = env.prompt_passphrase("Enter passphrase for key '" + c.path + "': ");
      if (passphrase && passphrase->empty()) passphrase.reset();  // as ssh: empty = skip
    }
    break;
  }
  for (const Chosen& c : chosen) {
    if (c.info.encrypted && !passphrase) {
      if (source == Source::kFlag) {
        return Error{make_error_code(errc::kAuthFailed),
                     "identity file " + c.path +
                         " is encrypted and no passphrase was given ($FERRY_PASSPHRASE)"};
      }
      setup.warnings.push_back("skipping encrypted identity " + c.path +
                               ": no passphrase ($FERRY_PASSPHRASE unset, nothing entered)");
      continue;
    }
    o.identities.push_back(Identity{c.path, {}});
  }
  o.passphrase = passphrase;

  const bool password_possible = o.password.has_value() || o.password_callback != nullptr;
  if (o.identities.empty()) {
    if (!opts.use_agent && !password_possible) {
      setup.warnings.push_back("no usable identity file and the ssh-agent is disabled");
    } else if (opts.use_agent && env.ssh_auth_sock.empty() && !password_possible) {
      setup.warnings.push_back(
          source == Source::kDefault
              ? "no identity file (looked for ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa) and no "
                "ssh-agent ($SSH_AUTH_SOCK unset)"
              : "no usable identity file and no ssh-agent ($SSH_AUTH_SOCK unset)");
    }
  }
  return setup;
}

}  // namespace ferry::ssh
