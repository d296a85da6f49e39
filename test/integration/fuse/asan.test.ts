// The C core under AddressSanitizer + UBSan: a daemon process with the sanitized build serves
// every kind of request (JS path, queued large replies, C read and write paths, notifications, many
// handles) and shuts down cleanly.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forceUnmount, sh, shStatus, tempDir } from '../../helpers/fuse-mount.js';

const root = path.resolve(import.meta.dirname, '../../..');

describe('C core under AddressSanitizer', () => {
  const mnt = tempDir('gd-asan-mnt-');
  const data = tempDir('gd-asan-data-');
  let child: ChildProcess | undefined;
  afterAll(async () => {
    child?.kill('SIGKILL');
    await forceUnmount(mnt.dir);
    await sh(`mountpoint -q ${data.dir}/small && umount ${data.dir}/small || true`);
    mnt.remove();
    data.remove();
  });

  it('serves reads, writes and listings with no memory errors', async () => {
    const addon = execFileSync('bash', ['scripts/build-native-asan.sh'], { cwd: root, encoding: 'utf8' }).trim();
    const libasan = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
    // big.bin (40 MB) is opened direct_io, small.bin (5 MB) keeps the page cache: both C read paths.
    await sh(`head -c 40000000 /dev/urandom > ${data.dir}/backing.bin; head -c 5000000 ${data.dir}/backing.bin > ${data.dir}/small.bin`);
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`many/${i}.txt`] = `file ${i}\n`;
    // full.bin sits on a 1 MiB tmpfs: writes to it end in a short write, then ENOSPC.
    await sh(`: > ${data.dir}/local.bin; mkdir ${data.dir}/small && mount -t tmpfs -o size=1m gd-asan-full ${data.dir}/small && : > ${data.dir}/small/full.bin`);
    const spec = {
      files,
      backed: { 'big.bin': `${data.dir}/backing.bin`, 'small.bin': `${data.dir}/small.bin` },
      local: { 'local.bin': `${data.dir}/local.bin`, 'full.bin': `${data.dir}/small/full.bin` }, // written by the C write path
      passthrough: false,
      syncfs: true,
    };
    let stderr = '';
    let stdout = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/memfs-server.ts', mnt.dir, JSON.stringify(spec)], {
      cwd: root,
      env: { ...process.env, LD_PRELOAD: libasan, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0', GRADIENT_NATIVE_ADDON: path.join(root, addon) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child!.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
      child!.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('ready')) resolve();
      });
    });
    expect(stdout).toContain('syncfs 0 -9'); // the cache's group commit: a directory's filesystem, and EBADF
    const m = mnt.dir;
    expect(await sh(`sha256sum < ${m}/big.bin`)).toBe(await sh(`sha256sum < ${data.dir}/backing.bin`));
    expect(await sh(`sha256sum < ${m}/small.bin`)).toBe(await sh(`sha256sum < ${data.dir}/small.bin`));
    await Promise.all(Array.from({ length: 8 }, () => sh(`cat ${m}/big.bin > /dev/null`)));
    // Unaligned reads of several requests: each reply fills every buffer of its splice pipe.
    const slice = (p: string) =>
      sh(`python3 -c "import sys,hashlib; f=open(sys.argv[1],'rb',buffering=0); f.seek(1234); print(hashlib.sha256(f.read(3<<20)).hexdigest())" ${p}`);
    expect(await slice(`${m}/big.bin`)).toBe(await slice(`${data.dir}/backing.bin`));
    expect(await slice(`${m}/small.bin`)).toBe(await slice(`${data.dir}/small.bin`));
    expect(await sh(`cat ${m}/many/* | wc -l`)).toBe('200\n');
    await sh(`ls -l ${m}/many > /dev/null; find ${m} > /dev/null`);
    await sh(`dd if=/dev/urandom of=${m}/written bs=1M count=8 status=none && cmp <(cat ${m}/written) ${m}/written`);
    // Large replies from JS go through the C reply queue: O_DIRECT reads of 1 MiB each, several at once.
    await sh(`dd if=${data.dir}/backing.bin of=${m}/written bs=1M count=8 status=none`);
    const directRead = `dd if=${m}/written iflag=direct bs=1M status=none | sha256sum`;
    const want = await sh(`head -c 8388608 ${data.dir}/backing.bin | sha256sum`);
    expect(await Promise.all([0, 1, 2].map(() => sh(directRead)))).toEqual([want, want, want]);
    await sh(`rm ${m}/written; mkdir ${m}/d; rmdir ${m}/d`);
    // The C write path: whole and partial pages, unaligned offsets, writes from several processes at once.
    await sh(`dd if=${data.dir}/backing.bin of=${m}/local.bin bs=1M count=12 status=none`);
    await sh(`dd if=/dev/urandom of=${m}/local.bin bs=3333 seek=777 count=50 conv=notrunc status=none`);
    await Promise.all([0, 1, 2, 3].map((i) => sh(`dd if=/dev/urandom of=${m}/local.bin bs=100000 seek=${20 + i * 3} count=3 conv=notrunc status=none`)));
    expect(await sh(`sha256sum < ${m}/local.bin`)).toBe(await sh(`sha256sum < ${data.dir}/local.bin`));
    expect((await shStatus(`dd if=/dev/zero of=${m}/full.bin bs=384k count=8 status=none`)).stderr).toMatch(/No space left/);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child!.once('exit', resolve));
    expect(stderr).not.toMatch(/AddressSanitizer|runtime error:/);
    expect(code).toBe(0);
  }, 120_000);
});
