// Starts one throwaway Ceph RGW on 127.0.0.1 for the whole test run and stops it afterwards,
// unless S3_ENDPOINT is already set (a server someone else runs) or GRADIENT_TEST_S3=off (unit tests only).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export default async function setup(): Promise<(() => void) | undefined> {
  if (process.env.S3_ENDPOINT || process.env.GRADIENT_TEST_S3 === 'off') return undefined;
  const rgwDir = `/tmp/gd-rgw-${process.pid}`;
  const env = {
    ...process.env,
    RGW_DIR: rgwDir,
    RGW_PORT: String(await freePort()),
    MON_PORT: String(await freePort()),
    MEMSTORE_BYTES: '16G',
  };
  const stop = () => {
    execFileSync('bash', [path.join(root, 'scripts/rgw-stop.sh')], { env, stdio: 'ignore' });
  };
  try {
    execFileSync('bash', [path.join(root, 'scripts/rgw-start.sh')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (err) {
    stop();
    throw err;
  }
  const s3 = JSON.parse(readFileSync(path.join(rgwDir, 's3.json'), 'utf8')) as Record<string, string>;
  process.env.S3_ENDPOINT = s3.endpoint;
  process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
  process.env.AWS_REGION = s3.region;
  process.env.GRADIENT_TEST_RGW_DIR = rgwDir;
  return stop;
}
