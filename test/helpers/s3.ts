// The S3 server the tests talk to (started by test/global-setup.ts): endpoint, keys, a client, fresh buckets.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';

export interface S3TestServer {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function s3Server(): S3TestServer {
  const endpoint = process.env.S3_ENDPOINT;
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error('no S3 test server: run the tests with `npm test` (test/global-setup.ts starts Ceph RGW)');
  }
  return { endpoint, region: process.env.AWS_REGION ?? 'us-east-1', accessKeyId, secretAccessKey };
}

/** A plain SDK client with the settings RGW needs; tests use it as the oracle next to our code. */
export function s3Client(server = s3Server()): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function freshBucket(prefix = 'test'): Promise<string> {
  const name = `${prefix}-${randomBytes(5).toString('hex')}`;
  await s3Client().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
