// The tools people run, on a bucket mount (RGW, real FUSE): a tree with modes, owners, times and symlinks goes
// in and comes back out byte- and metadata-exact through rsync -a, tar and cp -a; git clones, checks and
// commits; and s3fs (from apt; skipped with a message when absent) reads what we wrote and we read what it
// wrote, both mounting the same bucket. Every file operation runs in a child process: this process serves.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../../src/cache/index.js';
import { BucketView } from '../../../src/fs/bucket/bucket-view.js';
import { S3Store } from '../../../src/storage/s3/store.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { forceUnmount, mountForTest, sh, shStatus, tempDir, type Mounted } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';

const TTL_MS = 1000;
const have = (tool: string) => ['/usr/bin', '/bin', '/usr/local/bin'].some((d) => existsSync(path.join(d, tool)));

/**
 * Everything a tree says, one line per entry: path, type, mode, owner, group, size (not for directories),
 * mtime to the nanosecond, symlink target; plus each file's sha256.
 */
const describeTree = (dir: string) =>
  sh(
    `cd ${dir} && find . -mindepth 1 \\( -type d -printf '%P|d|%m|%U|%G|-|%T@|\\n' \\) -o -printf '%P|%y|%m|%U|%G|%s|%T@|%l\\n' | LC_ALL=C sort` +
      ` && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum`,
  );

/** A source tree with what tools must carry: modes (setgid, exec, private), owners, fractional times, symlinks. */
async function makeTree(dir: string): Promise<void> {
  await sh(`set -e; cd ${dir}
    mkdir -p src/sub/deep src/empty src/private
    printf 'hello\\n' > src/a.txt; head -c 300000 /dev/urandom > src/sub/blob.bin; : > src/sub/deep/zero
    printf '#!/bin/sh\\necho tool-ok\\n' > src/run.sh; chmod 755 src/run.sh
    chmod 600 src/sub/blob.bin; chmod 2750 src/sub; chmod 700 src/private; chmod 444 src/a.txt
    printf s > src/private/secret; chown 1234:5678 src/private/secret src/sub/deep/zero
    ln -s a.txt src/link; ln -s sub/deep src/dirlink; ln -s ../nowhere src/sub/dangling
    find src -mindepth 1 -depth -exec touch -h -d '2021-06-07 08:09:10.123456789 UTC' {} +
    touch -d '2020-01-02 03:04:05 UTC' src/run.sh`);
}

