// A throwaway Ceph RGW on free loopback ports (scripts/rgw-start.sh), for the test run and the benchmarks.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

export interface RgwServer {
  endpoint: string;
  /** The same server over TLS, with a certificate from a throwaway CA (caFile): trust it explicitly. */
  endpointTls: string;
  caFile: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  /** Stops the daemons and removes the directory; safe to call twice. */
  stop(): void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

/** Starts RGW (memstore: data lives in RAM, so size it to the data set). Throws after cleaning up on failure. */
export async function startRgw(opts: { name: string; memstoreBytes: string }): Promise<RgwServer> {
  const dir = `/tmp/gd-${opts.name}-rgw-${process.pid}`;
  const env = {
    ...process.env,
    RGW_DIR: dir,
    RGW_PORT: String(await freePort()),
    RGW_SSL_PORT: String(await freePort()),
    MON_PORT: String(await freePort()),
    MEMSTORE_BYTES: opts.memstoreBytes,
  };
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    execFileSync('bash', [path.join(root, 'scripts/rgw-stop.sh')], { env, stdio: 'ignore' });
  };
  try {
    execFileSync('bash', [path.join(root, 'scripts/rgw-start.sh')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (err) {
    stop();
    throw err;
  }
  const s3 = JSON.parse(readFileSync(path.join(dir, 's3.json'), 'utf8')) as Record<string, string>;
  return {
    endpoint: s3.endpoint!,
    endpointTls: s3.endpointTls!,
    caFile: s3.caFile!,
    region: s3.region ?? 'us-east-1',
    accessKeyId: s3.accessKeyId!,
    secretAccessKey: s3.secretAccessKey!,
    dir,
    stop,
  };
}

/** Points this process's S3 settings (read by test/helpers/s3.ts) at a running RGW. */
export function exportRgwEnv(rgw: RgwServer): void {
  Object.assign(process.env, {
    S3_ENDPOINT: rgw.endpoint,
    S3_ENDPOINT_TLS: rgw.endpointTls,
    S3_CA_FILE: rgw.caFile,
    AWS_ACCESS_KEY_ID: rgw.accessKeyId,
    AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
    AWS_REGION: rgw.region,
    GRADIENT_TEST_RGW_DIR: rgw.dir,
  });
}
