// The user config file (see paths.ts for its location). This module owns the file (reading it safely, its
// YAML, its top-level keys) and its own fields: team id, storage providers, the managed provider. Each other
// section belongs to the part it configures, which validates it through configSection(); the daemon
// assembles them (src/daemon/config.ts). Validated with zod; written back through the yaml Document API so
// that comments and sections we don't own survive our edits.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { defaultStorePath, expandHome, type ConfigLocation } from './paths.js';
import { ConfigError } from './errors.js';
import { FileTooLargeError, readSmallFile, yamlErrorText } from './yaml-file.js';

export { ConfigError };

/** The id of the built-in provider: a local directory store, used when no other is configured. */
export const MANAGED_PROVIDER_ID = 'managed';
export const MANAGED_PROVIDER_NAME = 'Gradient Managed';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'letters, digits, "_" and "-" (max 63)');

const s3Provider = z.strictObject({
  id,
  name: z.string().min(1),
  type: z.literal('s3'),
  bucket: z.string().min(3, 'a bucket name has at least 3 characters'),
  /** Key prefix inside the bucket. */
  prefix: z.string().optional(),
  // No credentials in the URL: endpoints appear in messages and status.
  endpoint: z
    .string()
    .regex(/^https?:\/\/[^/@\s]+(\/.*)?$/, 'must be an http:// or https:// URL without credentials')
    .optional(),
  region: z.string().optional(),
  /** Access key id; omit both keys to use the standard AWS credential chain. */
  accessKey: z.string().optional(),
  /** A `secret:<name>` reference (a plain value works but is discouraged). */
  secretAccessKey: z.string().optional(),
  /** Unsigned requests (public buckets, read-only). */
  anonymous: z.boolean().optional(),
});

const localProvider = z.strictObject({
  id,
  name: z.string().min(1),
  type: z.literal('local'),
  path: z.string().min(1),
});

export const storageProviderSchema = z.discriminatedUnion('type', [s3Provider, localProvider]);
export type StorageProvider = z.infer<typeof storageProviderSchema>;
export type S3Provider = z.infer<typeof s3Provider>;

export const configSchema = z.strictObject({
  /** Names the folder the catalog lives in inside every provider: machines sharing a team share it. */
  teamId: id.default('default'),
  /** The provider used when a dataset is created without --storageProviderId. */
  managedStorageProviderId: id.optional(),
  /** Directory of the built-in managed local store. */
  localStorePath: z.string().optional(),
  storageProviders: z.array(storageProviderSchema).default([]),
  // Sections owned elsewhere, kept as written until their owner validates them (configSection). Named here
  // so that any other top-level key is still an error.
  /** The cache's: dir, maxSize, minFreeSpace (src/cache/config.ts). */
  cache: z.unknown().optional(),
  /** Where public datasets (mnist, coco, …) come from (src/catalog/public-datasets.ts). */
  publicDatasets: z.unknown().optional(),
  /** Bucket mounts: metadata TTLs, upload drain time, rate limits (src/fs/bucket/config.ts). */
  buckets: z.unknown().optional(),
  /** The daemon's memory target (src/daemon/memory-target.ts). */
  memory: z.unknown().optional(),
});
export type Config = z.infer<typeof configSchema>;
export type ConfigSectionName = 'cache' | 'publicDatasets' | 'buckets' | 'memory';

export interface LoadedConfig {
  path: string;
  exists: boolean;
  config: Config;
}

/** Each issue as `field.path: what is wrong`; `under` is the path of the section that was validated. */
function formatIssues(err: z.ZodError, under: PropertyKey[] = []): string {
  return err.issues
    .map((i) => {
      const where = [...under, ...i.path].join('.') || '(top level)';
      // Unknown keys are named unless one could be a value pasted in the wrong place (a secret is longer).
      if (i.code === 'unrecognized_keys') {
        const keys = i.keys.map((k) => (/^[A-Za-z0-9_-]{1,32}$/.test(k) ? `"${k}"` : '(a key not shown)'));
        return `${where}: unknown ${keys.length > 1 ? 'keys' : 'key'} ${keys.join(', ')}`;
      }
      return `${where}: ${i.message}`;
    })
    .join('; ');
}

/** Far more than any config needs; a larger file is not one, and parsing it would stall the daemon. */
export const MAX_CONFIG_BYTES = 1 << 20;

/**
 * The file's config, or the defaults when it does not exist — unless it was named explicitly (a location
 * from --config or GRADIENT_CONFIG): a typo there must not silently mean "defaults".
 */
