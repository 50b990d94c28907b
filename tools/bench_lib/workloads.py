"""Deterministic workloads: generated once per run into the scratch directory.

Every byte and every mtime comes from fixed seeds, so two runs of the suite on any
machine see the same trees.
"""
import os
import random
import shutil
import subprocess

# Fixed mtime base (2024-01-01T00:00:00Z) so size+mtime checks behave the same everywhere.
MTIME_BASE = 1704067200

# name -> (full size, smoke size)
SIZES = {
    "small": dict(files=20000, dirs=300, smoke_files=200, smoke_dirs=10),
    "logs": dict(count=64, size=8 << 20, smoke_count=4, smoke_size=256 << 10),
    "big": dict(size=1 << 30, smoke_size=8 << 20),
}

LOG_LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
LOG_COMPONENTS = ["api", "db", "cache", "auth", "worker", "scheduler", "sync", "http"]
LOG_MESSAGES = [
    "request completed", "cache miss for key", "retrying after timeout", "connection reset by peer",
    "user logged in", "flushing batch", "slow query detected", "GC pause", "rotating file",
    "health check ok", "scheduled job started", "scheduled job finished", "upstream returned 503",
]
PATHS = ["/api/v1/items", "/api/v1/users", "/healthz", "/api/v2/search", "/static/app.js", "/login"]


class Workload:
    """A source tree (and, for update, the tree the destination starts from)."""

    def __init__(self, name, src, files, nbytes, base=None, description=""):
        self.name = name
        self.src = src          # what the tool pushes
        self.base = base        # the destination is pre-populated with a copy of this (None: empty)
        self.files = files
        self.bytes = nbytes
        self.description = description

    def to_json(self):
        return dict(name=self.name, files=self.files, bytes=self.bytes,
                    description=self.description, prepopulated=self.base is not None)


def _skewed_size(rng):
    # Log-uniform between 100 B and 64 KiB, squared toward the small end: many tiny
    # files, a tail of larger ones (median ~1.3 KiB, mean ~7 KiB).
    u = rng.random() ** 1.6
    return int(100 * (65536 / 100) ** u)


def _set_mtimes(root, offset=0):
    i = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            t = MTIME_BASE + offset + i
            os.utime(os.path.join(dirpath, f), (t, t), follow_symlinks=False)
            i += 1


def gen_small(root, nfiles, ndirs, seed=20240101, size_fn=_skewed_size):
    """nfiles files in ndirs directories two levels deep; returns (files, bytes)."""
    rng = random.Random(seed)
    os.makedirs(root)
    top = max(1, int(ndirs ** 0.5))
    dirs = []
    for d in range(ndirs):
        rel = os.path.join("d%03d" % (d % top), "s%03d" % d)
        os.makedirs(os.path.join(root, rel), exist_ok=True)
        dirs.append(rel)
    total = 0
    for i in range(nfiles):
        size = size_fn(rng)
        ext = (".c", ".h", ".txt", ".json", ".png", ".bin")[i % 6]
        path = os.path.join(root, dirs[i % ndirs], "f%06d%s" % (i, ext))
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        total += size
    _set_mtimes(root)
    return nfiles, total


