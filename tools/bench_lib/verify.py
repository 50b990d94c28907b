"""Is the destination a byte-identical copy of the source? (content + relative paths)"""
import os
import stat
import subprocess

CHUNK = 1 << 20


def manifest(root):
    """relpath -> ('d',) | ('f', size) | ('l', target), for everything below root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("d",)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("f", st.st_size)
            else:
                out[rel] = ("special",)
    return out


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(CHUNK)
            y = fb.read(CHUNK)
            if x != y:
                return False
            if not x:
                return True


def _describe(diff):
    return ", ".join(diff[:3]) + (" (+%d more)" % (len(diff) - 3) if len(diff) > 3 else "")


def verify_tree(src, dest, compressed=False, src_manifest=None):
    """Returns None when dest matches src, else a short reason.

    compressed: ferry --compress stores regular files as NAME.zst; those are
    decompressed (zstd -dc) and compared with the source file.
    """
    if not os.path.isdir(dest):
        return "destination missing"
    want = src_manifest if src_manifest is not None else manifest(src)
    have = manifest(dest)
    if compressed:
        want = {(k + ".zst" if v[0] == "f" else k): v for k, v in want.items()}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if missing:
        return "missing: " + _describe(missing)
    if extra:
        return "unexpected: " + _describe(extra)
    for rel, kind in want.items():
        got = have[rel]
        if kind[0] != got[0]:
            return "type differs: " + rel
        if kind[0] == "l" and kind != got:
            return "symlink target differs: " + rel
        if kind[0] != "f":
            continue
        d = os.path.join(dest, rel)
        if compressed:
            s = os.path.join(src, rel[: -len(".zst")])
            r = subprocess.run(["zstd", "-dcq", d], stdout=subprocess.PIPE, check=False)
            with open(s, "rb") as f:
                if r.returncode != 0 or r.stdout != f.read():
                    return "content differs: " + rel
            continue
        if kind != got:
            return "size differs: %s (%d != %d)" % (rel, got[1], kind[1])
        if not same_bytes(os.path.join(src, rel), d):
            return "content differs: " + rel
    return None
