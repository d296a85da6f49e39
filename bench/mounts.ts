// Mounts for the benchmarks, each fresh (new cache directory, new process) and each closed whatever happens:
//   ours    the real `gradient mount` daemon (daemon-process.ts): a bucket as a `type: s3` entry of
//           settings.yaml, or a committed team dataset as a `type: dataset` entry; cache bound in config.yaml
//   rclone  `rclone mount --vfs-cache-mode full`, its own cache dir and the same size bound
//   s3fs    `s3fs -o use_cache=<dir>` (no size bound: only free space)
// Every Mounted names the process that serves it, so that its CPU can be read from /proc/<pid>/stat.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { logTail, mountsUnder, startDaemonProcess, type DaemonProcess, type RequestCounts } from './daemon-process.js';
import { procCpu, sh } from './lib.js';

export type Tool = 'ours' | 'rclone' | 's3fs';
export const TOOLS: readonly Tool[] = ['ours', 'rclone', 's3fs'];

/** A bucket on an S3 endpoint, as every tool is told of it. */
export interface BucketTarget {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** PEM of the CA that signed an https endpoint's certificate (AWS_CA_BUNDLE, --ca-cert, CURL_CA_BUNDLE). */
  caFile?: string;
}

export interface Mounted {
  tool: Tool;
  /** The directory showing the bucket's (or the dataset version's) root. */
  mnt: string;
  /** The serving process. */
  pid: number;
  /** Ours: the daemon's cache directory (config.yaml `cache.dir`). */
  cacheDir?: string;
  /** CPU seconds the serving process has used so far. */
  cpu(): number;
  /** Ours: the daemon's request counts (undefined if its status has none); peers: undefined. */
  requests(): Promise<RequestCounts | undefined>;
  /** Unmounts, stops the process, removes its cache. */
  close(): Promise<void>;
}

