#!/usr/bin/env bash
# Runs the push_coroutine example: a normal run, then one cancelled at once.
set -euo pipefail
bin="$1"
root="${TEST_TMPDIR:-$(mktemp -d)}"
mkdir -p "$root/src/d"
for i in $(seq 1 50); do echo "file $i" > "$root/src/d/f$i"; done
"$bin" "$root/src" "$root/dst" 60 > "$root/out"
grep -q "^done: 50 sent" "$root/out"
grep -q "^progress: 50/50 files" "$root/out"
diff -r "$root/src" "$root/dst"
# A zero deadline cancels before anything is sent; nothing partial remains.
head -c 50000000 /dev/zero > "$root/src/big"
rc=0
"$bin" "$root/src" "$root/dst2" 0 > "$root/out2" || rc=$?
[ "$rc" -eq 130 ]
if find "$root/dst2" -name '.ferry-tmp-*' | grep -q .; then exit 1; fi
if [ -e "$root/dst2/big" ]; then cmp "$root/src/big" "$root/dst2/big"; fi
echo "push_coroutine example: ok"
