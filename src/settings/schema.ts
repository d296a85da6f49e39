// The settings.yaml entry kinds, as zod schemas. Unknown fields are rejected so that a typo
// (`verison:`) is an error naming the field instead of a silently ignored line.
import { z } from 'zod';

const nonEmpty = z.string().trim().min(1, 'must not be empty');

export const datasetEntrySchema = z.strictObject({
  type: z.literal('dataset'),
  /** Team dataset id, e.g. dst123abc. */
  id: nonEmpty.regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'must be a dataset id (letters, digits, "-", "_")'),
  /**
   * A version id, a tag, or `latest`; an uncommitted version id mounts read-write (an output), and `new`
   * creates a fresh uncommitted version when the entry is mounted.
   */
  version: nonEmpty.regex(/^[^\s:/]+$/, 'must be a version id, a tag, "latest" or "new" (no spaces, ":" or "/")'),
  /** With `version: new`: the new version starts with this version's files (`<dataset>:<ref>` or a ref of `id`); no data is copied. */
  from: nonEmpty.regex(/^[^\s/]+$/, 'must be a version ref: <version|tag|latest> or <dataset>:<version|tag|latest>').optional(),
  /** `onExit`: commit the output version when the daemon stops cleanly. */
  commit: z.literal('onExit', { message: 'must be "onExit"' }).optional(),
}).superRefine((e, ctx) => {
  if (e.from !== undefined && e.version !== 'new') {
    ctx.addIssue({ code: 'custom', path: ['from'], message: 'applies to `version: new` only (an existing version already has its files)' });
  }
});

const S3_URL = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

/** `s3://bucket/some/prefix` → bucket and prefix (no leading '/', may be empty). */
export function parseS3Url(url: string): { bucket: string; prefix: string } | undefined {
  const m = S3_URL.exec(url);
  if (!m || m[1] === undefined) return undefined;
  return { bucket: m[1], prefix: m[2] ?? '' };
}

// Users' existing files carry `endpoint: ""` next to `region:` (Gradient's template): treat "" as absent.
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** A uid or gid (0 … 2^32-2; -1 means "no change" to chown). */
const posixId = z.number().int('must be a whole number').min(0, 'must be 0 or more').max(2 ** 32 - 2, 'is too large for an id');

/**
 * Permission bits in octal. YAML reads `0644` as the decimal 644, so a number is taken as the octal digits it
 * was written with (`0644` and `644` both mean rw-r--r--); a string ("0755", "0o755") works too.
 */
const octalMode = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const digits = String(v).trim().replace(/^0o/i, '');
  if (!/^[0-7]{1,5}$/.test(digits) || Number.parseInt(digits, 8) > 0o7777) {
    ctx.addIssue({ code: 'custom', message: 'must be permission bits in octal, e.g. 0644 or 0755' });
    return z.NEVER;
  }
  return Number.parseInt(digits, 8);
});

export const s3EntrySchema = z
  .strictObject({
    type: z.literal('s3'),
    url: z.string().refine((u) => parseS3Url(u) !== undefined, 'must look like s3://bucket or s3://bucket/prefix'),
    /** Not a secret on its own (it names the key); may still be a `secret:<name>` reference. */
    accessKeyId: optionalString,
    /** A `secret:<name>` reference (recommended) or the key itself; never logged or shown. */
    secretAccessKey: optionalString,
    region: optionalString,
    endpoint: optionalString.refine(
      (e) => e === undefined || /^https?:\/\/[^/@\s]+(\/.*)?$/.test(e),
      'must be an http:// or https:// URL without credentials',
    ),
    readOnly: z.boolean().optional(),
    /** Pin the object to this ETag (reproducibility): reads fail if it changed. */
    etag: optionalString,
    /** Pin the object to this S3 version id. */
    versionId: optionalString,
    /** Owner of objects whose metadata names none (default: the user the daemon runs as). */
    uid: posixId.optional(),
    gid: posixId.optional(),
    /** Permission bits of files and directories whose metadata has no mode (default 0666 / 0777). */
    fileMode: octalMode.optional(),
    dirMode: octalMode.optional(),
    /**
     * Read modes, owners, times and symlinks from each object's metadata (a HEAD per object not seen before
     * when a directory is listed). false: no HEADs; everything shows the defaults (huge read-only buckets).
     */
    posixMetadata: z.boolean().optional(),
  })
  .superRefine((e, ctx) => {
    if (e.region !== undefined && e.endpoint !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'set either region or endpoint, not both' });
    }
    if ((e.accessKeyId === undefined) !== (e.secretAccessKey === undefined)) {
      const missing = e.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey';
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message: 'required when the other key is set (leave both out for a public bucket)',
      });
    }
    const pinned = e.etag !== undefined || e.versionId !== undefined;
    if (pinned) {
      const field = e.etag !== undefined ? 'etag' : 'versionId';
      if (e.readOnly === false) {
        ctx.addIssue({ code: 'custom', path: ['readOnly'], message: `a source pinned by ${field} is read-only` });
      }
      const key = parseS3Url(e.url)?.prefix ?? '';
      if (key === '' || key.endsWith('/')) {
        ctx.addIssue({ code: 'custom', path: [field], message: 'pinning needs a url that names one object (s3://bucket/key)' });
      }
    }
  });

export type DatasetEntry = z.output<typeof datasetEntrySchema>;

export interface S3Entry {
  type: 's3';
  url: string;
  bucket: string;
  /** Key prefix inside the bucket (or the object key when pinned); no leading '/'. */
  prefix: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  endpoint?: string;
  /** Pinned sources are always read-only; buckets are read-write unless `readOnly: true`. */
  readOnly: boolean;
  etag?: string;
  versionId?: string;
  uid?: number;
  gid?: number;
  fileMode?: number;
  dirMode?: number;
  posixMetadata?: boolean;
}

export type SettingsEntry = DatasetEntry | S3Entry;
export type EntryType = SettingsEntry['type'];
export const ENTRY_TYPES: readonly EntryType[] = ['dataset', 's3'];

export function toS3Entry(parsed: z.output<typeof s3EntrySchema>): S3Entry {
  const loc = parseS3Url(parsed.url) ?? { bucket: '', prefix: '' };
  const entry: S3Entry = {
    type: 's3',
    url: parsed.url,
    bucket: loc.bucket,
    prefix: loc.prefix,
    readOnly: parsed.readOnly ?? (parsed.etag !== undefined || parsed.versionId !== undefined),
  };
  // Only defined keys, so that two equal configurations compare equal in diffSettings.
  for (const k of ['accessKeyId', 'secretAccessKey', 'region', 'endpoint', 'etag', 'versionId'] as const) {
    const v = parsed[k];
    if (v !== undefined) entry[k] = v;
  }
  for (const k of ['uid', 'gid', 'fileMode', 'dirMode'] as const) {
    const v = parsed[k];
    if (v !== undefined) entry[k] = v;
  }
  if (parsed.posixMetadata !== undefined) entry.posixMetadata = parsed.posixMetadata;
  return entry;
}
