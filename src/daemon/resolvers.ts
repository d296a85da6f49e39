// What each kind of entry resolves to before it can be mounted. The dataset resolver wraps the catalog
// (injected: `catalog.resolve('<id>:<version|tag|latest>')`, which refuses uncommitted versions); s3 entries resolve their secrets; public
// entries come from the public catalog. Resolved secrets are registered with the redactor at once.
import { createHash } from 'node:crypto';
import { isCatalogError } from '../catalog/errors.js';
import { buildEmbeddedMnist, materializedMnist, type EmbeddedDataset, type MaterializedDataset } from '../catalog/embedded-mnist.js';
import type { AnonymousS3Source, PublicCatalog } from '../catalog/public-datasets.js';
import type { Settings } from '../settings/parse.js';
import type { DatasetEntry, S3Entry } from '../settings/schema.js';
import { resolveEntryCredentials, type EntryCredentials } from '../settings/secrets.js';
import { asksForOutput, type OutputPayload } from './outputs.js';
import { EntryError, type EntryResolver, type MountEntry, type Resolution } from './reconciler.js';
import { redactor as defaultRedactor, type Redactor } from './redact.js';

/**
 * The part of the catalog the daemon needs: `Catalog` (src/catalog/catalog.ts) satisfies it with
 * V = ResolvedVersion. It refuses uncommitted versions itself (CatalogError NotCommitted).
 */
export interface DatasetCatalog<V extends ResolvedDataset> {
  resolve(ref: string): Promise<V>;
}

export type PosixSettings = Pick<S3Entry, 'uid' | 'gid' | 'fileMode' | 'dirMode' | 'posixMetadata'>;

export interface ResolvedDataset {
  datasetId: string;
  versionId: string;
  /** Set when storage was unreachable and the ref's last known answer (learnt at this time) is served. */
  lastKnown?: string;
}

export type MountPayload<V extends ResolvedDataset> =
  | { kind: 'dataset'; version: V }
  | {
      kind: 's3';
      bucket: string;
      prefix: string;
      region?: string;
      endpoint?: string;
      /** undefined = anonymous (public bucket). */
      credentials?: EntryCredentials;
      readOnly: boolean;
      pin?: { etag?: string; versionId?: string };
      /** Defaults for objects without POSIX metadata, and whether to read it (settings' uid … posixMetadata). */
      posix?: PosixSettings;
    }
  | { kind: 'public-s3'; dataset: string; source: AnonymousS3Source }
  | OutputPayload
  | { kind: 'embedded'; dataset: EmbeddedDataset | MaterializedDataset };

/** Resolves dataset entries served read-write (outputs.ts); absent: uncommitted versions are refused. */
export interface OutputResolver {
  resolve(name: string, entry: DatasetEntry): Promise<Resolution<OutputPayload>>;
}

export interface ResolverOptions<V extends ResolvedDataset> {
  catalog: DatasetCatalog<V>;
  outputs?: OutputResolver;
  publicCatalog: PublicCatalog;
  env?: NodeJS.ProcessEnv;
  redactor?: Redactor;
  /** Where the embedded sample is written and served from; absent: it is served from memory. */
  embeddedDir?: string;
}

export function createEntryResolver<V extends ResolvedDataset>(opts: ResolverOptions<V>): EntryResolver<MountPayload<V>> {
  const redactor = opts.redactor ?? defaultRedactor;
  // The embedded sample, built on first use and shared by every resolution after (one resolver per daemon).
  let mnist: Promise<EmbeddedDataset | MaterializedDataset> | undefined;
  const embeddedDir = opts.embeddedDir;
  const embeddedMnist = () =>
    (mnist ??= (embeddedDir ? materializedMnist(embeddedDir) : buildEmbeddedMnist()).catch((err: unknown) => {
      mnist = undefined; // a failed build is tried again at the next resolution
      throw err;
    }));
  return async (name, entry, ctx) => {
    switch (entry.type) {
      case 'dataset':
        if (opts.outputs && asksForOutput(entry)) return opts.outputs.resolve(name, entry);
        return resolveDataset(opts.catalog, entry, opts.outputs && ((e: DatasetEntry) => opts.outputs!.resolve(name, e)));
      case 's3':
        return resolveS3(name, entry, ctx.settings, opts.env ?? process.env, redactor);
      case 'public':
        return resolvePublic(opts.publicCatalog, entry.dataset, embeddedMnist);
    }
  };
}

