// Relative paths inside a transfer: '/'-separated, no leading '/', "" is the root.
// Every name that reaches a destination passes IsSafeName, so a hostile listing or
// a crafted file name can never address anything outside the destination root.
#ifndef FERRY_BASE_PATH_H_
#define FERRY_BASE_PATH_H_

#include <string>
#include <string_view>

namespace ferry {

// True for a single usable path component: not empty, not "." or "..", and
// without '/' or NUL.
bool IsSafeName(std::string_view name);

// True when every component of `rel` is a safe name ("" is the root and safe).
bool IsSafeRelPath(std::string_view rel);

// "a/b" + "c" -> "a/b/c"; "" + "c" -> "c".
std::string JoinRel(std::string_view dir, std::string_view name);

// "a/b/c" -> "a/b"; "c" -> "".
std::string_view ParentOf(std::string_view rel);

// "a/b/c" -> "c".
std::string_view BaseName(std::string_view rel);

// Names ferry gives its temporary files; listings hide them and runs clean them up.
inline constexpr std::string_view kTempPrefix = ".ferry-tmp-";
bool IsTempName(std::string_view name);

// For messages: control characters and invalid bytes shown as \xNN so a file name
// with a newline cannot forge a line of output.
std::string Printable(std::string_view name);

}  // namespace ferry

#endif  // FERRY_BASE_PATH_H_
