// Bucket views (src/fs/bucket): what the daemon uses of them.
export { BucketView, type BucketViewOptions } from './bucket-view.js';
export type { AttributeRecord, AttributeStore } from './attribute-cache.js';
export { bucketsConfigSchema, DEFAULT_BUCKETS_CONFIG, type BucketsConfig } from './config.js';
export type { ObjectCache } from '../content.js';
export type { UploadStatus } from '../../upload/index.js';