export interface MountSetOptions {
  /** Cache bound for ours and rclone, bytes. */
  cacheBytes: number;
  /** Extra sections of our config.yaml (e.g. `buckets: { metadataTtl }`). */
  config?: Record<string, unknown>;
  log?: (msg: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every mount a benchmark makes, under one work directory; closeAll() (or Ctrl-C) leaves nothing behind. */
export class MountSet {
  private readonly live = new Set<Mounted>();
  private readonly children = new Set<ChildProcess>();
  private readonly secrets: string;
  private seq = 0;

  constructor(
    readonly work: string,
    private readonly opts: MountSetOptions,
  ) {
    this.secrets = path.join(work, 'secrets');
    for (const d of ['mnt', 'caches', 'homes', 'secrets']) mkdirSync(path.join(work, d), { recursive: true, mode: 0o700 });
  }

  /** The environment of our daemon and of `gradient` commands run for the benchmark (catalog, secrets). */
  env(home: string, caFile?: string): NodeJS.ProcessEnv {
    return {
      HOME: home,
      PATH: process.env.PATH,
      GRADIENT_SECRETS_DIR: this.secrets,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(caFile ? { AWS_CA_BUNDLE: caFile } : {}),
    };
  }

  /** A bucket through `tool`. */
  bucket(tool: Tool, target: BucketTarget): Promise<Mounted> {
    if (tool === 'ours') {
      writeFileSync(path.join(this.secrets, 'bench-bucket-secret'), `${target.secretAccessKey}\n`, { mode: 0o600 });
      const settings = [
        'bucket:',
        '  type: s3',
        `  url: s3://${target.bucket}`,
        `  endpoint: ${target.endpoint}`,
        `  accessKeyId: ${target.accessKeyId}`,
        '  secretAccessKey: secret:bench-bucket-secret',
        '',
      ].join('\n');
      return this.ours('bucket', settings, {}, target.caFile);
    }
    return this.peer(tool, target);
  }

  /**
   * A committed team dataset version through ours: `config` holds the catalog's teamId and storageProviders
   * (as `gradient storageProviders create` wrote them); secrets are in this set's secrets directory.
   */
  dataset(id: string, version: string, config: Record<string, unknown>): Promise<Mounted> {
    return this.ours('dataset', `dataset:\n  type: dataset\n  id: ${id}\n  version: ${version}\n`, config);
  }

  private async ours(entry: string, settings: string, config: Record<string, unknown>, caFile?: string): Promise<Mounted> {
    const home = mkdtempSync(path.join(this.work, 'homes', 'ours-'));
    const daemon: DaemonProcess = await startDaemonProcess({
      home,
      env: this.env(home, caFile),
      settings,
      // Only our entry: no public datasets (none would be fetched, but mnist's sample would be built).
      config: { publicDatasets: { datasets: { mnist: false } }, ...this.opts.config, ...config },
      cacheMaxSize: this.opts.cacheBytes,
      cacheMinFreeSpace: 0,
      entries: [entry],
    });
    const m: Mounted = {
      tool: 'ours',
      mnt: path.join(daemon.mnt, entry),
      pid: daemon.pid,
      cacheDir: daemon.cacheDir,
      cpu: daemon.cpu,
      requests: () => daemon.requests().catch(() => undefined),
      close: async () => {
        this.live.delete(m);
        this.children.delete(daemon.child);
        await daemon.stop();
        if (mountsUnder(home).length === 0) rmSync(home, { recursive: true, force: true });
      },
    };
    this.children.add(daemon.child);
    this.live.add(m);
    return m;
  }

  /** rclone's S3 remote, from the environment only (no config file is read or written). */
  private rcloneEnv(t: BucketTarget): NodeJS.ProcessEnv {
    // rclone 1.60 refuses every S3 call while AWS_CA_BUNDLE is set ("unsupported transport"): its CA is --ca-cert.
    const { AWS_CA_BUNDLE: _ca, ...env } = process.env;
    return {
      ...env,
      RCLONE_CONFIG: path.join(this.work, 'rclone.conf'),
      RCLONE_CONFIG_PEER_TYPE: 's3',
      RCLONE_CONFIG_PEER_PROVIDER: 'Ceph',
      RCLONE_CONFIG_PEER_ENDPOINT: t.endpoint,
      RCLONE_CONFIG_PEER_ACCESS_KEY_ID: t.accessKeyId,
      RCLONE_CONFIG_PEER_SECRET_ACCESS_KEY: t.secretAccessKey,
      RCLONE_CONFIG_PEER_FORCE_PATH_STYLE: 'true',
    };
  }

  /**
   * The peers' command lines (`<mnt>`/`<cache>` placeholders in reports). rclone: --use-server-modtime (mtime =
   * LastModified, as ours shows; without it rclone HEADs every object on stat), else its defaults. s3fs: its
   * defaults, a cache dir, path-style requests; over https its CA comes from CURL_CA_BUNDLE.
   */
  args(tool: 'rclone' | 's3fs', t: BucketTarget, mnt: string, cache: string): string[] {
    if (tool === 'rclone') {
      return [
        'mount', `peer:${t.bucket}`, mnt, '--vfs-cache-mode', 'full', '--cache-dir', cache,
        '--vfs-cache-max-size', String(this.opts.cacheBytes), '--use-server-modtime', '--log-level', 'NOTICE',
        ...(t.caFile ? ['--ca-cert', t.caFile] : []),
      ];
    }
    const passwd = path.join(this.secrets, 's3fs.passwd');
    writeFileSync(passwd, `${t.accessKeyId}:${t.secretAccessKey}\n`, { mode: 0o600 });
    return [t.bucket, mnt, '-f', '-o', `url=${t.endpoint}`, '-o', 'use_path_request_style', '-o', `passwd_file=${passwd}`, '-o', `use_cache=${cache}`];
  }

  private async peer(tool: 'rclone' | 's3fs', t: BucketTarget): Promise<Mounted> {
    const n = this.seq++;
    const mnt = mkdtempSync(path.join(this.work, 'mnt', `${tool}-`));
    const cache = mkdtempSync(path.join(this.work, 'caches', `${tool}-`));
    const logFile = path.join(this.work, `${tool}.log`);
    const out = openSync(logFile, 'a');
    const env = tool === 'rclone' ? this.rcloneEnv(t) : { ...process.env, ...(t.caFile ? { CURL_CA_BUNDLE: t.caFile } : {}) };
    const child = spawn(tool, this.args(tool, t, mnt, cache), { env, stdio: ['ignore', out, out] });
    closeSync(out);
    this.children.add(child);
    // A binary that cannot start emits only 'error': reported as "did not mount" below.
    let spawnError = '';
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (err) => {
        spawnError = err.message;
        resolve();
      });
    });
    const m: Mounted = {
      tool,
      mnt,
      pid: child.pid ?? -1,
      cpu: () => procCpu(child.pid),
      requests: async () => undefined,
      close: async () => {
        this.live.delete(m);
        await sh(`fusermount3 -u ${mnt} 2>/dev/null || umount -l ${mnt}`, { timeoutMs: 60_000 }).catch(() => undefined);
        // Both exit once unmounted; a stuck one is stopped by its pid (never by name).
        if (!(await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]))) {
          child.kill('SIGTERM');
          if (!(await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]))) child.kill('SIGKILL');
        }
        this.children.delete(child);
        if (mountsUnder(mnt).length === 0) rmSync(mnt, { recursive: true, force: true });
        rmSync(cache, { recursive: true, force: true });
      },
    };
    this.live.add(m);
    const deadline = Date.now() + 30_000;
    while (mountsUnder(mnt).length === 0) {
      if (child.exitCode !== null || child.pid === undefined || Date.now() > deadline) {
        await m.close();
        throw new Error(`${tool} did not mount (#${n}): ${spawnError || logTail(logFile, 3).replace(/\n/g, ' | ')}`);
      }
      await sleep(50);
    }
    return m;
  }

  /** Closes every mount still open (a benchmark's finally). */
  async closeAll(log = this.opts.log): Promise<void> {
    for (const m of [...this.live]) await m.close().catch((err: unknown) => log?.(`closing ${m.tool} at ${m.mnt}: ${String(err)}`));
    for (const c of this.children) c.kill('SIGKILL');
  }

  /** Ctrl-C: kill every serving process, detach every mount under the work dir, then `also()` (stop RGW). */
  onInterrupt(also: () => void): void {
    process.once('SIGINT', () => {
      for (const c of this.children) c.kill('SIGKILL');
      for (const p of mountsUnder(this.work).reverse()) spawnSync('umount', ['-l', p]);
      also();
      process.exit(130);
    });
  }
}
