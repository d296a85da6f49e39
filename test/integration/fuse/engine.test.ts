// The FUSE engine mounted for real, driven with ordinary tools (in child processes) and syscalls.
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemFs } from '../../helpers/memfs.js';
import { mountForTest, sh, shStatus, type Mounted } from '../../helpers/fuse-mount.js';

describe('FUSE engine on an in-memory filesystem', () => {
  const fs = new MemFs({ ttl: 1 });
  let m: Mounted;
  let mnt: string;

  beforeAll(async () => {
    fs.addFile('hello.txt', 'hello world\n');
    fs.addFile('ro.txt', 'read only\n', { readOnly: true });
    fs.addFile('dir/sub/deep.txt', 'deep\n');
    fs.addFile('unicode/ünï cödé 🚀.txt', 'utf8 name\n');
    fs.mkdirp('big');
    for (let i = 0; i < 10_000; i++) fs.addFile(`big/f${String(i).padStart(5, '0')}`, `${i}\n`);
    m = await mountForTest(fs);
    mnt = m.mountpoint;
  });
  afterAll(async () => {
    await m?.cleanup();
  });

  it('negotiates the protocol with READDIRPLUS and requests as large as one splice pipe carries', () => {
    expect(m.session.kernel.minor).toBeGreaterThanOrEqual(31);
    expect(m.session.kernel.readdirplus).toBe(true);
    // A reply (header + data at any offset) must fit one pipe: 254 pages in a 1 MiB pipe (the default
    // fs.pipe-max-size), the kernel's 256 when pipes may grow to 2 MiB (or we hold CAP_SYS_RESOURCE).
    const pipeMax = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
    if (pipeMax >= 2 << 20) expect(m.session.kernel.maxWrite).toBe(256 * 4096);
    else expect([254 * 4096, 256 * 4096]).toContain(m.session.kernel.maxWrite);
  });

  it('lists, stats and reads with ls, stat, cat and find', async () => {
    const ls = await sh(`ls -la ${mnt}`);
    expect(ls).toMatch(/-rw-r--r-- +1 root root +12 .* hello\.txt/);
    expect(ls).toMatch(/dr-?w?x.* dir/);
    expect(await sh(`stat -c '%s %F %a' ${mnt}/hello.txt`)).toBe('12 regular file 644\n');
    expect(await sh(`stat -c '%F' ${mnt}/dir`)).toBe('directory\n');
    expect(await sh(`cat ${mnt}/dir/sub/deep.txt`)).toBe('deep\n');
    expect(await sh(`cat '${mnt}/unicode/ünï cödé 🚀.txt'`)).toBe('utf8 name\n');
    const found = (await sh(`cd ${mnt} && find dir unicode | sort`)).trim().split('\n');
    expect(found).toEqual(['dir', 'dir/sub', 'dir/sub/deep.txt', 'unicode', 'unicode/ünï cödé 🚀.txt']);
    expect(await sh(`dd if=${mnt}/hello.txt bs=1 skip=6 count=5 status=none`)).toBe('world');
  });

  it('lists a 10k-entry directory completely, with d_type, in few requests', async () => {
    const before = fs.calls.get('readdirplus') ?? 0;
    const names = (await sh(`ls -f ${mnt}/big`)).trim().split('\n').filter((n) => n !== '.' && n !== '..');
    expect(names.length).toBe(10_000);
    expect(new Set(names).size).toBe(10_000);
    expect(await sh(`find ${mnt}/big -type f | wc -l`)).toBe('10000\n');
    expect(await sh(`cat ${mnt}/big/f09999`)).toBe('9999\n');
    // Entries come back in pages of up to the kernel's buffer size, not one request per entry.
    expect((fs.calls.get('readdirplus') ?? 0) - before).toBeLessThan(200);
  });

  it('creates, writes, appends, truncates, renames, unlinks, makes and removes directories', async () => {
    await sh(`mkdir ${mnt}/work && echo one > ${mnt}/work/a.txt && echo two >> ${mnt}/work/a.txt`);
    expect(await sh(`cat ${mnt}/work/a.txt`)).toBe('one\ntwo\n');
    await sh(`dd if=/dev/zero of=${mnt}/work/zeros bs=64k count=40 status=none`);
    expect(await sh(`stat -c %s ${mnt}/work/zeros`)).toBe(String(64 * 1024 * 40) + '\n');
    await sh(`truncate -s 100 ${mnt}/work/zeros`);
    expect(await sh(`stat -c %s ${mnt}/work/zeros`)).toBe('100\n');
    await sh(`mv ${mnt}/work/a.txt ${mnt}/work/b.txt`);
    expect(await sh(`ls ${mnt}/work`)).toBe('b.txt\nzeros\n');
    await sh(`mkdir ${mnt}/work/sub && mv ${mnt}/work/b.txt ${mnt}/work/sub/`);
    expect(await sh(`cat ${mnt}/work/sub/b.txt`)).toBe('one\ntwo\n');
    await sh(`rm ${mnt}/work/sub/b.txt ${mnt}/work/zeros && rmdir ${mnt}/work/sub ${mnt}/work`);
    expect(await sh(`ls ${mnt}`)).not.toContain('work');
  });

  it('returns the right errno for each failure', async () => {
    const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: NodeJS.ErrnoException) => e.code);
    expect(await code(fsp.readFile(path.join(mnt, 'missing')))).toBe('ENOENT');
    expect(await code(fsp.readdir(path.join(mnt, 'hello.txt')))).toBe('ENOTDIR');
    expect(await code(fsp.readFile(path.join(mnt, 'hello.txt', 'x')))).toBe('ENOTDIR');
    expect(await code(fsp.readFile(path.join(mnt, 'dir')))).toBe('EISDIR');
    expect(await code(fsp.writeFile(path.join(mnt, 'ro.txt'), 'x'))).toBe('EROFS');
    expect(await code(fsp.mkdir(path.join(mnt, 'dir')))).toBe('EEXIST');
    expect(await code(fsp.rmdir(path.join(mnt, 'dir')))).toBe('ENOTEMPTY');
    expect(await code(fsp.unlink(path.join(mnt, 'dir')))).toBe('EISDIR');
    expect(await code(fsp.symlink('hello.txt', path.join(mnt, 'link')))).toBe('EPERM');
    expect(await code(fsp.link(path.join(mnt, 'hello.txt'), path.join(mnt, 'hard')))).toBe('EPERM');
    const xattr = await shStatus(`python3 -c "import os; os.getxattr('${mnt}/hello.txt', 'user.x')"`);
    expect(xattr.stderr).toMatch(/Operation not supported|Errno 95/);
  });

  it('counts the requests that reach JS by operation; ioctls (isatty of every Python open) never do', async () => {
    const before = m.session.requestCounts();
    const out = await sh(
      `python3 -c "import fcntl, termios, errno\nf = open('${mnt}/hello.txt', 'rb')\ntry: fcntl.ioctl(f, termios.TCGETS, bytes(64))\nexcept OSError as e: print(errno.errorcode[e.errno])\nprint(f.read().decode(), end='')"`,
    );
    expect(out).toBe('ENOTTY\nhello world\n');
    const after = m.session.requestCounts();
    expect(after.IOCTL).toBeUndefined();
    expect(after.OPEN).toBe((before.OPEN ?? 0) + 1);
    expect(after.LOOKUP).toBeGreaterThanOrEqual(before.LOOKUP ?? 0);
  });

  it('serves concurrent readers', async () => {
    const outs = await Promise.all(Array.from({ length: 16 }, (_, i) => sh(`cat ${mnt}/big/f0${String(i).padStart(4, '0')}`)));
    outs.forEach((o, i) => expect(o).toBe(`${i}\n`));
  });

  it('answers statfs', async () => {
    expect(await sh(`stat -f -c '%S %b' ${mnt}`)).toBe(`4096 ${1 << 20}\n`);
  });
});

