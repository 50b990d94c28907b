#!/usr/bin/env python3
"""A misbehaving SFTP v3 server for ferry's tests, run as an sshd subsystem.

Usage: fake_sftp_server.py MODE, speaking SFTP on stdin/stdout. After INIT it
answers VERSION 3 (offering posix-rename@openssh.com), then per MODE:
  unknown-id     answers every request with a STATUS for another request id
  huge-length    answers with a packet length far above any sane limit
  hostile-names  serves a directory "/hostile" whose listing holds ".", "..",
                 "../x", "a/b", "" and "good" (other requests: minimal answers)
"""
import struct
import sys

IN = sys.stdin.buffer
OUT = sys.stdout.buffer


def u32(v):
    return struct.pack(">I", v)


def string(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = IN.read(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data


def read_packet():
    (length,) = struct.unpack(">I", read_exact(4))
    return read_exact(length)


def send(body):
    OUT.write(u32(len(body)) + body)
    OUT.flush()


def status(rid, code, message=""):
    send(bytes([101]) + u32(rid) + u32(code) + string(message) + string(""))


DIR_ATTRS = u32(0x4 | 0x8) + u32(0o40755) + u32(0) + u32(0)
FILE_ATTRS = u32(0x4 | 0x8) + u32(0o100644) + u32(0) + u32(0)


def name_reply(rid, names):
    body = bytes([104]) + u32(rid) + u32(len(names))
    for n, attrs in names:
        body += string(n) + string("longname") + attrs
    send(body)


def main():
    mode = sys.argv[1]
    read_packet()  # INIT
    send(bytes([2]) + u32(3) + string("posix-rename@openssh.com") + string("1"))
    readdirs = 0
    while True:
        pkt = read_packet()
        kind = pkt[0]
        (rid,) = struct.unpack(">I", pkt[1:5])
        if mode == "unknown-id":
            status(rid + 1000, 0)
        elif mode == "huge-length":
            OUT.write(b"\xff\xff\xff\xf0" + b"\x65" * 64)
            OUT.flush()
        elif mode == "hostile-names":
            if kind == 16:  # REALPATH
                name_reply(rid, [("/hostile", u32(0))])
            elif kind in (7, 17):  # LSTAT, STAT
                send(bytes([105]) + u32(rid) + DIR_ATTRS)
            elif kind == 11:  # OPENDIR
                send(bytes([102]) + u32(rid) + string("h"))
            elif kind == 12:  # READDIR
                readdirs += 1
                if readdirs == 1:
                    name_reply(rid, [(".", DIR_ATTRS), ("..", DIR_ATTRS), ("../x", FILE_ATTRS),
                                     ("a/b", FILE_ATTRS), ("", FILE_ATTRS), ("good", FILE_ATTRS)])
                else:
                    status(rid, 1, "EOF")
            elif kind == 4:  # CLOSE
                readdirs = 0
                status(rid, 0)
            elif kind == 14:  # MKDIR: "exists"
                status(rid, 4, "Failure")
            else:
                status(rid, 8, "unsupported")


if __name__ == "__main__":
    main()
