// Host key helpers shared by known_hosts checking and error messages: base64 as
// OpenSSH writes it, and OpenSSH's "SHA256:..." fingerprints. Pure functions.
#ifndef FERRY_SSH_HOST_KEY_H_
#define FERRY_SSH_HOST_KEY_H_

#include <optional>
#include <string>
#include <string_view>

namespace ferry::ssh {

// Standard base64 (RFC 4648 alphabet), with '=' padding unless `pad` is false.
std::string Base64Encode(std::string_view bytes, bool pad = true);

// Decodes standard base64; padding is optional. nullopt on any invalid character.
std::optional<std::string> Base64Decode(std::string_view text);

// OpenSSH's fingerprint of a public key blob: "SHA256:" + unpadded base64 of the
// SHA-256 of the blob (what `ssh-keygen -lf` prints).
std::string Sha256Fingerprint(std::string_view key_blob);

// The key type named inside an SSH public key blob (its first length-prefixed
// string, e.g. "ssh-ed25519"); empty if the blob is malformed.
std::string KeyTypeOfBlob(std::string_view key_blob);

}  // namespace ferry::ssh

#endif  // FERRY_SSH_HOST_KEY_H_
