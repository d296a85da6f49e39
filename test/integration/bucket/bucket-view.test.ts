// A bucket mounted read-write through the real FUSE engine, on RGW, with the real cache. Every file
// operation runs in a child process (sh): this process serves the mount and must never block on it.
// The SDK is the oracle for what the bucket holds.
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../../src/cache/index.js';
import { BucketView } from '../../../src/fs/bucket/bucket-view.js';
import { S3Store } from '../../../src/storage/s3/store.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { mountForTest, sh, shStatus, tempDir, type Mounted } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';

const TTL_MS = 1000;
const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('bucket view on RGW (read-write, write-through)', () => {
  const client = s3Client();
  const s = s3Server();
  let bucket: string;
  let cacheDir: { dir: string; remove: () => void };
  let cache: Cache;
  let mounted: Mounted | undefined;
  let view: BucketView;
  let proxy: FaultProxy | undefined;

  const get = async (key: string): Promise<Buffer> => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  };
  const keys = async (prefix = ''): Promise<string[]> => {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key!).sort();
  };
  const put = (key: string, body: string | Buffer) => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  async function mount(opts: { endpoint?: string; prefix?: string; readOnly?: boolean; anonymous?: boolean } = {}): Promise<string> {
    const store = new S3Store({
      bucket,
      prefix: opts.prefix ?? 'data',
      endpoint: opts.endpoint ?? s.endpoint,
      region: s.region,
      credentials: opts.anonymous ? { kind: 'anonymous' } : { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      maxAttempts: 2,
      backoff: { baseMs: 10, capMs: 50 },
    });
    view = new BucketView({
      store,
      cache,
      metadataTtlMs: TTL_MS,
      ...(opts.readOnly ? {} : { write: { stagingDir: cache.stagingDir, retryBackoff: { baseMs: 200, capMs: 500 } } }),
    });
    await view.start();
    mounted = await mountForTest(view);
    return mounted.mountpoint;
  }

  beforeAll(async () => {
    bucket = await freshBucket('bview');
    cacheDir = tempDir('gd-bcache-');
    cache = await openCache({ dir: cacheDir.dir, maxBytes: 4 * 2 ** 30 }); // (4 << 30 is 0 in JavaScript)
  });

  afterEach(async () => {
    await mounted?.cleanup();
    mounted = undefined;
    view?.close();
    await proxy?.close();
    proxy = undefined;
  });

  afterAll(async () => {
    await cache.close();
    cacheDir.remove();
    await emptyAndDeleteBucket(bucket);
    client.destroy();
  });

  it('writes through: close() returns once the bucket holds the bytes, and reads back what the SDK wrote', async () => {
    const mnt = await mount();
    const local = tempDir('gd-bsrc-');
    try {
      const payload = randomBytes(5 << 20);
      await writeFile(path.join(local.dir, 'p.bin'), payload);
      await sh(`mkdir -p ${mnt}/sub && cp ${local.dir}/p.bin ${mnt}/sub/p.bin && printf hello > ${mnt}/hello.txt`);
      // No waiting: cp and the shell returned from close(), so the objects must be there now.
      expect(sha(await get('data/sub/p.bin'))).toBe(sha(payload));
      expect((await get('data/hello.txt')).toString()).toBe('hello');
      expect(await keys('data/')).toEqual(['data/hello.txt', 'data/sub/', 'data/sub/p.bin']);

      const fromSdk = randomBytes(3 << 20);
      await put('data/sub/sdk.bin', fromSdk);
      await new Promise((r) => setTimeout(r, TTL_MS + 100)); // the listing of sub/ was cached a moment ago
      expect((await sh(`sha256sum < ${mnt}/sub/sdk.bin`)).split(' ')[0]).toBe(sha(fromSdk));
      expect((await sh(`ls ${mnt}/sub`)).split('\n').filter(Boolean)).toEqual(['p.bin', 'sdk.bin']);
      // Stat comes from the listing: size and a sane mtime, no HEAD per file.
      const [size] = (await sh(`stat -c '%s' ${mnt}/sub/sdk.bin`)).split('\n');
      expect(Number(size)).toBe(fromSdk.length);
    } finally {
      local.remove();
    }
  });

  it('writes a 1 GiB file whose bytes the bucket holds when close() returns', async () => {
    const mnt = await mount();
    const out = await sh(`head -c 1073741824 /dev/urandom | tee >(sha256sum > ${cacheDir.dir}/../gd-1g.sha) > ${mnt}/big.bin; sleep 0.2; cat ${cacheDir.dir}/../gd-1g.sha; rm -f ${cacheDir.dir}/../gd-1g.sha`);
    const expected = out.split(' ')[0]!;
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'data/big.bin' }));
    expect(head.ContentLength).toBe(1 << 30);
    const body = (await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'data/big.bin' }))).Body as NodeJS.ReadableStream;
    const h = createHash('sha256');
    for await (const chunk of body) h.update(chunk as Buffer);
    expect(h.digest('hex')).toBe(expected);
    // Nothing stays staged once the upload is done.
    expect((await readdir(cache.stagingDir)).filter((n) => !n.startsWith('.'))).toEqual([]);
  }, 180_000);

  it('a large file goes up while it is written; a change to bytes already sent still reaches the bucket whole', async () => {
    const mnt = await mount();
    const work = tempDir('gd-eager-');
    // The writer pauses after 48 MiB (3 parts) until the test has looked at the bucket, then maybe rewrites
    // bytes at the start (already sent), then closes and prints the sha256 of what the file must hold.
    const script = `
import hashlib, os, sys, time
path, sig, mode = sys.argv[1:4]
data = bytearray(os.urandom(48 << 20))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
view = memoryview(data)
done = 0
while done < len(data):
    done += os.write(fd, view[done:done + (1 << 20)])
open(sig + ".written", "w").close()
while not os.path.exists(sig + ".go"):
    time.sleep(0.02)
if mode == "rewrite-head":
    os.pwrite(fd, b"X" * 100, 10)
    data[10:110] = b"X" * 100
os.close(fd)
print(hashlib.sha256(data).hexdigest())
`;
    try {
      await writeFile(path.join(work.dir, 'w.py'), script);
      for (const mode of ['append-only', 'rewrite-head']) {
        const sig = path.join(work.dir, mode);
        const writer = sh(`python3 ${work.dir}/w.py ${mnt}/${mode}.bin ${sig} ${mode}`);
        // (The signal files are local, not on the mount: checking them here cannot block the mount.)
        for (let t0 = Date.now(); !existsSync(`${sig}.written`) && Date.now() - t0 < 60_000; ) {
          await new Promise((r) => setTimeout(r, 50));
        }
        // Before close(): a multipart upload is open for the key and parts of it are in the bucket already.
        let parts = 0;
        for (let t0 = Date.now(); parts === 0 && Date.now() - t0 < 20_000; await new Promise((r) => setTimeout(r, 100))) {
          const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `data/${mode}.bin` }));
          const upload = uploads.Uploads?.[0];
          if (!upload) continue;
          const listed = await client.send(new ListPartsCommand({ Bucket: bucket, Key: upload.Key!, UploadId: upload.UploadId! }));
          parts = listed.Parts?.length ?? 0;
        }
        expect(parts, mode).toBeGreaterThan(0);
        expect(await keys(`data/${mode}`)).toEqual([]); // invisible until close()
        await writeFile(`${sig}.go`, '');
        const expected = (await writer).trim();
        expect(sha(await get(`data/${mode}.bin`)), mode).toBe(expected);
        // Nothing is left behind: the eager upload was completed or aborted.
        const left = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `data/${mode}.bin` }));
        expect(left.Uploads ?? [], mode).toEqual([]);
      }
    } finally {
      work.remove();
    }
  }, 120_000);

  it('a seeded random-write workload matches a model file, through the mount and in the bucket', async () => {
    const mnt = await mount();
    const model = tempDir('gd-model-');
    try {
      await put('data/rw.bin', randomBytes(3 << 20));
      await sh(`cp ${mnt}/rw.bin ${model.dir}/rw.bin`); // the model starts from the same bytes
      const script = `
import os, random, sys
random.seed(42)
fds = [os.open(p, os.O_RDWR) for p in sys.argv[1:]]
for i in range(400):
    op = random.random()
    if op < 0.75:
        off = random.randrange(0, 4 << 20); data = os.urandom(random.randrange(1, 200000))
        for fd in fds: os.pwrite(fd, data, off)
    elif op < 0.85:
        size = random.randrange(0, 5 << 20)
        for fd in fds: os.ftruncate(fd, size)
    else:
        off = random.randrange(0, 5 << 20); n = random.randrange(1, 100000)
        got = [os.pread(fd, n, off) for fd in fds]
        assert got[0] == got[1], f"read at {off} differs"
    if i % 100 == 99:
        os.fsync(fds[0])
for fd in fds: os.close(fd)
`;
      await writeFile(path.join(model.dir, 'rw.py'), script);
      await sh(`python3 ${model.dir}/rw.py ${mnt}/rw.bin ${model.dir}/rw.bin`);
      const want = (await sh(`sha256sum < ${model.dir}/rw.bin`)).split(' ')[0];
      expect((await sh(`sha256sum < ${mnt}/rw.bin`)).split(' ')[0]).toBe(want);
      expect(sha(await get('data/rw.bin'))).toBe(want);
      // Writes through a shared mapping (numpy.memmap style) reach the bucket too: the staged handle is
      // direct_io, and the mapping's dirty pages come back as writes on the C write path.
      const mmapWrite = `python3 -c "import mmap,os,sys; fd=os.open(sys.argv[1],os.O_RDWR); m=mmap.mmap(fd,0); m[1000:1010]=b'0123456789'; m[-5:]=b'mmap!'; m.flush(); m.close(); os.close(fd)"`;
      await sh(`${mmapWrite} ${mnt}/rw.bin && ${mmapWrite} ${model.dir}/rw.bin`);
      const mapped = (await sh(`sha256sum < ${model.dir}/rw.bin`)).split(' ')[0];
      expect((await sh(`sha256sum < ${mnt}/rw.bin`)).split(' ')[0]).toBe(mapped);
      expect(sha(await get('data/rw.bin'))).toBe(mapped);
      // Append and truncate by path too.
      await sh(`printf tail >> ${mnt}/rw.bin && truncate -s 10 ${mnt}/hello2.txt && cat ${model.dir}/rw.bin > /dev/null`);
      expect((await get('data/rw.bin')).subarray(-4).toString()).toBe('tail');
      expect(await get('data/hello2.txt')).toEqual(Buffer.alloc(10));
    } finally {
      model.remove();
    }
  }, 60_000);

  it('rename, unlink, mkdir and rmdir map onto the bucket; a directory rename is EXDEV and mv copes', async () => {
    const mnt = await mount();
    await sh(`mkdir ${mnt}/d && printf one > ${mnt}/d/a && mv ${mnt}/d/a ${mnt}/d/b`);
    expect(await keys('data/d')).toEqual(['data/d/', 'data/d/b']);
    expect((await get('data/d/b')).toString()).toBe('one');
    const rmdirFull = await shStatus(`rmdir ${mnt}/d`);
    expect(rmdirFull.code).not.toBe(0);
    expect(rmdirFull.stderr).toMatch(/not empty/i);
    // rename(2) of a directory: EXDEV, which mv answers by copying.
    const py = await shStatus(`python3 -c "import os; os.rename('${mnt}/d', '${mnt}/e')"`);
    expect(py.stderr).toMatch(/Invalid cross-device link/);
    await sh(`mv ${mnt}/d ${mnt}/e`);
    expect(await keys('data/d')).toEqual([]);
    expect((await get('data/e/b')).toString()).toBe('one');
    await sh(`rm ${mnt}/e/b && rmdir ${mnt}/e`);
    expect(await keys('data/e')).toEqual([]);
    const gone = await shStatus(`cat ${mnt}/e/b`);
    expect(gone.stderr).toMatch(/No such file/);
    // Renaming over an existing file replaces it.
    await sh(`printf new > ${mnt}/x && printf old > ${mnt}/y && mv ${mnt}/x ${mnt}/y && cat ${mnt}/y`);
    expect((await get('data/y')).toString()).toBe('new');
    expect(await keys('data/x')).toEqual([]);
  });

  it('reading a directory in listing order fetches the next files ahead, each once; a shuffled order fetches only what it reads', async () => {
    const n = 120;
    const names = Array.from({ length: n }, (_, i) => `s${String(i).padStart(3, '0')}`);
    await Promise.all(names.flatMap((f) => [put(`data/ordered/${f}`, `o ${f}`), put(`data/shuffled/${f}`, `s ${f}`)]));
    proxy = await startFaultProxy(s.endpoint);
    const mnt = await mount({ endpoint: proxy.endpoint });
    const gets = (dir: string) => proxy!.requests.filter((r) => r.startsWith(`GET /${bucket}/data/${dir}/`)).map((r) => r.split('/').pop()!);
    const cached = (dir: string) => cache.list().filter((e) => e.complete && e.identity.includes(`"${dir}/`)).length;
    // Ten files in listing order: the next ones are fetched before they are opened.
    await sh(`cd ${mnt}/ordered && ls > /dev/null && for f in ${names.slice(0, 10).join(' ')}; do cat $f > /dev/null; done`);
    for (let i = 0; i < 100 && cached('ordered') <= 10; i++) await new Promise((r) => setTimeout(r, 20));
    expect(cached('ordered')).toBeGreaterThan(10);
    // The rest, with 8 readers in order: every file arrives whole and was fetched exactly once.
    const out = await sh(
      `cd ${mnt}/ordered && python3 -c "import os; from concurrent.futures import ThreadPoolExecutor as P; print(sum(P(8).map(lambda f: len(open(f, 'rb').read()), sorted(os.listdir('.')))))"`,
    );
    expect(Number(out)).toBe(n * 6);
    expect(gets('ordered').sort()).toEqual(names);
    // Shuffled: nothing fetched but what is read.
    const shuffled = [97, 12, 58, 3, 110, 41, 76, 25, 89, 64, 30, 118, 7, 50].map((i) => names[i]!);
    await sh(`cd ${mnt}/shuffled && ls > /dev/null && for f in ${shuffled.join(' ')}; do cat $f > /dev/null; done`);
    expect(gets('shuffled').sort()).toEqual([...shuffled].sort());
    expect(cached('shuffled')).toBe(shuffled.length);
  });

  it('sees changes made by another client within the TTL', async () => {
    const mnt = await mount();
    await put('data/other.txt', 'v1');
    await new Promise((r) => setTimeout(r, TTL_MS + 100));
    expect(await sh(`cat ${mnt}/other.txt`)).toBe('v1');
    await put('data/other.txt', 'version two');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'data/appeared.txt', Body: 'x' }));
    const t0 = Date.now();
    let seen = '';
    while (Date.now() - t0 < 5000 && seen !== 'version two') {
      seen = (await shStatus(`cat ${mnt}/other.txt`)).stdout;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toBe('version two');
    expect(Date.now() - t0).toBeLessThan(TTL_MS * 2 + 1000);
    expect(await sh(`ls ${mnt}`)).toContain('appeared.txt');
  });

  it('when the bucket becomes unreachable during an upload close() fails, the data is kept and listed, and the upload completes later', async () => {
    proxy = await startFaultProxy(s.endpoint);
    const mnt = await mount({ endpoint: proxy.endpoint });
    await sh(`ls ${mnt} > /dev/null`);
    // The bucket goes away in the middle of a multipart upload: the first writes pass, then every write fails.
    let writes = 0;
    proxy.plan = (method) => (method === 'GET' || method === 'HEAD' || ++writes <= 2 ? 'pass' : 'reset');
    const payload = randomBytes(40 << 20);
    const local = tempDir('gd-bsrc-');
    try {
      await writeFile(path.join(local.dir, 'kept.bin'), payload);
      const r = await shStatus(`cp ${local.dir}/kept.bin ${mnt}/kept.bin`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Input\/output error/);
      expect(writes).toBeGreaterThan(2); // the upload had started: parts were sent before the failure
      expect(await keys('data/kept')).toEqual([]); // nothing partial in the bucket
      const pending = view.uploadStatus();
      expect(pending).toHaveLength(1);
      expect(pending[0]).toMatchObject({ key: 'kept.bin', bytes: payload.length });
      expect(pending[0]!.lastError).toMatch(/reach|socket|ECONNRESET/i);
      // The mount still shows the data that was written.
      expect((await sh(`sha256sum < ${mnt}/kept.bin`)).split(' ')[0]).toBe(sha(payload));
      proxy.plan = () => 'pass';
      const t0 = Date.now();
      while (view.uploadStatus().length > 0 && Date.now() - t0 < 10_000) await new Promise((res) => setTimeout(res, 100));
      expect(view.uploadStatus()).toEqual([]);
      expect(sha(await get('data/kept.bin'))).toBe(sha(payload));
    } finally {
      local.remove();
    }
  }, 30_000);

  it('a read-only mount refuses changes with EROFS', async () => {
    const mnt = await mount({ readOnly: true });
    await put('data/ro.txt', 'ro');
    await new Promise((r) => setTimeout(r, TTL_MS + 100));
    expect(await sh(`cat ${mnt}/ro.txt`)).toBe('ro');
    for (const cmd of [`printf x > ${mnt}/new`, `printf x >> ${mnt}/ro.txt`, `mkdir ${mnt}/dd`, `rm ${mnt}/ro.txt`]) {
      const r = await shStatus(cmd);
      expect(r.stderr, cmd).toMatch(/Read-only file system/);
    }
  });
});
