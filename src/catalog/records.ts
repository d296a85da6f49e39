// The JSON records the catalog stores, validated on read (another machine, or a human, may have written them).
import { z } from 'zod';
import { CatalogError } from './errors.js';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const isoDate = z.iso.datetime();

export const datasetRecord = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().default(''),
  storageProviderId: z.string(),
  createdAt: isoDate,
});
export type DatasetRecord = z.infer<typeof datasetRecord>;

export const versionRecord = z.object({
  id: z.string(),
  datasetId: z.string(),
  message: z.string().default(''),
  createdAt: isoDate,
  /** The version whose files it started with (`versions create --from`), as `<dataset-id>:<version-id>`. */
  from: z.string().optional(),
});
export type VersionRecord = z.infer<typeof versionRecord>;

export const manifestEntry = z.object({
  /** '/'-separated path inside the version. */
  path: z.string(),
  size: z.number().int().nonnegative(),
  sha256,
  /** Modification time of the source file, ms since the epoch. */
  mtime: z.number(),
});
export type ManifestEntry = z.infer<typeof manifestEntry>;

export const journalRecord = z.object({
  format: z.literal(1),
  writtenAt: isoDate,
  entries: z.array(z.union([manifestEntry, z.object({ path: z.string(), deleted: z.literal(true) })])),
});
export type JournalRecord = z.infer<typeof journalRecord>;

export const manifestRecord = z.object({
  format: z.literal(1),
  datasetId: z.string(),
  versionId: z.string(),
  /** Sorted by path (UTF-8 byte order). */
  files: z.array(manifestEntry),
});
export type Manifest = z.infer<typeof manifestRecord>;

/** The manifest's header goes through zod; its entries (a million for a million files) are checked in place. */
const manifestHeader = manifestRecord.extend({ files: z.array(z.unknown()) });
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * A manifest, validated like `manifestRecord` without zod's copy of every entry: for a large version that
 * copy doubled the objects alive while mounting and took longer than JSON.parse itself.
 */
export function parseManifest(bytes: Buffer, where: string): Manifest {
  const m = parseRecord(manifestHeader, bytes, where);
  for (let i = 0; i < m.files.length; i++) {
    const e = m.files[i] as Partial<Record<keyof ManifestEntry, unknown>> | null;
    const ok =
      typeof e === 'object' && e !== null &&
      typeof e.path === 'string' &&
      typeof e.size === 'number' && Number.isSafeInteger(e.size) && e.size >= 0 &&
      typeof e.sha256 === 'string' && SHA256.test(e.sha256) &&
      typeof e.mtime === 'number' && Number.isFinite(e.mtime);
    if (!ok) throw new CatalogError('Corrupt', `${where} is invalid: files[${i}] is not {path, size, sha256, mtime}`);
  }
  return m as Manifest;
}

export const committedRecord = z.object({
  committedAt: isoDate,
  manifestSha256: sha256,
  fileCount: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
});
export type CommittedRecord = z.infer<typeof committedRecord>;

export const tagRecord = z.object({ version: z.string(), updatedAt: isoDate });
export type TagRecord = z.infer<typeof tagRecord>;

export function parseRecord<T>(schema: z.ZodType<T>, bytes: Buffer, where: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CatalogError('Corrupt', `${where} is not valid JSON`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new CatalogError('Corrupt', `${where} is invalid: ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data;
}
