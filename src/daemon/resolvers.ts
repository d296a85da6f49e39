// What each kind of entry resolves to before it can be mounted. The dataset resolver wraps the catalog
// (injected: `catalog.resolve('<id>:<version|tag|latest>')`); s3 entries resolve their secrets; public
// entries come from the public catalog. Resolved secrets are registered with the redactor at once.
import { createHash } from 'node:crypto';
import { embeddedMnist, type EmbeddedDataset } from '../catalog/embedded-mnist.js';
import type { AnonymousS3Source, PublicCatalog } from '../catalog/public-datasets.js';
import type { Settings } from '../settings/parse.js';
import type { DatasetEntry, S3Entry } from '../settings/schema.js';
import { resolveEntryCredentials, type S3Credentials } from '../settings/secrets.js';
import { EntryError, type EntryResolver, type MountEntry, type Resolution } from './reconciler.js';
import { redactor as defaultRedactor, type Redactor } from './redact.js';

/** The part of the catalog the daemon needs; the catalog module satisfies it structurally. */
export interface DatasetCatalog<M> {
  resolve(ref: string): Promise<{ datasetId: string; versionId: string; manifest: M; committed?: boolean }>;
}

export type MountPayload<M> =
  | { kind: 'dataset'; datasetId: string; versionId: string; manifest: M }
  | {
      kind: 's3';
      bucket: string;
      prefix: string;
      region?: string;
      endpoint?: string;
      /** undefined = anonymous (public bucket). */
      credentials?: S3Credentials;
      readOnly: boolean;
      pin?: { etag?: string; versionId?: string };
    }
  | { kind: 'public-s3'; dataset: string; source: AnonymousS3Source }
  | { kind: 'embedded'; dataset: EmbeddedDataset };

export interface ResolverOptions<M> {
  catalog: DatasetCatalog<M>;
  publicCatalog: PublicCatalog;
  env?: NodeJS.ProcessEnv;
  redactor?: Redactor;
}

export function createEntryResolver<M>(opts: ResolverOptions<M>): EntryResolver<MountPayload<M>> {
  const redactor = opts.redactor ?? defaultRedactor;
  return async (name, entry, ctx) => {
    switch (entry.type) {
      case 'dataset':
        return resolveDataset(opts.catalog, entry);
      case 's3':
        return resolveS3(name, entry, ctx.settings, opts.env ?? process.env, redactor);
      case 'public':
        return resolvePublic(opts.publicCatalog, entry.dataset);
    }
  };
}

async function resolveDataset<M>(catalog: DatasetCatalog<M>, entry: DatasetEntry): Promise<Resolution<MountPayload<M>>> {
  const r = await catalog.resolve(`${entry.id}:${entry.version}`);
  // An uncommitted version can still change under readers: refuse it rather than serve a moving target.
  if (r.committed === false) {
    throw new EntryError(
      'UncommittedVersion',
      `version ${r.versionId} of dataset ${r.datasetId} is not committed; commit it (gradient datasets versions commit --id ${r.datasetId}:${r.versionId}) or pick a committed version`,
      'version',
    );
  }
  const resolved = `${r.datasetId}:${r.versionId}`;
  return { resolved, identity: `dataset:${resolved}`, payload: { kind: 'dataset', datasetId: r.datasetId, versionId: r.versionId, manifest: r.manifest } };
}

function resolveS3<M>(
  name: string,
  entry: S3Entry,
  settings: Settings | undefined,
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
): Resolution<MountPayload<M>> {
  const credentials = settings ? resolveEntryCredentials(settings, name, entry, env) : undefined;
  redactor.addSecret(credentials?.secretAccessKey);
  const payload: MountPayload<M> = { kind: 's3', bucket: entry.bucket, prefix: entry.prefix, readOnly: entry.readOnly };
  if (entry.region) payload.region = entry.region;
  if (entry.endpoint) payload.endpoint = entry.endpoint;
  if (credentials) payload.credentials = credentials;
  if (entry.etag || entry.versionId) payload.pin = { etag: entry.etag, versionId: entry.versionId };
  // Identity covers the credentials by fingerprint only: rotating a secret swaps the view, yet no secret
  // (nor anything it could be recovered from cheaply) lands in status or logs.
  const fingerprint = createHash('sha256')
    .update(JSON.stringify({ ...payload, credentials: credentials ? [credentials.accessKeyId, credentials.secretAccessKey] : null }))
    .digest('hex')
    .slice(0, 16);
  return { resolved: `s3://${entry.bucket}/${entry.prefix}`.replace(/\/$/, ''), identity: `s3:${fingerprint}`, payload };
}

async function resolvePublic<M>(catalog: PublicCatalog, dataset: string): Promise<Resolution<MountPayload<M>>> {
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
