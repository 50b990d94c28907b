// The SFTP destination's class, shared by its translation units (private to
// //lib/transport/sftp): sftp_destination.cc (open, directories, rename, remove),
// file_sink.cc (CreateFile and the sink), read_ops.cc (ReadHead, ReadAll).
#ifndef FERRY_TRANSPORT_SFTP_DESTINATION_IMPL_H_
#define FERRY_TRANSPORT_SFTP_DESTINATION_IMPL_H_

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/sftp/client.h"
#include "lib/transport/destination.h"
#include "lib/transport/sftp/connection_pool.h"
#include "lib/transport/sftp/sftp_destination.h"

namespace asio {
class thread_pool;
}

namespace ferry::transport::sftp_internal {

// Attempts of idempotent operations when the connection drops under them.
inline constexpr int kAttemptsOnConnectionLoss = 3;

// kTempPrefix + 16 random hex digits.
std::string TempName();

// `error` with "display: " in front of its detail (the destination-side path).
Error WithPath(const Error& error, std::string_view display);

// What one channel gets of a file split over channels before the next one's turn.
inline constexpr size_t kLaneUnitBytes = size_t{1} << 20;
// Files in flight over a slow link when the user did not choose (see
// SftpDestination::SuggestedJobs).
inline constexpr int kSlowLinkJobs = 256;

class SftpDestination final : public Destination {
 public:
  SftpDestination(SftpConfig config, asio::any_io_executor ex, asio::thread_pool& pool);
  ~SftpDestination() override;

  std::string Describe() const override { return display_; }
  int64_t MtimeGranularityNs() const override { return 1'000'000'000; }
  asio::awaitable<Status> Open(bool dry_run) override;
  asio::awaitable<Result<Listing>> List(std::string dir) override;
  asio::awaitable<Result<std::optional<int64_t>>> DirMtime(std::string dir) override;
  asio::awaitable<Status> MakeDir(std::string path, uint32_t mode) override;
  asio::awaitable<Status> SetDirMode(std::string path, uint32_t mode) override;
  asio::awaitable<Result<std::unique_ptr<FileSink>>> CreateFile(std::string path) override;
  asio::awaitable<Status> Symlink(std::string path, std::string target) override;
  asio::awaitable<Status> Remove(std::string path, EntryType type) override;
  asio::awaitable<Status> Rename(std::string from, std::string to) override;
  asio::awaitable<Result<std::vector<std::byte>>> ReadHead(std::string path,
                                                           size_t max_bytes) override;
  asio::awaitable<Status> ReadAll(std::string path, ChunkFn chunk_fn) override;
  asio::awaitable<Status> Close() override;
  bool SupportsResume() const override { return true; }
  int SuggestedJobs() const override;
  asio::awaitable<Result<PartSink>> OpenPart(std::string path, std::string part_name) override;
  asio::awaitable<Result<std::vector<std::byte>>> ReadRange(std::string path, uint64_t offset,
                                                            size_t max_bytes) override;
  std::vector<std::string> TakeNotes() override;

  // ---- for the sink and the readers -------------------------------------------
  const SftpConfig& config() const { return config_; }
  ConnectionPool& pool() { return pool_; }
  // The absolute remote path of a (checked) relative path.
  std::string Abs(std::string_view rel) const;
  // For messages: the URL-ish name of a relative path.
  std::string Display(std::string_view rel) const;
  uint32_t WriteLength(const sftp::Client& client) const;
  // Bytes below the end of an interrupted part file that may hold holes: a
  // part file is written over up to max_channels_per_file channels, in turns
  // of kLaneUnitBytes, and each channel has at most
  // outstanding_bytes_per_channel unanswered (its WRITEs land in order), so
  // everything further down was written.
  uint64_t ResumeSlack() const;
  // Renames `from` over `to` (absolute paths): posix-rename, or remove + rename
  // (noted once) when the server lacks it or the config turns it off.
  asio::awaitable<Status> Replace(sftp::Client& client, std::string from, std::string to,
                                  std::string display);
  void AddNoteOnce(const std::string& note);
  // Best effort: removes an absolute path (a temp file or symlink of ours),
  // preferring `client` and moving to another channel (reconnecting if need
  // be) when the connection is lost. Errors are ignored; when the server
  // cannot be reached the path is kept for RemoveOrphans.
  asio::awaitable<void> RemoveQuietly(std::string abs, sftp::Client* client);
  // Removes what RemoveQuietly could not reach (pipelined, on `client`); what
  // the connection loses again stays for the next call. Called before each new
  // file and at Close(): a watch may never list those directories again, so
  // the next run's clean-up of leftover temps would not happen.
  asio::awaitable<void> RemoveOrphans(sftp::Client& client);

 private:
  asio::awaitable<Status> OpenOnce(bool dry_run);
  asio::awaitable<Result<Listing>> ListOnce(const std::string& dir);
  asio::awaitable<Status> MakeDirOnce(const std::string& path, uint32_t mode);
  asio::awaitable<Status> SetDirModeOnce(const std::string& path, uint32_t mode);
  asio::awaitable<Status> SymlinkOnce(const std::string& path, const std::string& target);
  asio::awaitable<Status> RemoveOnce(const std::string& path, EntryType type);
  asio::awaitable<Result<std::vector<std::byte>>> ReadHeadOnce(const std::string& path,
                                                               uint64_t offset, size_t max_bytes);
  asio::awaitable<Status> ReadAllOnce(const std::string& path, const ChunkFn& chunk_fn,
                                      bool& delivered);
  // Lists an absolute directory path with lstat attributes (no symlink check).
  asio::awaitable<Result<Listing>> ListAbs(sftp::Client& client, const std::string& abs,
                                           bool read_links);
  // rm -rf of an absolute path that lstat said is a directory.
  asio::awaitable<Status> RemoveTree(sftp::Client& client, const std::string& abs,
                                     const std::string& display, int depth);

  SftpConfig config_;
  asio::any_io_executor ex_;
  asio::thread_pool& thread_pool_;
  ConnectionPool pool_;
  std::string display_;
  std::string root_abs_;      // canonical remote root, known after Open()
  bool root_exists_ = false;  // false only in a dry run whose root is missing
  bool opened_ = false;
  std::vector<std::string> notes_;
  std::vector<std::string> orphans_;  // absolute paths, see RemoveOrphans
};

}  // namespace ferry::transport::sftp_internal

#endif  // FERRY_TRANSPORT_SFTP_DESTINATION_IMPL_H_
