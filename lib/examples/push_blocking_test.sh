#!/usr/bin/env bash
# Runs the push_blocking example on a real tree and checks the copy.
set -euo pipefail
bin="$1"
root="${TEST_TMPDIR:-$(mktemp -d)}"
mkdir -p "$root/src/a/b"
echo one > "$root/src/a/one.txt"
head -c 100000 /dev/urandom > "$root/src/a/b/blob"
"$bin" "$root/src" "$root/dst" > "$root/out1"
grep -q "^2 sent, 0 unchanged" "$root/out1"
diff -r "$root/src" "$root/dst"
"$bin" "$root/src" "$root/dst" > "$root/out2"
grep -q "^0 sent, 2 unchanged" "$root/out2"
if "$bin" "$root/missing" "$root/dst" 2> "$root/err"; then exit 1; fi
grep -q "source does not exist" "$root/err"
echo "push_blocking example: ok"