describe('notifications while live', () => {
  it('invalidates cached attributes and entries on request', async () => {
    const fs = new MemFs({ ttl: 3600 });
    const ino = fs.addFile('f.txt', 'short');
    const m = await mountForTest(fs);
    try {
      expect(await sh(`stat -c %s ${m.mountpoint}/f.txt`)).toBe('5\n');
      await fs.write({} as never, ino, 0, 0, Buffer.from('much longer now'));
      // With a one-hour attribute TTL the kernel keeps the old size until told otherwise.
      expect(await sh(`stat -c %s ${m.mountpoint}/f.txt`)).toBe('5\n');
      m.session.invalidateInode(ino);
      await new Promise((r) => setTimeout(r, 100));
      expect(await sh(`stat -c %s ${m.mountpoint}/f.txt`)).toBe('15\n');

      await fs.rename({} as never, 1, 'f.txt', 1, 'g.txt', 0);
      expect((await shStatus(`stat ${m.mountpoint}/f.txt`)).code).toBe(0); // cached entry
      m.session.invalidateEntry(1, 'f.txt');
      await new Promise((r) => setTimeout(r, 100));
      expect((await shStatus(`stat ${m.mountpoint}/f.txt`)).code).not.toBe(0);
      expect(await sh(`cat ${m.mountpoint}/g.txt`)).toBe('much longer now');
    } finally {
      await m.cleanup();
    }
  });

  it('tells the filesystem when the kernel forgets inodes', async () => {
    const fs = new MemFs({ ttl: 0 });
    for (let i = 0; i < 50; i++) fs.addFile(`x/${i}`, 'x');
    const m = await mountForTest(fs);
    try {
      await sh(`ls -l ${m.mountpoint}/x > /dev/null`);
      await sh('echo 2 > /proc/sys/vm/drop_caches'); // reclaim dentries and inodes → FORGET
      await new Promise((r) => setTimeout(r, 300));
      expect(fs.forgotten).toBeGreaterThan(0);
      expect(m.session.stats().knownInodes).toBeLessThan(50);
    } finally {
      await m.cleanup();
    }
  });
});
