// The `buckets:` section of the config file: how bucket mounts (settings entries of `type: s3`, and public
// datasets served from S3) trade freshness for requests, and how hard they may hit the endpoint.
//   buckets:
//     metadataTtl: 5          # seconds a listing or lookup is trusted: others' changes show up after this
//     publicMetadataTtl: 3600 # the same for public datasets, which do not change under us
//     drainTimeout: 30        # seconds a stopping daemon waits for pending uploads
//     rateLimits: { opsPerSecond: 240, writesPerSecond: 150 }   # default: Spaces' limits on Spaces, else AWS's
import { z } from 'zod';

export const bucketsConfigSchema = z.strictObject({
  metadataTtl: z.number().positive().max(86_400).default(5),
  publicMetadataTtl: z.number().positive().max(86_400).default(3600),
  drainTimeout: z.number().nonnegative().max(3600).default(30),
  rateLimits: z
    .strictObject({ opsPerSecond: z.number().positive(), writesPerSecond: z.number().positive() })
    .optional(),
});

export type BucketsConfig = z.output<typeof bucketsConfigSchema>;

export const DEFAULT_BUCKETS_CONFIG: BucketsConfig = bucketsConfigSchema.parse({});