export async function loadConfig(where: string | ConfigLocation): Promise<LoadedConfig> {
  const { path: file, source } = typeof where === 'string' ? { path: where, source: 'default' } : where;
  let text: string;
  try {
    text = await readSmallFile(file, MAX_CONFIG_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (source !== 'default') throw new ConfigError('Missing', `config file ${file} does not exist (${source})`);
      return { path: file, exists: false, config: configSchema.parse({}) };
    }
    if (err instanceof FileTooLargeError) throw new ConfigError('Invalid', `config file ${err.message}: is it the right file?`);
    throw new ConfigError('Unreadable', `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let raw: unknown;
  // The file may hold plaintext secrets: yaml's pretty errors quote the source, so only our position and
  // its first words are kept (as for settings.yaml).
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlError = (message: string, offset = 0) => {
    const { line, col } = lineCounter.linePos(offset);
    return new ConfigError('Invalid', `config file ${file}:${line}:${col}: not valid YAML: ${yamlErrorText(message)}`);
  };
  if (doc.errors.length > 0) throw yamlError(doc.errors[0]!.message, doc.errors[0]!.pos[0]);
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    throw yamlError((err as Error).message); // an undefined or exploding alias
  }
  return { path: file, exists: true, config: validateConfig(raw, file) };
}

/** The checks every config goes through, read or about to be written. */
function validateConfig(raw: unknown, file: string): Config {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError('Invalid', `config file ${file} is invalid: ${formatIssues(parsed.error)}`);
  const ids = new Set<string>();
  for (const p of parsed.data.storageProviders) {
    if (ids.has(p.id) || p.id === MANAGED_PROVIDER_ID) {
      throw new ConfigError('Invalid', `config file ${file}: storage provider id "${p.id}" is used twice or reserved`);
    }
    ids.add(p.id);
  }
  return parsed.data;
}

/** Refuses a provider the config file could not hold, naming each bad field (a command-line value). */
export function checkStorageProvider(provider: StorageProvider): void {
  const parsed = storageProviderSchema.safeParse(provider);
  if (!parsed.success) throw new ConfigError('BadInput', `invalid storage provider: ${formatIssues(parsed.error)}`);
}

/**
 * A section of a loaded file validated by its owner's schema (undefined when the file has none). Errors
 * read as the loader's own: the file, then each field's path from the top of the file.
 */
export function configSection<S extends z.ZodType>(loaded: LoadedConfig, name: ConfigSectionName, schema: S): z.output<S> | undefined {
  const raw = loaded.config[name];
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ConfigError('Invalid', `config file ${loaded.path} is invalid: ${formatIssues(parsed.error, [name])}`);
  return parsed.data;
}

/** All providers, the built-in managed local store first (unless another provider is the managed one). */
export function allProviders(config: Config, env: NodeJS.ProcessEnv = process.env): StorageProvider[] {
  const builtIn: StorageProvider = {
    id: MANAGED_PROVIDER_ID,
    name: MANAGED_PROVIDER_NAME,
    type: 'local',
    path: config.localStorePath ? path.resolve(expandHome(config.localStorePath, env)) : defaultStorePath(env),
  };
  return [builtIn, ...config.storageProviders];
}

export function managedProviderId(config: Config): string {
  return config.managedStorageProviderId ?? MANAGED_PROVIDER_ID;
}

export function findProvider(config: Config, providerId: string, env: NodeJS.ProcessEnv = process.env): StorageProvider {
  const p = allProviders(config, env).find((x) => x.id === providerId);
  if (!p) {
    throw new ConfigError(
      'UnknownProvider',
      `unknown storage provider "${providerId}": see \`gradient storageProviders list\``,
    );
  }
  return p;
}

/**
 * Adds a provider to the file (creating it if needed), keeping comments and other sections. The result is
 * validated as loadConfig would before it is written: never a file that later commands reject.
 */
export async function addStorageProvider(file: string, provider: StorageProvider): Promise<void> {
  checkStorageProvider(provider);
  const loaded = await loadConfig(file);
  if (allProviders(loaded.config).some((p) => p.id === provider.id || p.name === provider.name)) {
    throw new ConfigError('Duplicate', `a storage provider named "${provider.name}" already exists in ${file}`);
  }
  const doc = loaded.exists ? YAML.parseDocument(await readFile(file, 'utf8')) : new YAML.Document({});
  if (!YAML.isMap(doc.contents)) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
  if (!doc.has('teamId')) doc.set('teamId', loaded.config.teamId);
  if (!doc.has('storageProviders')) doc.set('storageProviders', doc.createNode([]));
  doc.addIn(['storageProviders'], doc.createNode(JSON.parse(JSON.stringify(provider))));
  validateConfig(doc.toJS(), file);
  await writeFileAtomic(file, doc.toString());
}

/** Removes a provider from the file, keeping comments and other sections; returns what it was. */
export async function removeStorageProvider(file: string, providerId: string): Promise<StorageProvider> {
  const loaded = await loadConfig(file);
  const index = loaded.config.storageProviders.findIndex((p) => p.id === providerId);
  if (index < 0) {
    const why = providerId === MANAGED_PROVIDER_ID ? 'the built-in provider is not in the file and cannot be removed' : `no such provider in ${file}`;
    throw new ConfigError('UnknownProvider', `unknown storage provider "${providerId}": ${why}; see \`gradient storageProviders list\``);
  }
  const doc = YAML.parseDocument(await readFile(file, 'utf8'));
  doc.deleteIn(['storageProviders', index]);
  validateConfig(doc.toJS(), file);
  await writeFileAtomic(file, doc.toString());
  return loaded.config.storageProviders[index]!;
}

async function writeFileAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  // 0600: the file may hold access key ids (and plain secrets if a user insists).
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}
