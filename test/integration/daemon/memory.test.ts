// The daemon's memory target with the real `gradient mount` (supervisor + serving process): a daemon in a
// cgroup with a memory limit takes a share of it by default, --memory-target wins over the config file, and
// status and metrics show the target, use by consumer and both processes' RSS. Under a small target a cold
// sequential read and a large write through a bucket entry still return every byte (the budget shrinks
// windows and part concurrency; it never fails I/O). Throughput and peak RSS are the benchmark's
// (bench/memory.ts), not asserted here.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { daemonHome } from '../../helpers/daemon-process.js';
import { memoryCgroup } from '../../helpers/memory-cgroup.js';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';

const MiB = 1024 * 1024;

const canCgroup = process.getuid?.() === 0 && (existsSync('/sys/fs/cgroup/memory') || existsSync('/sys/fs/cgroup/cgroup.controllers'));

describe.skipIf(!canCgroup)('a daemon in a cgroup with a memory limit', () => {
  const { work, mnt, settings, daemon } = daemonHome('gd-memory-cgroup-');
  let cgroup: ReturnType<typeof memoryCgroup> | undefined;

  beforeAll(async () => {
    work.create();
    cgroup = memoryCgroup(`gd-test-memory-${process.pid}`, 512 * MiB);
    daemon.opts.wrap = cgroup.wrap;
    writeFileSync(settings, '');
  }, 60_000);

  afterAll(async () => {
    await daemon.cleanup();
    await cgroup?.remove();
    work.remove();
  });

  it('takes a share of the limit as its target and shows it with both processes\' memory', async () => {
    const ready = await daemon.start();
    const procs = readFileSync(path.join(cgroup!.dir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
    expect(procs).toEqual(expect.arrayContaining([daemon.child!.pid, ready.pid]));
    // Reads work under the target: mnist's files, whole.
    expect(readFileSync(path.join(mnt, 'mnist', 't10k-labels-idx1-ubyte')).length).toBe(1508);
    const m = (await daemon.status()).memory!;
    expect(m).toMatchObject({ targetSource: 'cgroup', cgroupLimitBytes: 512 * MiB, targetBytes: 192 * MiB });
    expect(m.rssBytes).toBeGreaterThan(0);
    expect(m.peakRssBytes).toBeGreaterThanOrEqual(m.rssBytes);
    expect(m.supervisorRssBytes).toBeGreaterThan(0);
    expect(Object.keys(m.consumers)).toEqual(expect.arrayContaining(['cache.fetches', 'cache.retained', 'upload.parts', 'js.heap']));
    const text = await runCli(['status', '--socket', daemon.opts.socket], daemon.opts.env);
    expect(text.stdout).toMatch(/memory: .* resident .* \+ supervisor .*, target 192(\.0)? MiB \(a share of the cgroup's 512(\.0)? MiB\)/);
  }, 120_000);
});

describe('--memory-target on a bucket entry', () => {
  const { work, mnt, settings, daemon, writeSecret, home } = daemonHome('gd-memory-target-', { config: 'config.yaml' });
  const rgw = s3Server();
  let bucket = '';
  const cold = randomBytes(96 * MiB);

  beforeAll(async () => {
    work.create();
    bucket = await freshBucket('memory');
    await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: 'cold.bin', Body: cold }));
    writeSecret('rgw-secret', rgw.secretAccessKey);
    // The file says 1G; the flag wins.
    writeFileSync(path.join(home, 'config.yaml'), 'memory:\n  target: 1G\n');
    writeFileSync(
      settings,
      `b:\n  type: s3\n  url: s3://${bucket}\n  endpoint: ${rgw.endpoint}\n  accessKeyId: ${rgw.accessKeyId}\n  secretAccessKey: secret:rgw-secret\n`,
    );
    daemon.opts.args = ['--memory-target', '100M', '--metrics-port', '0'];
    await daemon.start();
  }, 120_000);

  afterAll(async () => {
    await daemon.cleanup();
    work.remove();
  });

  it('writes 96 MiB with one upload part at a time and reads 96 MiB cold, every byte', async () => {
    const s = await daemon.status();
    expect(s.memory).toMatchObject({ targetSource: 'flag', targetBytes: 100 * MiB });
    expect(daemon.log()).toMatch(/"uploadPartsInFlight":1/);
    const written = randomBytes(96 * MiB);
    writeFileSync(path.join(mnt, 'b', 'written.bin'), written); // returns once close() saw it uploaded
    expect((await daemon.status()).uploads).toEqual([]);
    const head = await s3Client().send(new GetObjectCommand({ Bucket: bucket, Key: 'written.bin' }));
    expect(Buffer.from(await head.Body!.transformToByteArray()).equals(written)).toBe(true);
    // A cold read: an object the daemon never read, sequentially through the mount.
    expect(readFileSync(path.join(mnt, 'b', 'cold.bin')).equals(cold)).toBe(true);
  }, 120_000);

  it('exports the target, RSS and use by consumer as Prometheus metrics', async () => {
    const port = /"metricsPort":(\d+)/.exec(daemon.log())?.[1];
    expect(port).toBeDefined();
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(body).toMatch(new RegExp(`^gradient_memory_target_bytes ${100 * MiB}$`, 'm'));
    expect(body).toMatch(/^gradient_memory_rss_bytes\{process="serving"\} \d+/m);
    expect(body).toMatch(/^gradient_memory_rss_bytes\{process="supervisor"\} \d+/m);
    expect(body).toMatch(/^gradient_memory_used_bytes\{consumer="upload.parts"\} \d+/m);
  });
});
