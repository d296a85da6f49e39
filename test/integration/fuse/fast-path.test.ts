// The fast read path: a handle bound to a local file is served by kernel passthrough (when the
// kernel offers it) or by the C threads, never by JavaScript. Byte-exact on 1 GiB both ways.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemFs } from '../../helpers/memfs.js';
import { mountForTest, sh, tempDir } from '../../helpers/fuse-mount.js';

const GiB = 1 << 30;

describe('fast read path on a 1 GiB file', () => {
  const tmp = tempDir('gd-fast-');
  const backing = `${tmp.dir}/backing.bin`;
  let expected = '';

  beforeAll(async () => {
    await sh(`head -c ${GiB} /dev/urandom > ${backing}`);
    expected = (await sh(`sha256sum < ${backing}`)).split(' ')[0]!;
  }, 120_000);
  afterAll(() => tmp.remove());

  for (const passthrough of [true, false]) {
    it(`reads byte-exact with passthrough ${passthrough ? 'on' : 'forced off'}, without entering JS`, async () => {
      const fs = new MemFs({ ttl: 60, keepCache: true });
      fs.addBackedFile('data/big.bin', backing);
      fs.addBackedFile('data/alias.bin', backing); // a second inode on the same backing file
      const m = await mountForTest(fs, { passthrough });
      try {
        expect(m.session.kernel.passthrough).toBe(passthrough);
        const [a, b] = await Promise.all([
          sh(`sha256sum < ${m.mountpoint}/data/big.bin`),
          sh(`dd if=${m.mountpoint}/data/alias.bin bs=4k skip=1000 count=3 status=none | sha256sum`),
        ]);
        expect(a.split(' ')[0]).toBe(expected);
        expect(b.split(' ')[0]).toBe((await sh(`dd if=${backing} bs=4k skip=1000 count=3 status=none | sha256sum`)).split(' ')[0]);
        // Two readers of one inode at once share the backing (the kernel refuses mixed modes).
        const both = await Promise.all([0, 1].map(() => sh(`tail -c 1000000 ${m.mountpoint}/data/big.bin | sha256sum`)));
        expect(both[0]).toBe(both[1]);
        // mmap(MAP_SHARED) works on both paths (direct_io handles need DIRECT_IO_ALLOW_MMAP).
        const mmapHash = (p: string) => sh(`python3 -c "import mmap,hashlib,sys; f=open(sys.argv[1],'rb'); m=mmap.mmap(f.fileno(),0,flags=mmap.MAP_SHARED,prot=mmap.PROT_READ); print(hashlib.sha256(m[123456789:133456789]).hexdigest())" ${p}`);
        expect(await mmapHash(`${m.mountpoint}/data/big.bin`)).toBe(await mmapHash(backing));
        expect(fs.calls.get('read') ?? 0).toBe(0);
        const stats = m.session.stats();
        if (passthrough) expect(stats.fastReads).toBe(0);
        else expect(stats.fastBytes).toBeGreaterThanOrEqual(GiB);
        expect(stats.openHandles).toBe(0);
      } finally {
        await m.cleanup();
      }
    }, 120_000);
  }

  it('serves unaligned reads that fill a whole splice pipe, on direct_io and page-cache handles', async () => {
    const fs = new MemFs({ ttl: 60, keepCache: true });
    fs.addBackedFile('big.bin', backing);
    for (const directIoFromBytes of [0, Infinity]) {
      const m = await mountForTest(fs, { passthrough: false, directIoFromBytes });
      try {
        // Offset 1234 + reads of several requests: each request's data touches one page more than it
        // holds, so header + data take every buffer of the pipe.
        const slice = (p: string) =>
          sh(`python3 -c "import sys,hashlib; f=open(sys.argv[1],'rb',buffering=0); f.seek(1234); print(hashlib.sha256(f.read(5<<20)).hexdigest())" ${p}`);
        expect(await slice(`${m.mountpoint}/big.bin`)).toBe(await slice(backing));
        expect(m.session.stats().fastBytes).toBeGreaterThanOrEqual(5 << 20);
      } finally {
        await m.cleanup();
      }
    }
  }, 60_000);

  it('leaves the backing file in its page cache after a page-cache read through the C path', async () => {
    // Splicing with SPLICE_F_MOVE into the FUSE page cache lets the kernel steal the backing file's
    // clean pages (moved out of its page cache, not copied): a cache file written and fsynced, as the
    // cache does, lost all its pages to the first read through the mount.
    const small = `${tmp.dir}/small.bin`;
    await sh(`head -c ${24 << 20} ${backing} > ${small}; sync ${small}`);
    const hash = await sh(`sha256sum < ${small}`);
    const resident = async () => Number((await sh(`fincore -b -n -o RES ${small}`)).trim());
    expect(await resident()).toBeGreaterThanOrEqual((24 << 20) * 0.9);
    const fs = new MemFs({ ttl: 60, keepCache: true });
    fs.addBackedFile('small.bin', small);
    const m = await mountForTest(fs, { passthrough: false, directIoFromBytes: Infinity });
    try {
      expect(await sh(`sha256sum < ${m.mountpoint}/small.bin`)).toBe(hash);
      expect(await resident()).toBeGreaterThanOrEqual((24 << 20) * 0.9);
      expect(m.session.stats().fastBytes).toBeGreaterThanOrEqual(24 << 20);
    } finally {
      await m.cleanup();
    }
  }, 60_000);

  it('falls back to read() through JS when the filesystem asks for it, byte-exact', async () => {
    const fs = new MemFs({ ttl: 60, noFastPath: true });
    fs.addBackedFile('big.bin', backing);
    const m = await mountForTest(fs);
    try {
      expect((await sh(`head -c 100000000 ${m.mountpoint}/big.bin | sha256sum`)).split(' ')[0]).toBe(
        (await sh(`head -c 100000000 ${backing} | sha256sum`)).split(' ')[0],
      );
      expect(fs.calls.get('read') ?? 0).toBeGreaterThan(0);
    } finally {
      await m.cleanup();
    }
  }, 120_000);
});

