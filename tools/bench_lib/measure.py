"""One timed run of one command: wall time, client CPU and peak RSS of the whole
client process tree, server CPU (the sshd listener's reaped children, via /proc).

The command runs under GNU time (/usr/bin/time), which reports the wait4()
rusage of its child: CPU of the child and every descendant it reaped, and the
largest single RSS among them. Not os.wait4() from here directly: a child forked
from this Python process inherits Python's RSS high-water mark across exec
(Linux keeps ru_maxrss over execve), which would put a floor of ~36 MiB under
every tool."""
import os
import signal
import subprocess
import threading
import time

# The child being timed, so that an interrupted run can be killed from cleanup.
current = None


def kill_current():
    p = current
    if p is not None and p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass


def run_once(argv, env, timeout, log_path, server=None):
    """Runs argv (own session, stdout+stderr to log_path). Returns a dict:
    rc, wall_s, cpu_s, rss_mib, server_cpu_s (None without server), timed_out."""
    global current
    if server is not None:
        server.wait_sshd_idle()
        server_before = server.sshd_cpu()
    timed_out = threading.Event()
    time_path = log_path + ".time"
    timed_argv = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", time_path] + list(argv)
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        p = subprocess.Popen(timed_argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                             start_new_session=True)
        current = p

        def expire():
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        current = None
    # A killed pipeline may leave grandchildren in the group: end them.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    result = dict(rc=p.returncode, wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime,
                  rss_mib=None, timed_out=timed_out.is_set(), server_cpu_s=None)
    try:
        with open(time_path) as f:
            _, user, system, maxrss_kib = f.read().strip().splitlines()[-1].split()
        result["cpu_s"] = float(user) + float(system)
        result["rss_mib"] = int(maxrss_kib) / 1024.0
    except (OSError, ValueError, IndexError):
        pass  # killed before GNU time could write: keep wait4's CPU, no RSS
    if server is not None:
        server.wait_sshd_idle()
        result["server_cpu_s"] = server.sshd_cpu() - server_before
    return result


def tail(path, n=600):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data[-n:].decode(errors="replace").strip()
    except OSError:
        return ""