def _log_text(rng, size, file_index):
    lines = []
    n = 0
    t = 0
    while n < size:
        t += rng.randint(1, 900)
        level = rng.choice(LOG_LEVELS)
        comp = rng.choice(LOG_COMPONENTS)
        line = ("2024-01-%02d %02d:%02d:%02d.%03d %-5s [%s-%d] %s path=%s status=%d bytes=%d ms=%d "
                "req=%08x\n" % (1 + file_index % 28, (t // 3600000) % 24, (t // 60000) % 60,
                                (t // 1000) % 60, t % 1000, level, comp, rng.randint(0, 15),
                                rng.choice(LOG_MESSAGES), rng.choice(PATHS),
                                rng.choice((200, 200, 200, 204, 301, 404, 500)),
                                rng.randint(0, 99999), rng.randint(0, 2000), rng.getrandbits(32)))
        lines.append(line)
        n += len(line)
    return "".join(lines).encode()[:size]


def gen_logs(root, count, size, seed=777):
    rng = random.Random(seed)
    os.makedirs(root)
    for i in range(count):
        with open(os.path.join(root, "app-%02d.log" % i), "wb") as f:
            f.write(_log_text(rng, size, i))
    _set_mtimes(root)
    return count, count * size


def gen_big(root, size, seed=1234):
    rng = random.Random(seed)
    os.makedirs(root)
    chunk = 8 << 20
    with open(os.path.join(root, "big.bin"), "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(rng.randbytes(n))
            left -= n
    _set_mtimes(root)
    return 1, size


def make_update(base, dest, fraction=0.01, seed=99):
    """dest: a copy of `base` (hard links) with `fraction` of the files rewritten
    (new content, new size for half of them, mtime + 1 day). Returns (changed, bytes_changed)."""
    subprocess.run(["cp", "-al", base, dest], check=True)
    files = []
    for dirpath, dirnames, filenames in os.walk(dest):
        dirnames.sort()
        files.extend(os.path.join(dirpath, f) for f in sorted(filenames))
    rng = random.Random(seed)
    picked = rng.sample(files, max(1, int(len(files) * fraction)))
    changed_bytes = 0
    for i, path in enumerate(picked):
        old = os.path.getsize(path)
        size = old if i % 2 == 0 else old + rng.randint(1, 512)
        st = os.stat(path)
        os.unlink(path)  # break the hard link: `base` keeps the old content
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        t = int(st.st_mtime) + 86400
        os.utime(path, (t, t))
        changed_bytes += size
    return len(picked), changed_bytes


def tree_stats(root):
    files = 0
    nbytes = 0
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                files += 1
                nbytes += os.path.getsize(p)
    return files, nbytes


class WorkloadSet:
    """Generates workloads lazily (once) under `root`."""

    def __init__(self, root, smoke, log):
        self.root = root
        self.smoke = smoke
        self.log = log
        self._cache = {}

    def get(self, name):
        if name not in self._cache:
            self._cache[name] = self._make(name)
        return self._cache[name]

    def _path(self, name):
        return os.path.join(self.root, name)

    def _make(self, name):
        s = self.smoke
        if name == "small":
            p = SIZES["small"]
            n, b = gen_small(self._path("small"), p["smoke_files" if s else "files"],
                             p["smoke_dirs" if s else "dirs"])
            self.log("generated small: %d files, %.1f MiB" % (n, b / 2**20))
            return Workload("small", self._path("small"), n, b,
                            description="%d small files (100 B..64 KiB, skewed), %d dirs"
                            % (n, p["smoke_dirs" if s else "dirs"]))
        if name == "logs":
            p = SIZES["logs"]
            n, b = gen_logs(self._path("logs"), p["smoke_count" if s else "count"],
                            p["smoke_size" if s else "size"])
            self.log("generated logs: %d files, %.1f MiB" % (n, b / 2**20))
            return Workload("logs", self._path("logs"), n, b,
                            description="%d x %d KiB log-like text" % (n, (b // n) >> 10))
        if name == "big":
            p = SIZES["big"]
            n, b = gen_big(self._path("big"), p["smoke_size" if s else "size"])
            self.log("generated big: %.0f MiB" % (b / 2**20))
            return Workload("big", self._path("big"), n, b,
                            description="one %d MiB random file" % (b >> 20))
        if name.startswith("noop-"):
            inner = self.get(name[len("noop-"):])
            return Workload(name, inner.src, inner.files, inner.bytes, base=inner.src,
                            description="no-op re-sync of " + inner.name
                            + " (destination already identical)")
        if name == "update":
            inner = self.get("small")
            changed, cb = make_update(inner.src, self._path("small-updated"))
            return Workload("update", self._path("small-updated"), inner.files, inner.bytes,
                            base=inner.src,
                            description="%d of %d small files changed (content+mtime), %.1f MiB"
                            % (changed, inner.files, cb / 2**20))
        if name == "usr-include":
            dst = self._path("usr-include")
            # The first workload of a run: its parent may not exist yet.
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            subprocess.run(["cp", "-a", "/usr/include", dst], check=True)
            n, b = tree_stats(dst)
            self.log("copied /usr/include: %d files, %.1f MiB" % (n, b / 2**20))
            return Workload("usr-include", dst, n, b, description="a copy of /usr/include")
        if name.startswith("tiny-"):
            count = int(name[len("tiny-"):].rstrip("k")) * 1000
            n, b = gen_small(self._path(name), count, max(10, count // 100), seed=count,
                             size_fn=lambda rng: rng.randint(100, 1000))
            self.log("generated %s: %d files" % (name, n))
            return Workload(name, self._path(name), n, b,
                            description="%d tiny files (100..1000 B)" % n)
        raise ValueError("unknown workload " + name)


def copy_tree(src, dest):
    """Pre-populates a destination (outside the timing): contents of src into dest."""
    os.makedirs(dest, exist_ok=True)
    subprocess.run(["cp", "-a", src + "/.", dest], check=True)


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
