// Write-through for writable views (src/upload): what the daemon and src/fs use of it.
export { Uploader, type QueueOptions, type UploaderOptions } from './uploader.js';
export type { UploadQueue, UploadStatus, UploadTarget } from './upload-queue.js';
export { sameAttributes, type ObjectAttributes, type StagedFile } from './staged-file.js';
export type { Staging } from './staging.js';
export { EAGER_PART_BYTES, type PartMemory } from './eager-upload.js';
