#!/usr/bin/env bash
# Runs the watch_progress example: a file created during the watch arrives.
set -euo pipefail
bin="$1"
root="${TEST_TMPDIR:-$(mktemp -d)}"
mkdir -p "$root/src"
echo before > "$root/src/before.txt"
"$bin" "$root/src" "$root/dst" 20 > "$root/out" &
pid=$!
for _ in $(seq 1 100); do [ -f "$root/dst/before.txt" ] && break; sleep 0.05; done
echo during > "$root/src/during.txt"
for _ in $(seq 1 100); do [ -f "$root/dst/during.txt" ] && break; sleep 0.05; done
kill -TERM "$pid"
wait "$pid"
diff -r "$root/src" "$root/dst"
grep -q "^initial sync: 1 files" "$root/out"
grep -q "^batch: 1 files" "$root/out"
echo "watch_progress example: ok"
