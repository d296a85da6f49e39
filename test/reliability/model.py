# A seeded random sequence of file operations run on two trees at once — a bucket mount and a local
# directory (the reference model) — comparing every outcome (data, sizes, listings, errno names).
# Usage: python3 model.py SEED OPS MOUNT_ROOT MODEL_ROOT; prints a JSON summary, exits 1 on a mismatch.
import errno
import hashlib
import json
import os
import random
import stat as S
import sys

seed, n_ops, roots = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:5]
rng = random.Random(seed)
DIRS = ["", "d", "d/e", "g"]
NAMES = ["a", "b", "c", "x.bin"]


def pick_path():
    d = rng.choice(DIRS)
    n = rng.choice(NAMES + DIRS[1:2])
    return f"{d}/{n}" if d else n


def outcome(fn, root):
    try:
        return ["ok", fn(root)]
    except OSError as e:
        return ["err", errno.errorcode.get(e.errno, str(e.errno))]


def write_new(p, data):
    def f(root):
        fd = os.open(os.path.join(root, p), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return len(data)
    return f


def pwrite(p, off, data):
    def f(root):
        fd = os.open(os.path.join(root, p), os.O_RDWR)
        try:
            os.pwrite(fd, data, off)
        finally:
            os.close(fd)
        return None
    return f


def append(p, data):
    def f(root):
        with open(os.path.join(root, p), "ab") as fh:
            fh.write(data)
        return None
    return f


def read(p):
    def f(root):
        with open(os.path.join(root, p), "rb") as fh:
            return fh.read().hex()
    return f


def kind(mode):
    return "dir" if S.S_ISDIR(mode) else "link" if S.S_ISLNK(mode) else "file" if S.S_ISREG(mode) else oct(S.S_IFMT(mode))


def attrs(st):
    """What a stat shows besides times: type, size (not for directories), permission bits, owner, group."""
    return [kind(st.st_mode), 0 if S.S_ISDIR(st.st_mode) else st.st_size, oct(S.S_IMODE(st.st_mode)), st.st_uid, st.st_gid]


def stat(p, follow=True):
    def f(root):
        return attrs(os.stat(os.path.join(root, p), follow_symlinks=follow))
    return f


def utimens(p, atime_ns, mtime_ns, follow):
    def f(root):
        q = os.path.join(root, p)
        os.utime(q, ns=(atime_ns, mtime_ns), follow_symlinks=follow)
        st = os.stat(q, follow_symlinks=follow)
        return [st.st_mtime_ns, st.st_atime_ns]
    return f


# Descriptors held open across other operations (at most 3 per tree): writes through a file that is renamed,
# unlinked, truncated or replaced meanwhile must behave as on a local disk. fds[slot] = [mount_fd, model_fd].
fds = {}


def fd_open(slot, p):
    def f(root):
        fd = os.open(os.path.join(root, p), os.O_RDWR | os.O_CREAT, 0o644)
        fds.setdefault(slot, [None, None])[roots.index(root)] = fd
        return None
    return f


def fd_op(slot, action):
    def f(root):
        pair = fds.get(slot)
        fd = pair[roots.index(root)] if pair else None
        if fd is None:
            raise OSError(errno.EBADF, "not open")
        return action(fd)
    return f


def fd_close(fd):
    os.close(fd)
    for slot, pair in list(fds.items()):
        pair[:] = [None if x == fd else x for x in pair]
        if pair == [None, None]:
            del fds[slot]


ops = {
    "write_new": lambda: (lambda p, data: (p, write_new(p, data)))(pick_path(), rng.randbytes(rng.choice([0, 1, 100, 5000, 70000]))),
    "pwrite": lambda: (lambda p, off, data: (p, pwrite(p, off, data)))(pick_path(), rng.randrange(0, 80000), rng.randbytes(rng.randrange(1, 20000))),
    "append": lambda: (lambda p, data: (p, append(p, data)))(pick_path(), rng.randbytes(rng.randrange(1, 3000))),
    "truncate": lambda: (lambda p, size: (p, lambda root: os.truncate(os.path.join(root, p), size)))(pick_path(), rng.randrange(0, 90000)),
    "read": lambda: (lambda p: (p, read(p)))(pick_path()),
    "stat": lambda: (lambda p: (p, stat(p)))(pick_path()),
    "unlink": lambda: (lambda p: (p, lambda root: os.unlink(os.path.join(root, p))))(pick_path()),
    "mkdir": lambda: (lambda d: (d, lambda root: os.mkdir(os.path.join(root, d))))(rng.choice(DIRS[1:])),
    "rmdir": lambda: (lambda d: (d, lambda root: os.rmdir(os.path.join(root, d))))(rng.choice(DIRS[1:])),
    "listdir": lambda: (lambda d: (d, lambda root: sorted(os.listdir(os.path.join(root, d)))))(rng.choice(DIRS)),
    "rename": lambda: (lambda a, b: (a, lambda root: os.rename(os.path.join(root, a), os.path.join(root, b))))(pick_path(), pick_path()),
    "lstat": lambda: (lambda p: (p, stat(p, False)))(pick_path()),
    "chmod": lambda: (lambda p, mode: (p, lambda root: os.chmod(os.path.join(root, p), mode)))(pick_path(), rng.choice([0o644, 0o600, 0o755, 0o700, 0o444, 0o2755, 0o1777])),
    "chown": lambda: (lambda p, uid, gid, follow: (p, lambda root: os.chown(os.path.join(root, p), uid, gid, follow_symlinks=follow)))(
        pick_path(), rng.choice([-1, 0, 1000, 4321]), rng.choice([-1, 0, 100, 4321]), rng.random() < 0.7),
    "utimens": lambda: (lambda p, a, m, follow: (p, utimens(p, a, m, follow)))(
        pick_path(), rng.randrange(0, 2**31) * 10**9 + rng.randrange(10**9), rng.randrange(0, 2**31) * 10**9 + rng.randrange(10**9), rng.random() < 0.7),
    "symlink": lambda: (lambda target, p: (p, lambda root: os.symlink(target, os.path.join(root, p))))(
        rng.choice(NAMES + ["d/a", "nowhere", "d", "g/x.bin", "e/../a"]), pick_path()),  # none leads out of the tree
    "readlink": lambda: (lambda p: (p, lambda root: os.readlink(os.path.join(root, p))))(pick_path()),
    "fd_open": lambda: (lambda slot, p: (f"fd{slot}={p}", fd_open(slot, p)))(rng.randrange(3), pick_path()),
    "fd_write": lambda: (lambda slot, off, data: (f"fd{slot}", fd_op(slot, lambda fd: os.pwrite(fd, data, off))))(rng.randrange(3), rng.randrange(0, 80000), rng.randbytes(rng.randrange(1, 20000))),
    "fd_read": lambda: (lambda slot, off, n: (f"fd{slot}", fd_op(slot, lambda fd: os.pread(fd, n, off).hex())))(rng.randrange(3), rng.randrange(0, 90000), rng.randrange(1, 30000)),
    "fd_truncate": lambda: (lambda slot, size: (f"fd{slot}", fd_op(slot, lambda fd: os.ftruncate(fd, size))))(rng.randrange(3), rng.randrange(0, 90000)),
    "fd_fsync": lambda: (lambda slot: (f"fd{slot}", fd_op(slot, os.fsync)))(rng.randrange(3)),
    "fd_close": lambda: (lambda slot: (f"fd{slot}", fd_op(slot, fd_close)))(rng.randrange(3)),
}
weights = {"write_new": 6, "pwrite": 4, "append": 2, "truncate": 2, "read": 6, "stat": 3, "unlink": 3, "mkdir": 2, "rmdir": 2, "listdir": 3, "rename": 3,
           "fd_open": 2, "fd_write": 3, "fd_read": 2, "fd_truncate": 1, "fd_fsync": 1, "fd_close": 2,
           "lstat": 2, "chmod": 2, "chown": 1, "utimens": 2, "symlink": 2, "readlink": 1}
names = list(weights)

def brief(result):
    """Long data results shortened to their length and a digest (a mismatch report stays readable)."""
    value = result[1]
    if isinstance(value, str) and len(value) > 64:
        return [result[0], f"{len(value) // 2} bytes, sha1 {hashlib.sha1(value.encode()).hexdigest()[:12]}"]
    return result


counts = {}
trace = open(os.environ["MODEL_TRACE"], "w", buffering=1) if os.environ.get("MODEL_TRACE") else None
for i in range(n_ops):
    op = rng.choices(names, [weights[n] for n in names])[0]
    target, fn = ops[op]()
    # Directory renames are refused on purpose (EXDEV: S3 cannot do them atomically): not part of the model.
    if op == "rename" and os.path.isdir(os.path.join(roots[1], target)):
        continue
    # The mount's root has no object to keep attributes on (EPERM, documented): only a directory in it.
    if op in ("chmod", "chown", "utimens") and os.path.realpath(os.path.join(roots[1], target)) == os.path.realpath(roots[1]):
        continue
    if trace:
        trace.write(f"{i} {op} {target}\n")
    got = [outcome(fn, root) for root in roots]
    counts[op] = counts.get(op, 0) + 1
    if got[0] != got[1]:
        print(json.dumps({"mismatch": {"step": i, "op": op, "path": target, "mount": brief(got[0]), "model": brief(got[1])}}))
        sys.exit(1)

# Close what is still open (close() is where a bucket mount uploads), then the whole trees must match.
for slot in list(fds):
    for root in roots:
        got = outcome(fd_op(slot, fd_close), root)
        if got[0] != "ok":
            print(json.dumps({"mismatch": {"step": "close", "slot": slot, "result": got}}))
            sys.exit(1)

# Finally the whole trees must match.
def snapshot(root):
    out = {}
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        out[rel + "/"] = [sorted(dirs + files), attrs(os.stat(d))]
        for f in dirs + files:
            q = os.path.join(d, f)
            st = os.lstat(q)
            if S.S_ISLNK(st.st_mode):
                out[os.path.normpath(os.path.join(rel, f))] = ["->", os.readlink(q), attrs(st)]
            elif S.S_ISREG(st.st_mode):
                with open(q, "rb") as fh:
                    out[os.path.normpath(os.path.join(rel, f))] = [fh.read().hex(), attrs(st)]
    return out

a, b = snapshot(roots[0]), snapshot(roots[1])
if a != b:
    print(json.dumps({"mismatch": {"step": "final", "onlyMount": sorted(set(a) - set(b)), "onlyModel": sorted(set(b) - set(a)),
                      "differ": sorted(k for k in set(a) & set(b) if a[k] != b[k])}}))
    sys.exit(1)
print(json.dumps({"ops": sum(counts.values()), "counts": counts, "files": sum(1 for k in b if not k.endswith("/"))}))