describe('fast write path: writes landed in a local file by C threads', () => {
  const tmp = tempDir('gd-fastw-');
  afterAll(() => tmp.remove());

  it('a write the local file cannot take fails with its errno, after a short write of what did land', async () => {
    // A 1 MiB tmpfs: the third 384 KiB write fits only in part (a short write), the fourth finds it full.
    const small = `${tmp.dir}/small-fs`;
    await sh(`mkdir -p ${small} && mount -t tmpfs -o size=1m gd-test-full ${small} && : > ${small}/local.bin`);
    try {
      const fs = new MemFs({ ttl: 60 });
      const ino = fs.addLocalFile('w.bin', `${small}/local.bin`);
      const m = await mountForTest(fs, { passthrough: false });
      try {
        const out = await sh(`python3 -c "
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
sizes = []
try:
    for i in range(8): sizes.append(os.write(fd, b'x' * (384 << 10)))
except OSError as e:
    print(errno.errorcode[e.errno], sum(sizes), os.fstat(fd).st_size, min(sizes))
os.close(fd)" ${m.mountpoint}/w.bin`);
        const [code, written, fstatSize, shortest] = out.trim().split(' ');
        expect(code).toBe('ENOSPC');
        expect(Number(shortest)).toBeLessThan(384 << 10);
        const landed = Number((await sh(`stat -c %s ${small}/local.bin`)).trim());
        expect(Number(written)).toBe(landed);
        expect(Number(fstatSize)).toBe(landed);
        expect(fs.writtenReports.filter(([i]) => i === ino).reduce((sum, [, , n]) => sum + n, 0)).toBe(landed);
        expect(fs.calls.get('write') ?? 0).toBe(0);
      } finally {
        await m.cleanup();
      }
    } finally {
      await sh(`umount ${small}`);
    }
  }, 60_000);

  for (const directIo of [false, true]) {
    it(`lands sequential, random, appending and concurrent writes byte-exact (direct_io ${directIo ? 'on' : 'off'}), reporting each one before the writer sees it done`, async () => {
      const local = `${tmp.dir}/local-${directIo}.bin`;
      const model = `${tmp.dir}/model-${directIo}.bin`;
      await sh(`: > ${local}; head -c ${64 << 20} /dev/urandom > ${tmp.dir}/src.bin`);
      const fs = new MemFs({ ttl: 60 });
      const ino = fs.addLocalFile('w.bin', local);
      if (directIo) {
        const open = fs.open.bind(fs);
        fs.open = async (ctx, i, flags) => ({ ...(await open(ctx, i, flags)), directIo: true });
      }
      const m = await mountForTest(fs, { passthrough: false });
      try {
        const w = `${m.mountpoint}/w.bin`;
        await sh(`dd if=${tmp.dir}/src.bin of=${w} bs=1M status=none`);
        expect(await sh(`cmp ${tmp.dir}/src.bin ${local} && stat -c %s ${w}`)).toBe(`${64 << 20}\n`);
        // The same operations on the mount and on a model file: pwrite at random offsets (holes past the end
        // included), O_APPEND, ftruncate, and the size seen by fstat and stat right after each write, which
        // must already count it (written() reaches the filesystem before the writer returns).
        const ops = `
import os, random, sys
random.seed(7)
def run(path):
    fd = os.open(path, os.O_RDWR)
    sizes = []
    for i in range(300):
        r = random.random()
        if r < 0.8:
            off = random.randrange(0, 80 << 20); n = random.randrange(1, 3 << 20)
            os.pwrite(fd, random.randbytes(n), off)
        elif r < 0.9:
            a = os.open(path, os.O_WRONLY | os.O_APPEND); os.write(a, random.randbytes(random.randrange(1, 70000))); os.close(a)
        else:
            os.ftruncate(fd, random.randrange(0, 80 << 20))
        sizes.append((os.fstat(fd).st_size, os.stat(path).st_size))
    os.close(fd)
    return sizes
state = random.getstate()
a = run(sys.argv[1]); random.setstate(state); b = run(sys.argv[2])
print('same sizes' if a == b else 'sizes differ: %r' % next((x, y) for x, y in zip(a, b) if x != y))
`;
        await sh(`cp ${local} ${model}`);
        expect(await sh(`python3 -c "${ops.replace(/"/g, '\\"')}" ${w} ${model}`)).toBe('same sizes\n');
        expect(await sh(`cmp ${local} ${model} && cmp ${w} ${model} && echo same`)).toBe('same\n');
        // Four writers at once, to disjoint ranges of one file.
        await Promise.all([0, 1, 2, 3].map((i) => sh(`dd if=${tmp.dir}/src.bin of=${w} bs=1M skip=${i * 4} seek=${i * 4} count=4 conv=notrunc status=none`)));
        expect(await sh(`cmp -n ${16 << 20} ${tmp.dir}/src.bin ${local} && echo same`)).toBe('same\n');
        expect(fs.calls.get('write') ?? 0).toBe(0);
        const reported = fs.writtenReports.filter(([i]) => i === ino).reduce((sum, [, , n]) => sum + n, 0);
        const stats = m.session.stats();
        expect(stats.fastWritten).toBe(reported);
        expect(stats.fastWritten).toBeGreaterThanOrEqual((64 + 16) << 20);
        expect(stats.openHandles).toBe(0);
      } finally {
        await m.cleanup();
      }
    }, 120_000);
  }
});
