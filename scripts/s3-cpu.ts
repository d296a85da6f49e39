// Client CPU per byte and per request, @aws-sdk/client-s3 vs S3Store's lean client (readInto), against a
// running RGW: 8 concurrent 8 MiB ranged GETs over 1 GiB, and 4 KiB GETs. CPU time of this process only
// (process.cpuUsage), so the numbers hold on a busy 2-core machine where wall-clock throughput does not.
//
//   source $RGW_DIR/s3.env && npx tsx scripts/s3-cpu.ts [--tls]
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { S3Store } from '../src/storage/s3/store.js';

const MiB = 1 << 20;
const WAYS = 8;
const CHUNK = 8 * MiB;
const OBJECTS = 8; // × 64 MiB, each read twice: 1 GiB per client
const SMALL = 2000;
const tls = process.argv.includes('--tls');
const endpoint = (tls ? process.env.S3_ENDPOINT_TLS : process.env.S3_ENDPOINT) ?? '';
const ca = tls ? readFileSync(process.env.S3_CA_FILE ?? '') : undefined;
const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? '' };
const Bucket = 'cpu-bench';

const sdk = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  requestHandler: new NodeHttpHandler({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64, ca }),
  }),
});
const store = new S3Store({ bucket: Bucket, endpoint, credentials: { kind: 'static', ...credentials }, caBundle: process.env.S3_CA_FILE });

async function setup(): Promise<void> {
  await sdk.send(new CreateBucketCommand({ Bucket })).catch(() => undefined);
  const big = Buffer.alloc(64 * MiB, 7);
  for (let i = 0; i < OBJECTS; i++) await sdk.send(new PutObjectCommand({ Bucket, Key: `big/${i}`, Body: big }));
  const small = Buffer.alloc(4096, 3);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < SMALL) await sdk.send(new PutObjectCommand({ Bucket, Key: `small/${next++}`, Body: small }));
    }),
  );
}

async function run<T>(name: string, jobs: T[], fn: (job: T, worker: number) => Promise<number>): Promise<void> {
  let i = 0;
  let bytes = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: WAYS }, async (_, w) => {
      while (i < jobs.length) {
        const n = await fn(jobs[i++]!, w);
        bytes += n;
      }
    }),
  );
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  const wall = (performance.now() - t0) / 1000;
  const perGiB = bytes >= 256 * MiB ? `${(cpu / (bytes / 2 ** 30)).toFixed(2)} CPU-s/GiB, ` : '';
  console.log(`${name.padEnd(22)} ${perGiB}${((cpu * 1e6) / jobs.length).toFixed(0)} CPU-µs/request  (${(bytes / MiB / wall).toFixed(0)} MiB/s wall)`);
}

await setup();
const ranges: Array<[string, number]> = [];
for (let pass = 0; pass < 2; pass++) for (let o = 0; o < OBJECTS; o++) for (let s = 0; s < 64 * MiB; s += CHUNK) ranges.push([`big/${o}`, s]);
const smalls = Array.from({ length: SMALL }, (_, i) => `small/${i}`);
const bufs = Array.from({ length: WAYS }, () => Buffer.allocUnsafe(CHUNK));
const sdkGet = async (Key: string, start: number, len: number) => {
  const out = await sdk.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=${start}-${start + len - 1}` }));
  return (await out.Body!.transformToByteArray()).length;
};
console.log(`endpoint ${endpoint}`);
for (let round = 0; round < 3; round++) {
  await run('SDK 8 MiB', ranges, ([k, s]) => sdkGet(k, s, CHUNK));
  await run('lean readInto 8 MiB', ranges, ([k, s], w) => store.readInto(k, { range: { start: s, end: s + CHUNK } }, bufs[w]!));
  await run('SDK 4 KiB', smalls, (k) => sdkGet(k, 0, 4096));
  await run('lean readInto 4 KiB', smalls, (k, w) => store.readInto(k, { range: { start: 0, end: 4096 } }, bufs[w]!));
  await run('lean read 4 KiB', smalls, (k) => store.read(k).then((b) => b.length));
}
store.close();
sdk.destroy();
