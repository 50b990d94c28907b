// libFuzzer entry point for the SFTP decoder (target //lib/sftp:codec_fuzz).
//
// Input: one byte that sets how the rest is fed to the PacketFramer (chunk
// size 1..256: the byte + 1), then the byte stream a hostile server would send.
// Every complete packet is parsed as VERSION and as a reply; EXTENDED_REPLY
// payloads also as statvfs and limits replies.
//
// Besides "does not crash, leak or allocate wildly", it traps when an
// invariant breaks: every error is errc::kProtocol; the framer never returns
// more bytes than it was given nor a packet above kMaxPacketLength; a parsed
// NAME never holds more entries than its packet could carry; a parsed reply
// interpreted by the Expect* helpers gives either a value or an error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ferry/error.h"
#include "lib/sftp/codec.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckError(const ferry::Error& error) { Check(error.code == ferry::errc::kProtocol); }

void Interpret(const ferry::sftp::Reply& reply) {
  using namespace ferry::sftp;
  // None of these may crash, whatever the reply; errors are sftp or ferry codes.
  (void)ExpectOk(reply, "fuzz");
  (void)ExpectHandle(reply, "fuzz");
  (void)ExpectAttrs(reply, "fuzz");
  (void)ExpectData(reply, "fuzz");
  (void)ExpectNames(reply, "fuzz");
  (void)ExpectOneName(reply, "fuzz");
  auto payload = ExpectExtendedReply(reply, "fuzz");
  if (payload.ok()) {
    auto statvfs = ParseStatVfs(*payload);
    if (!statvfs.ok()) CheckError(statvfs.error());
    auto limits = ParseLimits(*payload);
    if (!limits.ok()) CheckError(limits.error());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = size_t{data[0]} + 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  ferry::sftp::PacketFramer framer;
  size_t fed = 0, returned = 0;
  bool broken = false;
  while (!broken && fed < stream.size()) {
    std::string_view piece = stream.substr(fed, chunk);
    framer.Append(piece);
    fed += piece.size();
    for (;;) {
      auto packet = framer.Next();
      if (!packet.ok()) {
        CheckError(packet.error());
        broken = true;  // a client gives up on the stream here
        break;
      }
      if (!*packet) break;
      const std::string& body = **packet;
      Check(!body.empty() && body.size() <= ferry::sftp::kMaxPacketLength);
      returned += body.size() + 4;
      Check(returned <= fed);

      auto version = ferry::sftp::ParseVersion(body);
      if (!version.ok()) CheckError(version.error());
      auto reply = ferry::sftp::ParseReply(body);
      if (!reply.ok()) {
        CheckError(reply.error());
        continue;
      }
      Check(reply->names.size() <= body.size() / 12);
      Interpret(*reply);
    }
  }
  if (!broken) Check(returned + framer.buffered() == fed);
  return 0;
}
