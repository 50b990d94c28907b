"""The watch benchmark: `ferry watch` against lsyncd (delay = 0, rsync).

Latency: close() of a new 4 KiB file in SRC -> its final name exists in DEST,
timed with inotify on DEST (IN_MOVED_TO / IN_CREATE of that name), so the
measurement itself does not poll. One file at a time, N samples, a short pause
after each arrival so that every sample is a batch of its own. Set-ups:
  - ferry watch, local DEST and loopback SFTP (the bench sshd);
  - lsyncd 2.2 default.rsync, delay = 0: local DEST, rsync over ssh with a new
    connection per run (the bench's ssh config: ControlMaster no), and rsync
    over ssh reusing one connection (ControlMaster auto + ControlPersist).
Idle CPU: utime+stime of the watcher process (from /proc/PID/stat) over a quiet
interval after the samples. Burst: N small files written into a watched SRC
(in 10 directories) until the last one is on DEST, vs `ferry push` of the same
files into an empty DEST. DEST is verified byte for byte after every set-up.
"""
import ctypes
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import time

from bench_lib import measure, verify, workloads

_libc = ctypes.CDLL(None, use_errno=True)
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
IN_CREATE = 0x100
IN_MOVED_TO = 0x80
EVENT = struct.Struct("iIII")


