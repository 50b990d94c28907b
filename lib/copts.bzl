"""Compiler flags for ferry's own code, in one place (warnings are errors here only)."""

FERRY_COPTS = [
    "-std=c++20",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    # g++ 12 at -O1 (the sanitizer configs) flags Asio's coroutine frame
    # allocation as mismatched new/delete: a false positive.
    "-Wno-mismatched-new-delete",
]

# Tests use gtest macros that trip -Wextra in places; keep the rest.
FERRY_TEST_COPTS = FERRY_COPTS + ["-Wno-sign-compare"]
