"""Compiler flags for ferry's own code, in one place (warnings are errors here only)."""

FERRY_COPTS = [
    "-std=c++20",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
]

# Tests use gtest macros that trip -Wextra in places; keep the rest.
FERRY_TEST_COPTS = FERRY_COPTS + ["-Wno-sign-compare"]
