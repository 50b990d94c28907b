// Reading a whole small file (a key, a config) into memory, with a size cap and
// errors that say what was wrong with the path; and writing all of a buffer.
#ifndef FERRY_BASE_SMALL_FILE_H_
#define FERRY_BASE_SMALL_FILE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "lib/base/result.h"

namespace ferry {

// What ReadSmallFile does with a path that is neither a regular file nor a
// directory.
enum class SpecialFiles {
  kReject,            // anything but a regular file is invalid_argument
  kAllowCharDevices,  // character devices are read (`-F /dev/null` is an idiom);
                      // FIFOs are still invalid_argument
};

// Reads all of `path`. Errors, each with `path` as the detail:
//  - the open/stat/read errno (no_such_file_or_directory, permission_denied, ...);
//  - is_a_directory for a directory;
//  - invalid_argument for a FIFO (a read could block forever) and, with
//    SpecialFiles::kReject, for any other non-regular file (open(2) itself refuses
//    a socket with no_such_device_or_address);
//  - file_too_large when the file holds more than `max_size` bytes, whether stat
//    says so up front or the file grows while it is read.
// The file is opened non-blocking, so a FIFO never hangs the open. Blocking disk
// I/O: call it off the io_context (see offload.h). Thread-safe.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_size,
                                  SpecialFiles special = SpecialFiles::kReject);

// Writes all of `data` to `fd`, retrying short writes and EINTR. Errors: the
// write(2) errno with "write <name>" as the detail.
Status WriteAll(int fd, std::string_view data, const std::string& name);

}  // namespace ferry

#endif  // FERRY_BASE_SMALL_FILE_H_
