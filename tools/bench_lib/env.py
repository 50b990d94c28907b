"""The bench's private world: a scratch dir, an sshd on 127.0.0.1, delay proxies,
and the per-profile ssh/rclone configs every tool is pointed at.

Traffic only ever goes to 127.0.0.1. Every process started here is in its own
process group, gets PR_SET_PDEATHSIG(SIGKILL), and is killed at exit.
"""
import ctypes
import getpass
import os
import signal
import socket
import subprocess
import time

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1

# What libssh2 1.10 negotiates with OpenSSH 9.2 (docs: shared notes): forced on the
# server, so every client (OpenSSH, rclone's Go ssh, libssh2) uses the same cipher.
CIPHER = "aes128-ctr"
MAC = "hmac-sha2-256"


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, prefix=b"SSH-", timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                if s.recv(64).startswith(prefix):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def children_of(pid):
    """Pids of every live descendant of pid (through /proc)."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parent[int(d)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out.extend(kids)
        todo.extend(kids)
    return out


def proc_cpu_with_children(pid):
    """utime+stime+cutime+cstime of pid in seconds (children count once reaped)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Env:
    def __init__(self, scratch, log):
        self.scratch = scratch
        self.log = log
        self.user = getpass.getuser()
        self.procs = []          # Popen objects to kill at exit
        self.sshd = None
        self.sshd_port = None
        self.key = os.path.join(scratch, "keys", "id_ed25519")
        self.known_hosts = os.path.join(scratch, "keys", "known_hosts")
        self.host_pub = None
        self.ports = {}          # profile -> port every tool connects to
        self.ssh_configs = {}    # profile -> ssh config path
        self.rclone_configs = {}
        self.home = os.path.join(scratch, "home")
        self.remote_home = os.path.join(scratch, "remote-home")
        os.makedirs(self.home, exist_ok=True)
        os.makedirs(self.remote_home, exist_ok=True)

    # ---- processes ---------------------------------------------------------------
    def spawn(self, args, **kw):
        p = subprocess.Popen(args, start_new_session=True, preexec_fn=_die_with_parent, **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                victims = children_of(p.pid)
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
                for v in victims:
                    try:
                        os.kill(v, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    p.wait()
        self.procs = []

    # ---- sshd ----------------------------------------------------------------------
    def start_sshd(self):
        keys = os.path.join(self.scratch, "keys")
        os.makedirs(keys, exist_ok=True)
        host_key = os.path.join(keys, "ssh_host_ed25519_key")
        for path, comment in ((host_key, "ferry-bench-host"), (self.key, "ferry-bench-user")):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                           check=True, stdout=subprocess.DEVNULL)
        with open(host_key + ".pub") as f:
            self.host_pub = " ".join(f.read().split()[:2])
        with open(self.key + ".pub") as f, open(os.path.join(keys, "authorized_keys"), "w") as out:
            out.write(f.read())
        self.sshd_port = free_port()
        config = os.path.join(keys, "sshd_config")
        with open(config, "w") as f:
            f.write("\n".join([
                "# Written by tools/bench: a private sshd on loopback.",
                "ListenAddress 127.0.0.1",
                "Port %d" % self.sshd_port,
                "HostKey " + host_key,
                "AuthorizedKeysFile " + os.path.join(keys, "authorized_keys"),
                "PidFile " + os.path.join(keys, "sshd.pid"),
                "StrictModes no",
                "UsePAM no",
                "PermitRootLogin yes",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "MaxSessions 64",
                "MaxStartups 100",
                "UseDNS no",
                "Ciphers " + CIPHER,
                "MACs " + MAC,
                "Subsystem sftp internal-sftp",
                # Remote commands (rsync, tar, rclone's md5sum) run through the login
                # shell, which sources $HOME/.bashrc over ssh: point HOME at an empty
                # directory so a slow rc file of the machine's user (1.6 s here) is not
                # timed. sshd applies SetEnv after its own HOME.
                "SetEnv HOME=" + self.remote_home,
                "",
            ]))
        os.makedirs("/run/sshd", exist_ok=True)
        log = open(os.path.join(keys, "sshd.log"), "w")
        self.sshd = self.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if not wait_banner(self.sshd_port):
            raise RuntimeError("sshd did not start; log:\n" + open(log.name).read())
        self.add_profile("loopback", self.sshd_port)

    def sshd_cpu(self):
        """CPU seconds of sshd and every reaped child so far (the server side of runs)."""
        return proc_cpu_with_children(self.sshd.pid)

    def wait_sshd_idle(self, timeout=3.0):
        """Waits (bounded) until the per-connection sshd children have exited and
        been reaped, so their CPU shows in sshd_cpu()."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not children_of(self.sshd.pid):
                return True
            time.sleep(0.02)
        return False

    # ---- proxies and profiles -------------------------------------------------------------
    def start_proxy(self, proxy_bin, name, delay_ms, rate_mbit):
        p = self.spawn([proxy_bin, "--listen", "127.0.0.1:0", "--target",
                        "127.0.0.1:%d" % self.sshd_port, "--delay-ms", str(delay_ms),
                        "--rate-mbit", str(rate_mbit)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        line = p.stdout.readline().decode()
        if not line.startswith("listening on "):
            raise RuntimeError("delay_proxy did not start: %r" % line)
        port = int(line.rsplit(":", 1)[1])
        if not wait_banner(port, timeout=10):
            raise RuntimeError("no ssh banner through the proxy on port %d" % port)
        self.add_profile(name, port)
        return port

    def add_profile(self, name, port):
        self.ports[name] = port
        # known_hosts: the same host key under every port a tool may connect to.
        with open(self.known_hosts, "w") as f:
            for p in sorted(set(self.ports.values())):
                f.write("[127.0.0.1]:%d %s\n" % (p, self.host_pub))
        cfg = os.path.join(self.scratch, "keys", "ssh_config." + name)
        with open(cfg, "w") as f:
            f.write("\n".join([
                "Host bench",
                "  HostName 127.0.0.1",
                "  Port %d" % port,
                "  User " + self.user,
                "  IdentityFile " + self.key,
                "  IdentitiesOnly yes",
                "  UserKnownHostsFile " + self.known_hosts,
                "  GlobalKnownHostsFile /dev/null",
                "  StrictHostKeyChecking yes",
                "  Ciphers " + CIPHER,
                "  MACs " + MAC,
                "  Compression no",
                "  BatchMode yes",
                "  ControlMaster no",
                "  ControlPath none",
                "  ConnectTimeout 15",
                "  LogLevel ERROR",
                "",
            ]))
        self.ssh_configs[name] = cfg
        rc = os.path.join(self.scratch, "keys", "rclone.conf." + name)
        with open(rc, "w") as f:
            f.write("\n".join([
                "[bench]",
                "type = sftp",
                "host = 127.0.0.1",
                "port = %d" % port,
                "user = " + self.user,
                "key_file = " + self.key,
                "known_hosts_file = " + self.known_hosts,
                "",
            ]))
        self.rclone_configs[name] = rc

    def tool_env(self):
        """Environment for every timed command: a private HOME, so no ~/.ssh/config,
        ~/.lftprc or rclone config of the user's leaks into the numbers."""
        env = dict(os.environ)
        env["HOME"] = self.home
        env.pop("XDG_CACHE_HOME", None)  # ferry's caches go under the private HOME too
        env.pop("SSH_AUTH_SOCK", None)
        env["LC_ALL"] = "C"
        return env
