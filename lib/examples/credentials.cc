// Snippet for docs/EMBEDDING.md: credentials from the embedding program.
#include <optional>
#include <string>

#include "ferry/push.h"

// Stands in for wherever your program keeps secrets.
std::optional<std::string> ReadSecretFromMyVault(const std::string& prompt) { return std::nullopt; }

void ConfigureCredentials(ferry::PushOptions& options) {
  options.ssh.host_key_callback = [](const ferry::HostKeyQuestion& q) {
    // Asked only for an unknown or a changed key (q.changed); revoked keys are
    // refused without asking. Accepting a changed key defeats MITM protection.
    return q.changed ? ferry::HostKeyDecision::kReject : ferry::HostKeyDecision::kAcceptAndSave;
  };
  options.ssh.passphrase_callback = [](const std::string& prompt) {
    return ReadSecretFromMyVault(prompt);
  };
}