describe('tools on a bucket mount: round trips (RGW, real FUSE)', () => {
  const client = s3Client();
  const s = s3Server();
  let bucket: string;
  let work: { dir: string; remove: () => void };
  let cache: Cache;
  let mounted: Mounted;
  let view: BucketView;
  let m: string;
  let want: string;

  beforeAll(async () => {
    bucket = await freshBucket('tools');
    work = tempDir('gd-tools-');
    cache = await openCache({ dir: path.join(work.dir, 'cache'), maxBytes: 1 << 30 });
    const store = new S3Store({
      bucket,
      prefix: 'ours',
      endpoint: s.endpoint,
      region: s.region,
      credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    });
    view = new BucketView({ store, cache, metadataTtlMs: TTL_MS, write: { stagingDir: cache.stagingDir } });
    await view.start();
    mounted = await mountForTest(view, { allowOther: true });
    m = mounted.mountpoint;
    await makeTree(work.dir);
    want = await describeTree(path.join(work.dir, 'src'));
  }, 60_000);

  afterAll(async () => {
    await mounted?.cleanup();
    view?.close();
    await cache.close();
    work.remove();
    await emptyAndDeleteBucket(bucket);
    client.destroy();
  });

  it.runIf(have('rsync'))('rsync -a in and out: exact; a second rsync finds nothing to do', async () => {
    await sh(`rsync -a --numeric-ids ${work.dir}/src/ ${m}/rsync/`);
    expect(await describeTree(`${m}/rsync`)).toBe(want);
    expect(await sh(`rsync -ai --numeric-ids ${work.dir}/src/ ${m}/rsync/`)).toBe('');
    await sh(`rsync -a --numeric-ids ${m}/rsync/ ${work.dir}/rsync-out/`);
    expect(await describeTree(`${work.dir}/rsync-out`)).toBe(want);
  }, 120_000);

  it('tar x into the mount and tar c out of it: exact (pax headers carry nanoseconds)', async () => {
    await sh(`mkdir ${m}/tar && tar -C ${work.dir}/src --format=posix -cf - . | tar -C ${m}/tar --numeric-owner -xpf -`);
    await sh(`touch -d '2021-06-07 08:09:10.123456789 UTC' ${m}/tar && mkdir ${work.dir}/tar-out`);
    expect(await describeTree(`${m}/tar`)).toBe(want);
    await sh(`tar -C ${m}/tar --format=posix -cf - . | tar -C ${work.dir}/tar-out --numeric-owner -xpf -`);
    expect(await describeTree(`${work.dir}/tar-out`)).toBe(want);
  }, 120_000);

  it('cp -a of a tree with symlinks, in and out: exact; the script runs from the mount', async () => {
    await sh(`cp -a ${work.dir}/src ${m}/cp && cp -a ${m}/cp ${work.dir}/cp-out`);
    expect(await describeTree(`${m}/cp`)).toBe(want);
    expect(await describeTree(`${work.dir}/cp-out`)).toBe(want);
    expect(await sh(`${m}/cp/run.sh && cat ${m}/cp/link`)).toBe('tool-ok\nhello\n');
  }, 120_000);

  it('git clone onto the mount, git fsck, a commit, and the clone is clean', async () => {
    const env = 'GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e';
    await sh(`set -e; cd ${work.dir} && git init -q -b main repo && cd repo && cp -a ../src/. . && git add -A && ${env} git commit -qm one
      chmod 644 a.txt; printf more >> a.txt; git add -A && ${env} git commit -qm two`);
    await sh(`git clone -q ${work.dir}/repo ${m}/clone`);
    const g = `git -C ${m}/clone`;
    expect((await shStatus(`${g} fsck --full --strict`)).code).toBe(0);
    expect(await sh(`${g} status --porcelain`)).toBe('');
    expect(await sh(`${m}/clone/run.sh && readlink ${m}/clone/link && stat -c %a ${m}/clone/run.sh`)).toBe('tool-ok\na.txt\n755\n');
    await sh(`set -e; cd ${m}/clone && printf three > new.txt && ln -s new.txt newlink && git add -A && ${env} git commit -qm three && git mv a.txt b.txt && ${env} git commit -qm four`);
    expect((await shStatus(`${g} fsck --full --strict`)).code).toBe(0);
    expect(await sh(`${g} status --porcelain; ${g} log --format=%s | head -2; ${g} cat-file -p HEAD:newlink`)).toBe('four\nthree\nnew.txt');
  }, 180_000);

  describe.runIf(have('s3fs'))('with s3fs on the same bucket', () => {
    let s3fsDir: { dir: string; remove: () => void };

    beforeAll(async () => {
      s3fsDir = tempDir('gd-s3fs-');
      const passwd = path.join(work.dir, 's3fs.passwd');
      writeFileSync(passwd, `${s.accessKeyId}:${s.secretAccessKey}\n`, { mode: 0o600 });
      // Loopback only; no stat cache, so that it sees what we write at once.
      await sh(
        `s3fs ${bucket} ${s3fsDir.dir} -o url=${s.endpoint} -o use_path_request_style -o passwd_file=${passwd} ` +
          `-o stat_cache_expire=0 -o allow_other -o endpoint=${s.region}`,
      );
      for (let i = 0; i < 50 && (await shStatus(`mountpoint -q ${s3fsDir.dir}`)).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    }, 60_000);

    afterAll(async () => {
      await sh(`fusermount3 -u ${s3fsDir.dir} || fusermount -u ${s3fsDir.dir} || umount -l ${s3fsDir.dir}`).catch(() => undefined);
      await forceUnmount(s3fsDir.dir);
      s3fsDir.remove();
    });

    it('s3fs reads what we wrote: modes, owners, times, symlinks', async () => {
      await sh(`cp -a ${work.dir}/src ${m}/for-s3fs`);
      expect(await describeTree(`${s3fsDir.dir}/ours/for-s3fs`)).toBe(want);
    }, 120_000);

    it('we read what s3fs wrote', async () => {
      await sh(`cp -a ${work.dir}/src ${s3fsDir.dir}/ours/by-s3fs`);
      await new Promise((r) => setTimeout(r, TTL_MS + 100));
      expect(await describeTree(`${m}/by-s3fs`)).toBe(want);
    }, 120_000);
  });
});
