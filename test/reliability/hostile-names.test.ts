// Hostile names through the real `gradient mount`: bucket keys and dataset manifest paths with `..`, `.`,
// a leading `/`, empty segments, NUL, control characters, names over 255 bytes, paths over 4096 bytes,
// names equal after Unicode normalization (NFC vs NFD), a file and a directory differing only by a trailing
// slash. Each must get a clear outcome — shown as it is, skipped with a logged warning, or (a manifest) the
// version refused with a message naming the path — and creating such names through the mount must fail
// with a clear errno. Nothing may land outside the cache directory or the mount: every name carries a
// random marker, and the filesystem is searched for it afterwards.
import { ListObjectsV2Command, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { putFiles } from '../../src/catalog/put.js';
import { emptyAndDeleteBucket } from '../helpers/buckets.js';
import { daemonHome } from '../helpers/daemon-process.js';
import { pythonJson } from '../helpers/fsio.js';
import { sh } from '../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../helpers/s3.js';
import { writeTree } from '../helpers/tree.js';
import { until } from '../helpers/until.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const NFC = 'caf\u00e9';
const NFD = 'cafe\u0301';

/** Runs file operations in a child process; each gives "ok", a sha256 (read), a listing, or an errno name. */
const OPS = `
import errno, hashlib, json, os, sys
out = []
for op in json.loads(sys.argv[1]):
    kind = op[0]
    try:
        if kind == 'create':
            fd = os.open(op[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, op[2].encode())
            os.close(fd)
            out.append('ok')
        elif kind == 'mkdir':
            os.mkdir(op[1]); out.append('ok')
        elif kind == 'rename':
            os.rename(op[1], op[2]); out.append('ok')
        elif kind == 'read':
            with open(op[1], 'rb') as f: out.append(hashlib.sha256(f.read()).hexdigest())
        elif kind == 'listdir':
            out.append(sorted(os.listdir(op[1])))
        elif kind == 'walkread':  # chdir one segment at a time: the whole path may exceed PATH_MAX
            here = os.open('.', os.O_RDONLY)
            try:
                os.chdir(op[1])
                for seg in op[2][:-1]: os.chdir(seg)
                with open(op[2][-1], 'rb') as f: out.append(hashlib.sha256(f.read()).hexdigest())
            finally:
                os.fchdir(here); os.close(here)
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
    except ValueError as e:  # e.g. "embedded null byte": such a name cannot even reach the kernel
        out.append('ValueError')
print(json.dumps(out))
`;
type OpResult = string | string[];
const ops = async (list: unknown[][]): Promise<OpResult[]> => (await pythonJson(OPS, [JSON.stringify(list)])) as OpResult[];

describe('reliability: hostile names in buckets and dataset manifests', () => {
  const s = s3Server();
  const client = s3Client();
  const R = randomBytes(4).toString('hex'); // marks every hostile name, to search for strays afterwards
  // Cache and mount each in a box of their own: a stray name escaping either would land beside them.
  const { work, home, mnt, settings, daemon, writeSecret } = daemonHome('gd-hostile-', {
    mountpoint: 'mntbox/datasets',
    cacheDir: 'cachebox/cache',
    config: 'config.yaml',
  });
  const cacheParent = path.join(home, 'cachebox');
  const mntParent = path.join(home, 'mntbox');
  const config = path.join(home, 'config.yaml');
  let catalogBucket = '';
  let hostileBucket = '';
  let ds = '';
  /** settings entry name → the hostile manifest path(s) its version holds (refused versions). */
  const refused = new Map<string, string[]>();
  const goodFiles = new Map<string, string>(); // path in the good version → sha256
  let deepPath: string[] = [];
  const figures = { bucketKeys: 0, shown: 0, skippedWithWarning: 0, versionsRefused: 0, createsRefused: 0, strays: 0 };

  // The bucket's hostile keys, and how each must come out at the mount's root (a read-write mount of the
  // whole bucket, so that `..`, `.` and a leading `/` sit right at the top).
  const deepKey = [...Array.from({ length: 4 }, (_, i) => `${i}${'y'.repeat(240)}`), `deep-${R}.bin`].join('/'); // ~985 bytes: S3 allows 1024
  const bucketKeys: Record<string, string> = {
    [`../up-${R}.txt`]: 'skipped: ".." segment',
    [`./dot-${R}.txt`]: 'skipped: "." segment',
    [`/abs-${R}.txt`]: 'skipped: empty first segment',
    [`a/../../x-${R}.txt`]: 'skipped: ".." segment inside a',
    [`a//b-${R}.txt`]: 'skipped: empty segment inside a',
    [`a/ok-${R}.txt`]: 'shown',
    [`${'l'.repeat(250)}-${R}`]: 'skipped: 259 bytes',
    [`${NFC}-${R}`]: 'shown (NFC)',
    [`${NFD}-${R}`]: 'shown (NFD), a different file',
    [`same-${R}`]: 'hidden by the directory of the same name',
    [`same-${R}/`]: 'shown as a directory',
    [`same-${R}/in.txt`]: 'shown',
    [`empty-${R}/`]: 'shown as an empty directory',
    [`nl\n${R}`]: 'shown',
    [`ctl\u0001${R}`]: 'shown',
    [deepKey]: 'shown, 5 levels deep',
  };
  const body = (k: string) => `bytes of ${JSON.stringify(k)}\n`;

  /** Everything under a directory as relative paths (the test's own view, never through the mount). */
  function tree(dir: string): string[] {
    const out: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const n of readdirSync(d)) {
        const p = path.join(d, n);
        out.push(path.join(rel, n));
        if (statSync(p).isDirectory() && p !== mnt) walk(p, path.join(rel, n));
      }
    };
    walk(dir, '');
    return out.sort();
  }

  beforeAll(async () => {
    work.create();
    catalogBucket = await freshBucket('hostile-cat');
    hostileBucket = await freshBucket('hostile');
    writeSecret('rgw-key', s.secretAccessKey);
    mkdirSync(cacheParent);
    mkdirSync(mntParent);

    for (const k of Object.keys(bucketKeys)) {
      await client.send(new PutObjectCommand({ Bucket: hostileBucket, Key: k, Body: k.endsWith('/') ? '' : body(k) }));
    }
    // A key with NUL cannot even be stored (RGW refuses it); the listing must not meet one.
    await expect(client.send(new PutObjectCommand({ Bucket: hostileBucket, Key: `nul\u0000${R}`, Body: 'x' }))).rejects.toThrow();

    // Team datasets: one good version (NFC and NFD names, a path longer than PATH_MAX), and one version per
    // hostile manifest path. Our own `files put` normalizes paths, so the hostile entries are appended to
    // the journal directly, as another (buggy or malicious) client sharing the catalog could.
    const catalog = new Catalog({
      teamId: 'hostile',
      providers: [{ id: 'rgw', name: 'rgw', type: 's3', bucket: catalogBucket, endpoint: s.endpoint, region: s.region, accessKey: s.accessKeyId, secretAccessKey: s.secretAccessKey }],
      managedProviderId: 'rgw',
    });
    writeFileSync(config, `teamId: hostile\nstorageProviders:\n  - id: rgw\n    name: rgw\n    type: s3\n    bucket: ${catalogBucket}\n    endpoint: ${s.endpoint}\n    region: ${s.region}\n    accessKey: ${s.accessKeyId}\n    secretAccessKey: secret:rgw-key\nmanagedStorageProviderId: rgw\nbuckets:\n  metadataTtl: 1\n`);
    try {
      ds = (await catalog.createDataset({ name: 'hostile' })).id;
      const version = async (files: Record<string, string>, extra: string[]) => {
        const v = (await catalog.createVersion(ds)).id;
        await putFiles(catalog, `${ds}:${v}`, await writeTree(path.join(home, `src-${v}`), files));
        const blob = Buffer.from(Object.values(files)[0]!);
        if (extra.length > 0) {
          await catalog.appendJournal(ds, v, extra.map((p) => ({ path: p, size: blob.length, sha256: sha(blob), mtime: 0 })));
        }
        await catalog.commitVersion(ds, v);
        return v;
      };
      deepPath = Array.from({ length: 20 }, (_, i) => `${i}${'d'.repeat(250)}`).concat(`deep-${R}.bin`); // > 5000 bytes
      const good = { 'ok.txt': `ok ${R}\n`, [`${NFC}-${R}`]: 'NFC bytes\n', [`${NFD}-${R}`]: 'NFD bytes\n' };
      for (const [p, b] of Object.entries(good)) goodFiles.set(p, sha(b));
      goodFiles.set(deepPath.join('/'), sha(good['ok.txt']));
      const goodVersion = await version(good, [deepPath.join('/')]);
      const hostile: Record<string, string[]> = {
        'm-dotdot': [`../escape-${R}.bin`],
        'm-abs': [`/abs-${R}.bin`],
        'm-dot': [`./dot-${R}.bin`],
        'm-empty': [`a//b-${R}.bin`],
        'm-nul': [`nul\u0000${R}.bin`],
        'm-long': [`${'n'.repeat(250)}-${R}`],
        'm-trailing': [`trail-${R}/`],
      };
      let yaml = `good:\n  type: dataset\n  id: ${ds}\n  version: ${goodVersion}\n`;
      for (const [name, paths] of Object.entries(hostile)) {
        const v = await version({ 'ok.txt': `ok ${R}\n` }, paths);
        refused.set(name, paths);
        yaml += `${name}:\n  type: dataset\n  id: ${ds}\n  version: ${v}\n`;
      }
      yaml += `hb:\n  type: s3\n  url: s3://${hostileBucket}\n  endpoint: ${s.endpoint}\n  accessKeyId: ${s.accessKeyId}\n  secretAccessKey: secret:rgw-key\n`;
      writeFileSync(settings, yaml);
    } finally {
      catalog.close();
    }
    await daemon.start();
  }, 180_000);

  afterAll(async () => {
    await daemon.cleanup();
    await emptyAndDeleteBucket(catalogBucket).catch(() => undefined);
    await emptyAndDeleteBucket(hostileBucket).catch(() => undefined);
    client.destroy();
    console.log(`hostile-names: ${JSON.stringify(figures)}`);
    work.remove();
  });

  it('bucket keys: each is shown as it is or skipped with a logged warning; shown files read their own bytes', async () => {
    const [root, inA, same, empty] = (await ops([
      ['listdir', path.join(mnt, 'hb')],
      ['listdir', path.join(mnt, 'hb', 'a')],
      ['listdir', path.join(mnt, 'hb', `same-${R}`)],
      ['listdir', path.join(mnt, 'hb', `empty-${R}`)],
    ])) as string[][];
    expect(root).toEqual([deepKey.split('/')[0]!, 'a', `${NFC}-${R}`, `${NFD}-${R}`, `ctl\u0001${R}`, `empty-${R}`, `nl\n${R}`, `same-${R}`].sort());
    expect(inA).toEqual([`ok-${R}.txt`]);
    expect(same).toEqual(['in.txt']);
    expect(empty).toEqual([]);
    // Every shown file reads exactly its object's bytes: NFC and NFD are two files, not one.
    const shownFiles = [`a/ok-${R}.txt`, `${NFC}-${R}`, `${NFD}-${R}`, `same-${R}/in.txt`, `nl\n${R}`, `ctl\u0001${R}`, deepKey];
    const got = await ops(shownFiles.map((k) => ['read', path.join(mnt, 'hb', k)]));
    expect(got).toEqual(shownFiles.map((k) => sha(body(k))));
    figures.bucketKeys = Object.keys(bucketKeys).length;
    figures.shown = shownFiles.length + 3; // and the directories same-, empty-, a
    // Every key left out is named in a warning with the reason.
    const warnings = daemon
      .log()
      .split('\n')
      .filter((l) => l.includes('bucket key not shown'))
      .map((l) => JSON.parse(l) as { key: string; why: string });
    const warned = (key: string) => warnings.find((w) => w.key === key)?.why;
    expect(warned('../')).toMatch(/".." path segment/);
    expect(warned('./')).toMatch(/"\." path segment/);
    expect(warned('/')).toMatch(/empty path segment/);
    expect(warned('a/../')).toMatch(/".." path segment/);
    expect(warned('a//')).toMatch(/empty path segment/);
    expect(warned(`${'l'.repeat(250)}-${R}`)).toMatch(/longer than 255 bytes/);
    expect(warned(`same-${R}`)).toMatch(/directory of the same name/);
    figures.skippedWithWarning = 7;
  });

  it('dataset manifests: a version with a path that cannot be a file name is refused with a message naming it; a good one shows NFC, NFD and a path past PATH_MAX', async () => {
    const st = await daemon.status();
    for (const [name, paths] of refused) {
      const e = st.mounts.find((m) => m.name === name);
      expect(e?.state, name).toBe('error');
      // The message names the entry and the offending path, escaped (NUL and control characters as \u…) and bounded.
      expect(e?.lastError, name).toMatch(new RegExp(`settings\\.yaml:\\d+:\\d+: ${name}: cannot mount: invalid path in manifest`));
      expect(e?.lastError, name).toContain(JSON.stringify(paths[0]!).slice(1, 40));
      expect(e!.lastError!.length, name).toBeLessThan(600);
      expect(e?.lastError, name).not.toContain('\u0000');
    }
    figures.versionsRefused = refused.size;
    const [root, good] = (await ops([['listdir', mnt], ['listdir', path.join(mnt, 'good')]])) as string[][];
    expect(root).toEqual(['good', 'hb', 'mnist']);
    expect(good).toEqual([deepPath[0]!, `${NFC}-${R}`, `${NFD}-${R}`, 'ok.txt'].sort());
    const reads = await ops([
      ['read', path.join(mnt, 'good', `${NFC}-${R}`)],
      ['read', path.join(mnt, 'good', `${NFD}-${R}`)],
      ['walkread', path.join(mnt, 'good'), deepPath],
      ['read', path.join(mnt, 'good', ...deepPath)], // the whole path is longer than PATH_MAX
    ]);
    expect(reads).toEqual([goodFiles.get(`${NFC}-${R}`), goodFiles.get(`${NFD}-${R}`), goodFiles.get(deepPath.join('/')), 'ENAMETOOLONG']);
  });

  it('creating hostile names through the mount fails with a clear errno; NFC and NFD create two objects', async () => {
    const w = path.join(mnt, 'hb', `w-${R}`);
    const long = (c: string, n = 256) => c.repeat(n);
    // Four levels of 250-byte names fit S3's 1024-byte keys (w-<R>/ + 4 × 251 = 1014 bytes); a fifth level, or a
    // file of 22 bytes in the fourth, does not.
    const nested = [1, 2, 3, 4, 5].map((i) => `${i}${'q'.repeat(249)}`);
    const level = (n: number) => path.join(w, ...nested.slice(0, n));
    expect(Buffer.byteLength(`w-${R}/${nested.slice(0, 4).join('/')}/`)).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(`w-${R}/${nested.slice(0, 4).join('/')}/f-${'f'.repeat(20)}`)).toBeGreaterThan(1024);
    const results = await ops([
      ['mkdir', w],
      ['create', path.join(w, 'ok'), 'ok'],
      ['create', path.join(w, long('n')), 'x'], // 256 bytes: past NAME_MAX, within FUSE's 1024
      ['create', path.join(w, long('n', 1100)), 'x'], // past FUSE's own limit: the kernel refuses it
      ['mkdir', path.join(w, long('m'))],
      ['rename', path.join(w, 'ok'), path.join(w, long('r'))],
      ['mkdir', level(1)],
      ['mkdir', level(2)],
      ['mkdir', level(3)],
      ['mkdir', level(4)],
      ['mkdir', level(5)], // its marker's key would pass 1024 bytes
      ['create', path.join(level(4), `f-${'f'.repeat(20)}`), 'x'], // and so would this file's key
      ['create', path.join(w, ...Array.from({ length: 17 }, (_, i) => `${i}${'p'.repeat(250)}`), 'f'), 'x'], // > PATH_MAX
      ['create', path.join(w, `nul\u0000${R}`), 'x'],
      ['create', path.join(w, `${NFC}`), 'NFC'],
      ['create', path.join(w, `${NFD}`), 'NFD'],
      ['create', path.join(w, `tab\tnl\n${R}`), 'ctl'],
      ['create', `${w}/x/../y-${R}`, 'y'], // `..` is resolved by the kernel (x does not exist), never sent to us
      ['mkdir', path.join(w, 'ok')],
    ]);
    expect(results).toEqual([
      'ok',
      'ok',
      'ENAMETOOLONG',
      'ENAMETOOLONG',
      'ENAMETOOLONG',
      'ENAMETOOLONG',
      'ok',
      'ok',
      'ok',
      'ok',
      'ENAMETOOLONG',
      'ENAMETOOLONG',
      'ENAMETOOLONG',
      'ValueError',
      'ok',
      'ok',
      'ok',
      'ENOENT',
      'EEXIST',
    ]);
    figures.createsRefused = results.filter((r) => r !== 'ok').length;
    // The bucket holds exactly what was created, NFC and NFD as two objects with their own bytes.
    const keys: string[] = [];
    const list = await client.send(new ListObjectsV2Command({ Bucket: hostileBucket, Prefix: `w-${R}/` }));
    for (const o of list.Contents ?? []) keys.push(o.Key!);
    const markers = [1, 2, 3, 4].map((n) => `w-${R}/${nested.slice(0, n).join('/')}/`);
    expect(keys.sort()).toEqual([`w-${R}/`, `w-${R}/ok`, ...markers, `w-${R}/${NFC}`, `w-${R}/${NFD}`, `w-${R}/tab\tnl\n${R}`].sort());
    const text = async (k: string) => (await client.send(new GetObjectCommand({ Bucket: hostileBucket, Key: k }))).Body!.transformToString();
    expect([await text(`w-${R}/${NFC}`), await text(`w-${R}/${NFD}`)]).toEqual(['NFC', 'NFD']);
    // Nothing is left waiting for an upload that can never succeed.
    await until('no pending upload', () => daemon.status(), (st) => st.uploads.length === 0);
  });

  it('nothing landed outside the cache directory or the mount: no stray name anywhere, cache names are all ours', async () => {
    expect(readdirSync(cacheParent)).toEqual(['cache']);
    expect(readdirSync(mntParent)).toEqual(['datasets']);
    // Every name the cache holds is one of its own (hex ids, fixed names): none comes from a key or a path.
    // (known-refs/: a dataset ref's last known answer, named by a hash of the team and the ref; embedded/: the
    // embedded sample's files, named by their sha256.)
    const own = /^(index\.sqlite(-wal|-shm)?|lock|data|tmp|staging|known-refs|embedded|[0-9a-f]{2}|[0-9a-f]{64}(\.json)?|[0-9a-f]{24}\.(data|json))$/;
    const strange = tree(path.join(cacheParent, 'cache')).filter((p) => !own.test(path.basename(p)));
    expect(strange).toEqual([]);
    // No file named after a hostile key or path exists anywhere under /tmp (the mount itself excluded).
    // (The test's own source trees for the dataset versions, src-*, hold such names on purpose.)
    const strays = (await sh(`find /tmp -xdev \\( -path ${mnt} -o -path '${home}/src-*' \\) -prune -o -name '*${R}*' -print 2>/dev/null || true`))
      .split('\n')
      .filter(Boolean);
    figures.strays = strays.length;
    expect(strays).toEqual([]);
  });
});