async function resolveDataset<V extends ResolvedDataset>(
  catalog: DatasetCatalog<V>,
  entry: DatasetEntry,
  asOutput?: (entry: DatasetEntry) => Promise<Resolution<OutputPayload>>,
): Promise<Resolution<MountPayload<V>>> {
  let r: V;
  try {
    r = await catalog.resolve(`${entry.id}:${entry.version}`);
  } catch (err) {
    // An uncommitted version is served read-write, as an output.
    if (asOutput && isCatalogError(err, 'NotCommitted')) return asOutput(entry);
    // Point the message at the field to fix: the id when the dataset itself is unknown, else the version.
    if (isCatalogError(err)) {
      const aboutId =
        (err.code === 'NotFound' && /^dataset "[^"]*" not found/.test(err.message)) || (err.code === 'BadRef' && /bad dataset id/.test(err.message));
      const field = aboutId ? 'id' : 'version';
      throw new EntryError(err.code, err.message, field);
    }
    throw err;
  }
  const resolved = `${r.datasetId}:${r.versionId}`;
  const shown = r.lastKnown ? `${resolved} (last known answer, from ${r.lastKnown}: storage unreachable)` : resolved;
  return { resolved: shown, identity: `dataset:${resolved}`, payload: { kind: 'dataset', version: r } };
}

function resolveS3<V extends ResolvedDataset>(
  name: string,
  entry: S3Entry,
  settings: Settings | undefined,
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
): Resolution<MountPayload<V>> {
  const credentials = settings ? resolveEntryCredentials(settings, name, entry, env) : undefined;
  redactor.addSecret(credentials?.secretAccessKey);
  const payload: MountPayload<V> = { kind: 's3', bucket: entry.bucket, prefix: entry.prefix, readOnly: entry.readOnly };
  if (entry.region) payload.region = entry.region;
  if (entry.endpoint) payload.endpoint = entry.endpoint;
  if (credentials) payload.credentials = credentials;
  if (entry.etag || entry.versionId) payload.pin = { etag: entry.etag, versionId: entry.versionId };
  const posix: PosixSettings = {};
  for (const k of ['uid', 'gid', 'fileMode', 'dirMode', 'posixMetadata'] as const) if (entry[k] !== undefined) Object.assign(posix, { [k]: entry[k] });
  if (Object.keys(posix).length > 0) payload.posix = posix;
  // Identity covers the credentials by fingerprint only: rotating a secret swaps the view, yet no secret
  // (nor anything it could be recovered from cheaply) lands in status or logs.
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ ...payload, credentials: credentials ? [credentials.accessKeyId, credentials.secretAccessKey] : null }))
    .digest('hex')
    .slice(0, 16);
  return { resolved: `s3://${entry.bucket}/${entry.prefix}`.replace(/\/$/, ''), identity: `s3:${fingerprint}`, payload };
}

async function resolvePublic<V extends ResolvedDataset>(
  catalog: PublicCatalog,
  dataset: string,
  embeddedMnist: () => Promise<EmbeddedDataset | MaterializedDataset>,
): Promise<Resolution<MountPayload<V>>> {
  const source = catalog.source(dataset);
  if (!source) throw new EntryError('UnknownPublicDataset', `no source is configured for public dataset ${dataset}`);
  if (source.kind === 'embedded') {
    const ds = await embeddedMnist();
    return { resolved: `embedded:${ds.name}@${ds.version}`, identity: `embedded:${ds.version}`, payload: { kind: 'embedded', dataset: ds } };
  }
  const where = `s3://${source.bucket}/${source.prefix}`.replace(/\/$/, '');
  return { resolved: where, identity: `public-s3:${where}@${source.endpoint ?? source.region ?? ''}`, payload: { kind: 'public-s3', dataset, source } };
}

/**
 * What the mount root should hold: every public dataset, then every settings entry. A settings entry with a
 * public dataset's name replaces it (the user asked for that directory explicitly).
 */
export function desiredEntries(settings: Settings | undefined, publicCatalog: PublicCatalog): Map<string, MountEntry> {
  const desired = new Map<string, MountEntry>();
  for (const name of publicCatalog.names()) desired.set(name, { type: 'public', dataset: name });
  for (const [name, entry] of settings?.entries ?? []) {
    desired.delete(name); // keep settings order after the public names
    desired.set(name, entry);
  }
  return desired;
}
