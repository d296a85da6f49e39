// POSIX on a bucket mount, through the kernel (default_permissions on), on RGW: modes, owners, times,
// symlinks and the refusals, checked as root and as unprivileged users (numeric ids through setpriv: nothing
// to create or clean up). Every refusal here is one docs/ARCHITECTURE.md's bucket table lists. Every file
// operation runs in a child process: this process serves the mount.
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../../src/cache/index.js';
import { BucketView } from '../../../src/fs/bucket/bucket-view.js';
import { S3Store } from '../../../src/storage/s3/store.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { mountForTest, sh, shStatus, tempDir, type Mounted } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';

const TTL_MS = 1000;
const ALICE = 61001;
const BOB = 61002;
/** Runs a shell command as an unprivileged user (uid = gid), with umask 022. */
const as = (uid: number, cmd: string) =>
  `setpriv --reuid=${uid} --regid=${uid} --clear-groups env HOME=/tmp bash -c ${JSON.stringify(`umask 022; ${cmd}`)}`;
/** stat's type, octal mode, owner, group and size. */
const st = (p: string) => `stat -c '%F %a %u %g %s' ${p}`;

describe('POSIX on a bucket mount (RGW, real FUSE)', () => {
  const client = s3Client();
  const s = s3Server();
  let bucket: string;
  let work: { dir: string; remove: () => void };
  let cache: Cache;
  let mounted: Mounted | undefined;
  let view: BucketView | undefined;
  let heads: string[] = [];

  async function mount(prefix = 'posix'): Promise<string> {
    const store = new S3Store({
      bucket,
      prefix,
      endpoint: s.endpoint,
      region: s.region,
      credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    });
    const head = store.head.bind(store);
    store.head = (key, opts) => (heads.push(key), head(key, opts));
    view = new BucketView({ store, cache, metadataTtlMs: TTL_MS, attributeStore: cache.attributes, write: { stagingDir: cache.stagingDir } });
    await view.start();
    mounted = await mountForTest(view, { allowOther: true });
    return mounted.mountpoint;
  }
  async function unmount(): Promise<void> {
    await mounted?.cleanup();
    mounted = undefined;
    view?.close();
    view = undefined;
  }
  const meta = async (key: string) => (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata ?? {};

  beforeAll(async () => {
    bucket = await freshBucket('posix');
    work = tempDir('gd-posix-');
    cache = await openCache({ dir: path.join(work.dir, 'cache'), maxBytes: 1 << 30 });
  });
  afterEach(unmount);
  afterAll(async () => {
    await cache.close();
    work.remove();
    await emptyAndDeleteBucket(bucket);
    client.destroy();
  });

  it('creat, mkdir, chmod, chown, truncate, unlink, utimensat as an unprivileged user; the kernel enforces the modes', async () => {
    const m = await mount('conform');
    await sh(`mkdir ${m}/home && chown ${ALICE}:${ALICE} ${m}/home && chmod 755 ${m}/home`);
    const h = `${m}/home`;
    // Alice creates with umask 022: 0644 files and 0755 directories, owned by her.
    await sh(as(ALICE, `printf data > ${h}/f && mkdir ${h}/d && mkdir -m 700 ${h}/private`));
    expect(await sh(`${st(`${h}/f`)}; ${st(`${h}/d`)}; ${st(`${h}/private`)}`)).toBe(
      `regular file 644 ${ALICE} ${ALICE} 4\ndirectory 755 ${ALICE} ${ALICE} 4096\ndirectory 700 ${ALICE} ${ALICE} 4096\n`,
    );
    expect(await meta('conform/home/f')).toEqual({ mode: String(0o100644), uid: String(ALICE), gid: String(ALICE) });
    expect(await meta('conform/home/private/')).toEqual({ mode: String(0o40700), uid: String(ALICE), gid: String(ALICE) });

    // Bob may read a 0644 file, not write it, not create in her 0755 directory, not enter her 0700 one.
    expect(await sh(as(BOB, `cat ${h}/f`))).toBe('data');
    for (const cmd of [`printf x >> ${h}/f`, `touch ${h}/new`, `ls ${h}/private`, `chmod 777 ${h}/f`, `rm ${h}/f`]) {
      const r = await shStatus(as(BOB, cmd));
      expect(r.code, cmd).not.toBe(0);
      expect(r.stderr, cmd).toMatch(/Permission denied|Operation not permitted/);
    }
    // Her own chmod, truncate, utimensat; chown to Bob is root's alone.
    await sh(as(ALICE, `chmod 600 ${h}/f && truncate -s 2 ${h}/f && touch -d '2001-02-03 04:05:06.123456789 UTC' ${h}/f`));
    expect(await sh(`${st(`${h}/f`)}; stat -c %y ${h}/f`)).toBe(`regular file 600 ${ALICE} ${ALICE} 2\n2001-02-03 04:05:06.123456789 +0000\n`);
    expect((await shStatus(as(BOB, `cat ${h}/f`))).stderr).toMatch(/Permission denied/);
    expect((await shStatus(as(ALICE, `chown ${BOB} ${h}/f`))).stderr).toMatch(/Operation not permitted/);
    await sh(`chown ${BOB}:${BOB} ${h}/f`);
    expect(await sh(as(BOB, `cat ${h}/f`))).toBe('da');
    expect(await meta('conform/home/f')).toMatchObject({ mode: String(0o100600), uid: String(BOB), mtime: '981173106.123456789' });
    // Removing needs write permission on the directory, not on the file.
    await sh(as(ALICE, `rm -f ${h}/f && rmdir ${h}/d ${h}/private`));
    expect(await sh(`ls -A ${h}`)).toBe('');
  }, 60_000);

  it('symlinks: create, readlink, follow (relative, dangling, to a directory), lstat, rename and unlink', async () => {
    const m = await mount('links');
    await sh(`mkdir -p ${m}/a/b && printf target > ${m}/a/b/t && cd ${m}/a && ln -s b/t rel && ln -s nowhere dangling && ln -s b dirlink && ln -s ${m}/a/b/t abs`);
    expect(await sh(`cd ${m}/a && readlink rel dangling dirlink && cat rel dirlink/t abs && stat -c '%F %a %s' rel`)).toBe(
      `b/t\nnowhere\nb\ntargettargettargetsymbolic link 777 3\n`,
    );
    expect((await shStatus(`cat ${m}/a/dangling`)).stderr).toMatch(/No such file or directory/);
    expect(await sh(`find ${m}/a -type l | sort`)).toBe(['abs', 'dangling', 'dirlink', 'rel'].map((n) => `${m}/a/${n}\n`).join(''));
    expect(await meta('links/a/rel')).toMatchObject({ mode: String(0o120777) });
    // Renamed, a link stays a link; moved to another directory, its relative target dangles, as on a disk.
    await sh(`mv ${m}/a/rel ${m}/a/rel2 && mv ${m}/a/dirlink ${m}/moved && mv -T ${m}/a/abs ${m}/a/dangling`);
    expect(await sh(`readlink ${m}/a/rel2 ${m}/moved ${m}/a/dangling; cat ${m}/a/rel2 ${m}/a/dangling`)).toBe(`b/t\nb\n${m}/a/b/t\ntargettarget`);
    expect((await shStatus(`ls ${m}/moved/`)).stderr).toMatch(/No such file or directory/);
    expect(await sh(`ls ${m}/a; ls ${m}`)).toBe('b\ndangling\nrel2\na\nmoved\n');
    await sh(`rm ${m}/moved ${m}/a/dangling`);
    expect(await sh(`ls -A ${m}/a; cat ${m}/a/b/t`)).toBe('b\nrel2\ntarget'); // unlinking a link leaves its target
  }, 60_000);

  it('rename over files, onto directories and of directories; hard links, device nodes; FIFOs are stored', async () => {
    const m = await mount('rename');
    await sh(`cd ${m} && printf one > a && printf two > b && mkdir d && printf x > d/x && chmod 640 a`);
    await sh(`mv -f ${m}/a ${m}/b`);
    expect(await sh(`cat ${m}/b; ${st(`${m}/b`)}; ls ${m}`)).toBe('oneregular file 640 0 0 3\nb\nd\n');
    expect((await shStatus(`python3 -c "import os; os.rename('${m}/b', '${m}/d')"`)).stderr).toMatch(/IsADirectoryError/);
    // A directory rename is EXDEV: mv copies it, modes kept.
    await sh(`chmod 750 ${m}/d && mv ${m}/d ${m}/e`);
    expect(await sh(`${st(`${m}/e`)}; cat ${m}/e/x; ls ${m}`)).toBe('directory 750 0 0 4096\nxb\ne\n');
    expect((await shStatus(`python3 -c "import os; os.rename('${m}/e', '${m}/f')"`)).stderr).toMatch(/Invalid cross-device link/);
    expect((await shStatus(`ln ${m}/b ${m}/hard`)).stderr).toMatch(/Operation not permitted/);
    expect((await shStatus(`mknod ${m}/null c 1 3`)).stderr).toMatch(/Operation not permitted/);
    await sh(`mkfifo -m 600 ${m}/pipe`);
    expect(await sh(st(`${m}/pipe`))).toBe('fifo 600 0 0 0\n');
    expect(await meta('rename/pipe')).toMatchObject({ mode: String(0o10600) });
  }, 60_000);

  it('a script made executable runs; the execute bit is enforced', async () => {
    const m = await mount('exec');
    await sh(`printf '#!/bin/sh\\necho ran as $(id -u)\\n' > ${m}/run.sh`);
    expect((await shStatus(`${m}/run.sh`)).stderr).toMatch(/Permission denied/);
    await sh(`chmod 755 ${m}/run.sh`);
    expect(await sh(`${m}/run.sh && ${as(ALICE, `${m}/run.sh`)}`)).toBe(`ran as 0\nran as ${ALICE}\n`);
    await sh(`chmod 744 ${m}/run.sh`);
    expect((await shStatus(as(ALICE, `${m}/run.sh`))).stderr).toMatch(/Permission denied/);
  }, 60_000);

  it('a large file written in parts carries its mode and owner; cp -a sets times and mode before close(): one copy after', async () => {
    const m = await mount('large');
    const src = path.join(work.dir, 'large.bin');
    await sh(`head -c ${40 << 20} /dev/urandom > ${src} && chmod 750 ${src} && chown 7:8 ${src} && touch -d '2010-01-01 00:00:00.25 UTC' ${src}`);
    await sh(`cp -a ${src} ${m}/big.bin && ${as(ALICE, `umask 077; head -c ${20 << 20} /dev/zero > ${m}/alice.bin`)}`);
    expect(await meta('large/big.bin')).toMatchObject({ mode: String(0o100750), uid: '7', gid: '8', mtime: '1262304000.250000000' });
    expect(await meta('large/alice.bin')).toEqual({ mode: String(0o100600), uid: String(ALICE), gid: String(ALICE) });
    expect(await sh(`cmp ${src} ${m}/big.bin && stat -c '%a %u %g %s %y' ${m}/big.bin`)).toBe(`750 7 8 ${40 << 20} 2010-01-01 00:00:00.250000000 +0000\n`);
  }, 120_000);

  it('modes, owners and times survive the metadata TTL and a restart; the restart HEADs nothing again', async () => {
    let m = await mount('survive');
    await sh(`cd ${m} && mkdir -m 711 d && printf x > d/f && chmod 604 d/f && chown 7:8 d/f && touch -d '1999-12-31 23:59:59.5 UTC' d/f && ln -s f d/l`);
    const want = `directory 711 0 0 4096\nregular file 604 7 8 1\n1999-12-31 23:59:59.500000000 +0000\nsymbolic link 777 0 0 1\n`;
    const look = (root: string) => sh(`${st(`${root}/d`)}; ${st(`${root}/d/f`)}; stat -c %y ${root}/d/f; ${st(`${root}/d/l`)}`);
    expect(await look(m)).toBe(want);
    await new Promise((r) => setTimeout(r, TTL_MS * 2));
    expect(await look(m)).toBe(want);
    await unmount();
    await cache.close(); // a daemon restart: a new process opens the cache again
    cache = await openCache({ dir: path.join(work.dir, 'cache'), maxBytes: 1 << 30 });
    m = await mount('survive');
    heads = [];
    expect(await sh(`ls -l ${m}/d | cut -c1-10`)).toBe('total 1\n-rw----r--\nlrwxrwxrwx\n');
    expect(heads.sort()).toEqual(['d', 'd/']); // looking d up; the files' attributes came from the cache's index
    expect(await look(m)).toBe(want);
  }, 60_000);
});