class DirWatch:
    """inotify on one directory: which names appeared there (create or rename in)."""

    def __init__(self, path):
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _libc.inotify_add_watch(self.fd, os.fsencode(path), IN_CREATE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + path)
        self.seen = set()

    def _drain(self):
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            off = 0
            while off + EVENT.size <= len(buf):
                _, _, _, n = EVENT.unpack_from(buf, off)
                name = buf[off + EVENT.size:off + EVENT.size + n].rstrip(b"\0")
                self.seen.add(name.decode(errors="replace"))
                off += EVENT.size + n

    def wait(self, name, timeout):
        """Monotonic time at which `name` was seen, or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            if name in self.seen:
                return time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self.fd], [], [], left)

    def close(self):
        os.close(self.fd)


def percentile(sorted_ms, q):
    if not sorted_ms:
        return float("nan")
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def proc_cpu(pid):
    """utime+stime of pid itself, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WatchBench:
    def __init__(self, env, ctx, scratch, smoke, log):
        self.env = env
        self.ctx = ctx
        self.root = os.path.join(scratch, "watch")
        self.smoke = smoke
        self.log = log
        self.samples = 10 if smoke else 100
        self.idle_s = 2.0 if smoke else 10.0
        self.burst = 1000 if smoke else 10000
        self.rows = []      # latency rows
        self.bursts = []    # burst rows
        self.failures = 0
        self.seq = 0
        os.makedirs(self.root)

    # ---- set-ups --------------------------------------------------------------------
    def _dirs(self, tag):
        self.seq += 1
        base = os.path.join(self.root, "%d-%s" % (self.seq, tag))
        src, dest = os.path.join(base, "src"), os.path.join(base, "dest")
        os.makedirs(src)
        os.makedirs(dest)
        return base, src, dest

    def _ferry_argv(self, src, dest, sftp):
        argv = [self.ctx.ferry, "watch", "-q", "--no-progress"]
        if sftp:
            url = "sftp://%s@127.0.0.1:%d%s" % (self.env.user, self.env.ports["loopback"], dest)
            return argv + ["--known-hosts", self.env.known_hosts, "-i", self.env.key, src, url]
        return argv + [src, dest]

    def _lsyncd_argv(self, base, src, dest, ssh_config):
        conf = os.path.join(base, "lsyncd.conf.lua")
        target = dest + "/"
        rsync = "archive = true"
        if ssh_config:
            target = "bench:" + dest + "/"
            rsync += ', rsh = "/usr/bin/ssh -F %s"' % ssh_config
        with open(conf, "w") as f:
            f.write('settings { logfile = "%s/lsyncd.log", statusFile = "%s/lsyncd.status", '
                    'nodaemon = true }\n' % (base, base))
            f.write('sync { default.rsync, source = "%s/", target = "%s", delay = 0, '
                    'rsync = { %s } }\n' % (src, target, rsync))
        return ["lsyncd", "-nodaemon", conf]

    def control_master_config(self):
        cfg = self.env.ssh_configs["loopback"] + ".cm"
        with open(self.env.ssh_configs["loopback"]) as f:
            text = f.read()
        text = text.replace("  ControlMaster no\n", "  ControlMaster auto\n  ControlPersist 120\n")
        text = text.replace("  ControlPath none\n",
                            "  ControlPath %s\n" % os.path.join(self.root, "cm-%C"))
        with open(cfg, "w") as f:
            f.write(text)
        return cfg

    def _start(self, argv, base, src, dest):
        log = open(os.path.join(base, "watcher.log"), "wb")
        p = self.env.spawn(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           env=self.env.tool_env())
        # Ready once a file written now arrives (the initial sync is done).
        dw = DirWatch(dest)
        with open(os.path.join(src, "ready"), "w") as f:
            f.write("ready\n")
        ok = dw.wait("ready", 60) is not None
        dw.close()
        if not ok:
            self._stop(p)
            raise RuntimeError("%s did not sync its first file within 60 s: %s" % (
                argv[0], measure.tail(log.name, 300)))
        return p

    def _stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        return p.returncode

    # ---- measurements ---------------------------------------------------------------
    def latency(self, name, argv_fn, note=""):
        base, src, dest = self._dirs(name.split()[0])
        self.log("  [watch] %s: %d samples" % (name, self.samples))
        p = self._start(argv_fn(base, src, dest), base, src, dest)
        dw = DirWatch(dest)
        ms, missed = [], 0
        try:
            for i in range(self.samples):
                fname = "lat-%04d" % i
                data = os.urandom(4096)
                fd = os.open(os.path.join(src, fname), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, data)
                t0 = time.monotonic()
                os.close(fd)
                t1 = dw.wait(fname, 10.0)
                if t1 is None:
                    missed += 1
                else:
                    ms.append((t1 - t0) * 1000.0)
                time.sleep(0.05)  # every sample is a batch (an rsync run) of its own
            # Idle: nothing changes; the watcher's own CPU over the interval.
            time.sleep(0.5)
            cpu0 = proc_cpu(p.pid)
            time.sleep(self.idle_s)
            idle_cpu_ms = (proc_cpu(p.pid) - cpu0) * 1000.0
            alive = p.poll() is None
        finally:
            dw.close()
            rc = self._stop(p)
        # lsyncd ends on SIGTERM with 143; ferry with 0.
        why = verify.verify_tree(src, dest)
        if missed:
            why = "%d of %d files did not arrive within 10 s" % (missed, self.samples)
        elif not alive:
            why = "the watcher exited during the run (rc %s)" % rc
        if why:
            self.failures += 1
        s = sorted(ms)
        row = dict(setup=name, samples=len(ms), missed=missed, p50=percentile(s, 0.50),
                   p95=percentile(s, 0.95), p99=percentile(s, 0.99), max=s[-1] if s else None,
                   idle_cpu_ms=idle_cpu_ms, idle_s=self.idle_s, ok=why is None, reason=why,
                   note=note)
        self.rows.append(row)
        self.log("  [watch] %-34s p50 %7.2f  p95 %7.2f  p99 %7.2f ms  idle cpu %.0f ms/%.0f s  %s"
                 % (name, row["p50"], row["p95"], row["p99"], idle_cpu_ms, self.idle_s,
                    "ok" if why is None else "FAILED: " + why))
        shutil.rmtree(base, ignore_errors=True)

    def _write_burst(self, src, n):
        for d in range(10):
            os.makedirs(os.path.join(src, "d%d" % d), exist_ok=True)
        payload = os.urandom(2048)
        for i in range(n):
            with open(os.path.join(src, "d%d" % (i % 10), "f%05d" % i), "wb") as f:
                f.write(payload[: 100 + (i * 37) % 1900])

    def _count(self, dest):
        n = 0
        for d in range(10):
            try:
                n += sum(1 for e in os.scandir(os.path.join(dest, "d%d" % d))
                         if not e.name.startswith("."))
            except OSError:
                pass
        return n

    def burst_vs_push(self, name, sftp):
        n = self.burst
        base, src, dest = self._dirs("burst")
        self.log("  [watch] burst of %d files, %s" % (n, name))
        p = self._start(self._ferry_argv(src, dest, sftp), base, src, dest)
        os.remove(os.path.join(src, "ready"))
        try:
            t0 = time.monotonic()
            self._write_burst(src, n)
            t_written = time.monotonic()
            deadline = t0 + 600
            while self._count(dest) < n and time.monotonic() < deadline:
                time.sleep(0.05)
            t_end = time.monotonic()
            # The arrival of the last file is seen to within the 50 ms poll.
            time.sleep(0.3)  # the deletion of "ready" may still be on its way
        finally:
            rc = self._stop(p)
        why = verify.verify_tree(src, dest)
        watch_s = t_end - t0
        # ferry push of the same files into an empty DEST.
        dest2 = os.path.join(base, "dest-push")
        if sftp:
            argv = [self.ctx.ferry, "push", "-q", "--no-progress", "--known-hosts",
                    self.env.known_hosts, "-i", self.env.key, src,
                    "sftp://%s@127.0.0.1:%d%s" % (self.env.user, self.env.ports["loopback"], dest2)]
        else:
            argv = [self.ctx.ferry, "push", "-q", "--no-progress", src, dest2]
        os.sync()
        res = measure.run_once(argv, self.env.tool_env(), 600, os.path.join(base, "push.log"),
                               server=self.env if sftp else None)
        push_why = None if res["rc"] == 0 else "push exit %d" % res["rc"]
        push_why = push_why or verify.verify_tree(src, dest2)
        if why or push_why or rc != 0:
            self.failures += 1
        row = dict(setup=name, files=n, write_s=t_written - t0, watch_s=watch_s,
                   push_s=res["wall_s"], watch_rate=n / watch_s, push_rate=n / res["wall_s"],
                   ok=not (why or push_why or rc != 0),
                   reason=why or push_why or (None if rc == 0 else "watch exit %s" % rc))
        self.bursts.append(row)
        self.log("  [watch] burst %-12s written in %.2f s, all on DEST after %.2f s (%.0f files/s);"
                 " ferry push %.2f s (%.0f files/s)  %s" % (
                     name, row["write_s"], watch_s, row["watch_rate"], res["wall_s"],
                     row["push_rate"], "ok" if row["ok"] else "FAILED: %s" % row["reason"]))
        workloads.remove_tree(base)

    def run(self, sftp_ok, with_lsyncd):
        load_before = os.getloadavg()
        ferry_local = lambda base, src, dest: self._ferry_argv(src, dest, False)  # noqa: E731
        ferry_sftp = lambda base, src, dest: self._ferry_argv(src, dest, True)  # noqa: E731
        self.latency("ferry watch, local DEST", ferry_local)
        if sftp_ok:
            self.latency("ferry watch, SFTP (loopback)", ferry_sftp)
        if with_lsyncd and shutil.which("lsyncd"):
            cfg = self.env.ssh_configs["loopback"]
            cm = self.control_master_config()
            self.latency("lsyncd+rsync, local DEST",
                         lambda base, src, dest: self._lsyncd_argv(base, src, dest, None))
            self.latency("lsyncd+rsync/ssh, new connection",
                         lambda base, src, dest: self._lsyncd_argv(base, src, dest, cfg))
            try:
                self.latency("lsyncd+rsync/ssh, ControlMaster",
                             lambda base, src, dest: self._lsyncd_argv(base, src, dest, cm),
                             note="ControlMaster auto, ControlPersist 120")
            finally:
                subprocess.run(["ssh", "-F", cm, "-O", "exit", "bench"], env=self.env.tool_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        self.burst_vs_push("local DEST", False)
        if sftp_ok:
            self.burst_vs_push("SFTP", True)
        self.load = (load_before, os.getloadavg())

    # ---- output ------------------------------------------------------------------------
    def text(self):
        out = ["watch latency: close() of a new 4 KiB file -> final name on DEST, %d samples "
               "(ms); idle CPU of the watcher over %.0f s" % (self.samples, self.idle_s),
               "  %-36s %8s %8s %8s %8s %12s" % ("set-up", "p50", "p95", "p99", "max", "idle CPU")]
        for r in self.rows:
            out.append("  %-36s %8.2f %8.2f %8.2f %8.2f %9.0f ms%s" % (
                r["setup"], r["p50"], r["p95"], r["p99"], r["max"] or float("nan"),
                r["idle_cpu_ms"], "" if r["ok"] else "  [FAILED: %s]" % r["reason"]))
        out.append("watch burst: %d small files written into SRC, until all are on DEST; "
                   "vs ferry push of the same files" % self.burst)
        for b in self.bursts:
            out.append("  %-12s write %.2f s, watch %.2f s (%.0f files/s), push %.2f s "
                       "(%.0f files/s)%s" % (b["setup"], b["write_s"], b["watch_s"],
                                             b["watch_rate"], b["push_s"], b["push_rate"],
                                             "" if b["ok"] else "  [FAILED: %s]" % b["reason"]))
        out.append("  load average (1/5/15 min) before %.2f/%.2f/%.2f, after %.2f/%.2f/%.2f "
                   "on %d cores" % (self.load[0] + self.load[1] + (os.cpu_count(),)))
        return "\n".join(out)

    def markdown(self):
        md = ["### watch: latency, close() of a new 4 KiB file -> final name on DEST", "",
              "%d samples per set-up; idle CPU of the watcher process over %.0f s. Load average "
              "%.1f before, %.1f after (%d cores)." % (
                  self.samples, self.idle_s, self.load[0][0], self.load[1][0], os.cpu_count()),
              "", "| set-up | p50 ms | p95 ms | p99 ms | max ms | idle CPU |",
              "|---|---|---|---|---|---|"]
        for r in self.rows:
            md.append("| %s | %.1f | %.1f | %.1f | %.1f | %.0f ms / %.0f s |%s" % (
                r["setup"], r["p50"], r["p95"], r["p99"], r["max"] or float("nan"),
                r["idle_cpu_ms"], r["idle_s"], "" if r["ok"] else " FAILED"))
        md += ["", "### watch: burst of %d small files" % self.burst, "",
               "| DEST | written in s | watch: all on DEST s | files/s | ferry push s | files/s |",
               "|---|---|---|---|---|---|"]
        for b in self.bursts:
            md.append("| %s | %.2f | %.2f | %.0f | %.2f | %.0f |" % (
                b["setup"], b["write_s"], b["watch_s"], b["watch_rate"], b["push_s"],
                b["push_rate"]))
        md.append("")
        return md

    def json(self):
        return dict(samples=self.samples, latency=self.rows, burst=self.bursts,
                    loadavg_before=self.load[0], loadavg_after=self.load[1])
