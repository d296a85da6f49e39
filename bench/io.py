# The benchmarks' reader: I/O on a mount runs in this child process (python3: no JIT warm-up, threads that
# release the GIL around each syscall), and the clock runs inside it, so interpreter start-up is not timed.
# Prints one JSON line: what was read and `secs`.
#   io.py seq <file> [hash]                        1 MiB reads from start to end (hash: and its sha256)
#   io.py small <dir> <threads> [prelisted]        list the directory, read every file (prelisted: list untimed)
#   io.py random <file> <offsets-file> <threads>   4 KiB preads at the listed offsets
#   io.py epoch <root> <paths-file> <procs>        a data loader's first epoch: walk <root> (the dataset's
#                                                  index), then read every listed path once, in the listed
#                                                  order dealt round-robin to <procs> reader processes
#   io.py loop <hashes-file> <secs>                open, read and close the listed files ("<sha256> <path>"
#                                                  lines) over and over for <secs>: errors, wrong reads and
#                                                  the longest wait for one file (what a reader feels)
import hashlib, json, os, sys, time
from concurrent.futures import ThreadPoolExecutor

mode = sys.argv[1]
t = time.perf_counter()
if mode == 'seq':
    buf = bytearray(1 << 20); n = 0
    h = hashlib.sha256() if len(sys.argv) > 3 and sys.argv[3] == 'hash' else None
    with open(sys.argv[2], 'rb', buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k: break
            n += k
            if h: h.update(memoryview(buf)[:k])
    out = {'bytes': n}
    if h: out['sha256'] = h.hexdigest()
elif mode == 'loop':
    files = [l.split(' ', 1) for l in open(sys.argv[2]).read().splitlines() if l]
    end = t + float(sys.argv[3])
    ops = errors = wrong = 0; longest = 0.0; last = time.perf_counter(); first_error = None
    while time.perf_counter() < end:
        for want, p in files:
            try:
                with open(p, 'rb') as f: ok = hashlib.sha256(f.read()).hexdigest() == want
                wrong += not ok
            except OSError as e:
                errors += 1; first_error = first_error or str(e)
            now = time.perf_counter(); longest = max(longest, now - last); last = now; ops += 1
    out = {'ops': ops, 'errors': errors, 'wrong': wrong, 'longestMs': longest * 1000, 'firstError': first_error}
elif mode == 'small':
    d, threads = sys.argv[2], int(sys.argv[3])
    names = os.listdir(d)
    if len(sys.argv) > 4 and sys.argv[4] == 'prelisted':
        t = time.perf_counter()
    def one(name):
        with open(os.path.join(d, name), 'rb') as f: return len(f.read())
    with ThreadPoolExecutor(threads) as ex: n = sum(ex.map(one, names))
    out = {'files': len(names), 'bytes': n}
elif mode == 'random':
    offs = [int(x) for x in open(sys.argv[3]).read().split()]
    threads = int(sys.argv[4])
    t = time.perf_counter()
    fd = os.open(sys.argv[2], os.O_RDONLY)
    with ThreadPoolExecutor(threads) as ex: n = sum(ex.map(lambda o: len(os.pread(fd, 4096, o)), offs))
    os.close(fd)
    out = {'reads': len(offs), 'bytes': n}
elif mode == 'epoch':
    root, procs = sys.argv[2], int(sys.argv[4])
    paths = open(sys.argv[3]).read().split()
    t = time.perf_counter()
    walked = sum(len(files) for _, _, files in os.walk(root))
    walk_secs = time.perf_counter() - t
    pipes = []
    for w in range(procs):
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                buf = bytearray(1 << 20); n = 0; files = 0
                for p in paths[w::procs]:
                    with open(os.path.join(root, p), 'rb', buffering=0) as f:
                        while True:
                            k = f.readinto(buf)
                            if not k: break
                            n += k
                    files += 1
                os.write(wfd, json.dumps({'files': files, 'bytes': n}).encode())
                os._exit(0)
            except BaseException as e:
                print(f'reader {w}: {e}', file=sys.stderr)
                os._exit(1)
        os.close(wfd)
        pipes.append((pid, r))
    files = n = 0; failed = 0
    for pid, r in pipes:
        data = b''
        while True:
            chunk = os.read(r, 4096)
            if not chunk: break
            data += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        if status != 0 or not data:
            failed += 1
            continue
        o = json.loads(data)
        files += o['files']; n += o['bytes']
    if failed:
        sys.exit(f'{failed} reader processes failed')
    out = {'walked': walked, 'walkSecs': walk_secs, 'files': files, 'bytes': n}
out['secs'] = time.perf_counter() - t
print(json.dumps(out))
