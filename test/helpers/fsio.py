#!/usr/bin/env python3
"""File I/O on a mount, from a separate process (the test process serves or watches the mount and must not
block on it). One line of output per outcome, flushed at once, so the test sees progress live:

  read  --list FILE [--loops N] [--stop-on-dead]  for each path: "ok <path> <sha256> <bytes>" or "err <path> <ERRNO>"
  copy  SRC DST [--hold-at BYTES]                  "ok <dst>" once close() returned, "err <dst> <ERRNO>" if a call
                                                   failed; --hold-at: write that many bytes, print "holding <dst>",
                                                   then wait (never closing) until killed or stdin closes
  many  --list FILE [--pause]                      open every path at once ("opened <n>"), then read and hash them all
                                                   ("ok ..." / "err ..."), then close them all ("closed <n>");
                                                   --pause: print "paused" and wait for stdin to close before closing
"""
import argparse
import errno
import hashlib
import os
import resource
import sys

CHUNK = 1 << 20
# The mount is gone (daemon killed): nothing more will succeed until a new daemon mounts it again.
DEAD = {errno.ENOTCONN, errno.ECONNABORTED}


def say(*parts):
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else type(e).__name__


def read_all(fd):
    h = hashlib.sha256()
    n = 0
    while True:
        b = os.read(fd, CHUNK)
        if not b:
            return h.hexdigest(), n
        h.update(b)
        n += len(b)


def cmd_read(args):
    paths = [p for p in open(args.list, encoding="utf-8").read().split("\n") if p]
    for _ in range(args.loops):
        for p in paths:
            try:
                fd = os.open(p, os.O_RDONLY)
                try:
                    digest, n = read_all(fd)
                finally:
                    os.close(fd)
                say("ok", p, digest, n)
            except OSError as e:
                say("err", p, errname(e))
                if args.stop_on_dead and e.errno in DEAD:
                    return


def cmd_copy(args):
    try:
        with open(args.src, "rb") as f:
            data = f.read()
        fd = os.open(args.dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        end = len(data) if args.hold_at is None else min(args.hold_at, len(data))
        off = 0
        while off < end:
            off += os.write(fd, data[off:min(end, off + CHUNK)])
        if args.hold_at is not None:
            say("holding", args.dst)
            sys.stdin.read()  # until the test closes stdin or kills us; the file is never closed by us
            return
        os.close(fd)  # close() returns once the bucket holds the bytes: this is the acknowledgement
        say("ok", args.dst)
    except OSError as e:
        say("err", args.dst, errname(e))


def cmd_many(args):
    paths = [p for p in open(args.list, encoding="utf-8").read().split("\n") if p]
    want = len(paths) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    fds = []
    for p in paths:
        try:
            fds.append((p, os.open(p, os.O_RDONLY)))
        except OSError as e:
            say("err", p, errname(e))
    say("opened", len(fds))
    for p, fd in fds:
        try:
            digest, n = read_all(fd)
            say("ok", p, digest, n)
        except OSError as e:
            say("err", p, errname(e))
    if args.pause:
        say("paused")
        sys.stdin.read()
    closed = 0
    for p, fd in fds:
        try:
            os.close(fd)
            closed += 1
        except OSError as e:
            say("err", p, "close-" + errname(e))
    say("closed", closed)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("read")
    r.add_argument("--list", required=True)
    r.add_argument("--loops", type=int, default=1)
    r.add_argument("--stop-on-dead", action="store_true")
    c = sub.add_parser("copy")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--hold-at", type=int)
    m = sub.add_parser("many")
    m.add_argument("--list", required=True)
    m.add_argument("--pause", action="store_true")
    args = ap.parse_args()
    {"read": cmd_read, "copy": cmd_copy, "many": cmd_many}[args.cmd](args)


if __name__ == "__main__":
    main()
