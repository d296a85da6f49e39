// Removes a test bucket and everything in it (tests leave no trace, and RGW's memstore keeps data in RAM).
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3Client } from './s3.js';

export async function emptyAndDeleteBucket(bucket: string): Promise<void> {
  const client = s3Client();
  try {
    for (;;) {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const keys = (out.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length === 0) break;
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}
