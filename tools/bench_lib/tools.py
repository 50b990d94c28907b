"""The commands being compared. Each Tool turns (profile, src, dest) into argv.

Remote tools all go through `Host bench` of the profile's ssh config (or the
matching rclone.conf / sftp:// URL), so the profile decides loopback vs proxy.
"""
import os
import shlex


class Tool:
    def __init__(self, name, build, incremental, remote=True, compressed_dest=False,
                 needs_absent_dest=False, note=""):
        self.name = name
        self._build = build
        self.incremental = incremental          # can sync into a populated destination
        self.remote = remote                    # goes through sshd (server CPU is measured)
        self.compressed_dest = compressed_dest  # stores NAME.zst (ferry --compress)
        self.needs_absent_dest = needs_absent_dest
        self.note = note

    def argv(self, ctx, profile, src, dest, scratch_run):
        return self._build(ctx, profile, src, dest, scratch_run)


class Context:
    """What commands need to know: binaries and the Env (configs, keys, ports)."""

    def __init__(self, env, ferry_bin):
        self.env = env
        self.ferry = ferry_bin


def _ferry_sftp(extra):
    def build(ctx, profile, src, dest, _):
        url = "sftp://%s@127.0.0.1:%d%s" % (ctx.env.user, ctx.env.ports[profile], dest)
        return [ctx.ferry, "push", "-q", "--no-progress", "--known-hosts", ctx.env.known_hosts,
                "-i", ctx.env.key] + extra + [src, url]
    return build


def _ferry_local(ctx, profile, src, dest, _):
    return [ctx.ferry, "push", "-q", "--no-progress", src, dest]


def _rsync(extra):
    def build(ctx, profile, src, dest, _):
        return ["rsync", "-a"] + extra + ["-e", "ssh -F " + ctx.env.ssh_configs[profile],
                                         src + "/", "bench:" + dest + "/"]
    return build


def _rsync_local(ctx, profile, src, dest, _):
    return ["rsync", "-a", src + "/", dest + "/"]


def _cp(ctx, profile, src, dest, _):
    return ["cp", "-a", src, dest]


def _scp(ctx, profile, src, dest, _):
    return ["scp", "-q", "-r", "-F", ctx.env.ssh_configs[profile], src, "bench:" + dest]


def _sftp(ctx, profile, src, dest, scratch_run):
    batch = os.path.join(scratch_run, "sftp.batch")
    with open(batch, "w") as f:
        f.write('put -r "%s" "%s"\n' % (src, dest))
    return ["sftp", "-q", "-F", ctx.env.ssh_configs[profile], "-b", batch, "bench"]


def _rclone(transfers):
    def build(ctx, profile, src, dest, _):
        return ["rclone", "--config", ctx.env.rclone_configs[profile], "copy", "-q",
                "--transfers", str(transfers), src, "bench:" + dest]
    return build


def _lftp(ctx, profile, src, dest, _):
    script = "; ".join([
        "set sftp:connect-program " + shlex.quote("ssh -a -x -F " + ctx.env.ssh_configs[profile]),
        "set net:max-retries 1",
        "set net:timeout 30",
        "set cmd:fail-exit yes",
        "open -u %s, sftp://bench" % ctx.env.user,
        "mirror -R --parallel=8 %s %s" % (shlex.quote(src), shlex.quote(dest)),
    ])
    return ["lftp", "-c", script]


def _tar_ssh(ctx, profile, src, dest, _):
    remote = "mkdir -p %s && tar -C %s -xf -" % (shlex.quote(dest), shlex.quote(dest))
    pipeline = "tar -C %s -cf - . | ssh -F %s bench %s" % (
        shlex.quote(src), shlex.quote(ctx.env.ssh_configs[profile]), shlex.quote(remote))
    return ["bash", "-o", "pipefail", "-c", pipeline]


FERRY_SFTP = Tool("ferry sftp", _ferry_sftp([]), incremental=True, note="defaults: -j 64, 2 connections, listing cache on")
FERRY_SFTP_Z = Tool("ferry sftp -z", _ferry_sftp(["-z"]), incremental=False, compressed_dest=True,
                    note="stores NAME.zst (zstd 3)")
FERRY_LOCAL = Tool("ferry (local dir)", _ferry_local, incremental=True, remote=False,
                   note="local destination: no ssh at all")
RSYNC = Tool("rsync -a", _rsync([]), incremental=True)
RSYNC_Z = Tool("rsync -az zstd", _rsync(["-z", "--compress-choice=zstd"]), incremental=True)
RSYNC_LOCAL = Tool("rsync -a (local)", _rsync_local, incremental=True, remote=False)
CP = Tool("cp -a", _cp, incremental=False, remote=False, needs_absent_dest=True)
SCP = Tool("scp -r", _scp, incremental=False, needs_absent_dest=True, note="SFTP protocol (OpenSSH 9)")
SFTP = Tool("sftp put -r", _sftp, incremental=False, needs_absent_dest=True)
RCLONE4 = Tool("rclone --transfers 4", _rclone(4), incremental=True,
               note="defaults otherwise: md5sum on the server per file")
RCLONE16 = Tool("rclone --transfers 16", _rclone(16), incremental=True)
LFTP = Tool("lftp mirror -P8", _lftp, incremental=True)
TAR = Tool("tar | ssh tar x", _tar_ssh, incremental=False, note="streaming reference")


def tools_for(profile, workload_name, ferry_sftp_ok):
    """The tools of one table, ferry first (the ratio baseline)."""
    incremental_only = workload_name.startswith("noop-") or workload_name == "update"
    if profile == "local":
        tools = [FERRY_LOCAL, CP, RSYNC_LOCAL]
    elif profile == "slow":
        tools = ([FERRY_SFTP, FERRY_SFTP_Z] if ferry_sftp_ok else []) + [RSYNC, RSYNC_Z]
    else:
        tools = ([FERRY_SFTP] if ferry_sftp_ok else [])
        if profile == "loopback":
            tools.append(FERRY_LOCAL)
        tools += [RSYNC, SCP, SFTP, RCLONE4, RCLONE16, LFTP, TAR]
    if incremental_only:
        tools = [t for t in tools if t.incremental]
    return tools
