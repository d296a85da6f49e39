// `gradient storageProviders ...`: connect S3-compatible buckets (kept in the config file), list them, and
// remove them from the config file.
import type { Command } from 'commander';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { newStorageProviderId } from '../catalog/ids.js';
import { openStore } from '../catalog/providers.js';
import {
  addStorageProvider,
  allProviders,
  checkStorageProvider,
  findProvider,
  managedProviderId,
  MANAGED_PROVIDER_ID,
  removeStorageProvider,
  type S3Provider,
} from '../config/config-file.js';
import { isSecretRef, secretsDir } from '../config/secrets.js';
import { CatalogError } from '../catalog/errors.js';
import { confirm } from './confirm.js';
import { action, type CliIO, type CommandContext } from './context.js';
import { CliError, exitCodeFor } from './exit-codes.js';
import { count, table } from './output.js';

interface CreateS3Opts {
  name: string;
  bucket: string;
  accessKey?: string;
  secretAccessKey?: string;
  endpoint?: string;
  region?: string;
  prefix?: string;
  verify: boolean;
}

/**
 * The config keeps only `secret:<name>` references: a plain secret given on the command line is saved as
 * a secret file (mode 0600) in the secrets directory, and the config refers to it.
 */
const ownSecretName = (providerId: string) => `${providerId}-secret-access-key`;

async function storeSecret(s: CommandContext, providerId: string, value: string): Promise<string> {
  if (isSecretRef(value)) return value;
  const name = ownSecretName(providerId);
  const dir = secretsDir(s.io.env);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(path.join(dir, name), value, { mode: 0o600 });
  } catch (err) {
    throw new CatalogError(
      'BadInput',
      `cannot save the secret access key in ${dir} (${(err as NodeJS.ErrnoException).code}): set GRADIENT_SECRETS_DIR to a writable directory, or pass --secretAccessKey secret:<name>`,
    );
  }
  return `secret:${name}`;
}

export function registerStorageProviders(program: Command, io: CliIO): void {
  const group = program.command('storageProviders').description('where datasets are stored');

  group
    .command('create')
    .description('connect a storage provider')
    .command('s3')
    .description('an S3 or S3-compatible bucket (AWS, DigitalOcean Spaces, Ceph, MinIO...)')
    .requiredOption('--name <name>', 'provider name')
    .requiredOption('--bucket <bucket>', 'bucket name')
    .option('--accessKey <id>', 'access key id (omit both keys to use the AWS credential chain)')
    .option('--secretAccessKey <key>', 'secret access key, or secret:<name>')
    .option('--endpoint <url>', 'custom endpoint, e.g. https://nyc3.digitaloceanspaces.com')
    .option('--region <region>', 'region, e.g. us-east-1')
    .option('--prefix <prefix>', 'key prefix inside the bucket')
    .option('--no-verify', 'do not check that the bucket is reachable with these credentials')
    .addHelpText('after', '\nExample:\n  gradient storageProviders create s3 --name team --bucket my-bucket --accessKey AK... \\\n    --secretAccessKey secret:team-key --endpoint https://nyc3.digitaloceanspaces.com')
    .action(
      action(io, async (s, opts: CreateS3Opts) => {
        if ((opts.accessKey === undefined) !== (opts.secretAccessKey === undefined)) {
          throw new CatalogError('BadInput', 'give both --accessKey and --secretAccessKey, or neither (to use the AWS credential chain)');
        }
        const id = newStorageProviderId();
        const provider: S3Provider = {
          id,
          name: opts.name,
          type: 's3',
          bucket: opts.bucket,
          ...(opts.prefix ? { prefix: opts.prefix } : {}),
          ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
          ...(opts.region ? { region: opts.region } : {}),
          ...(opts.accessKey !== undefined ? { accessKey: opts.accessKey } : {}),
        };
        // Before anything is sent or saved: what the config file could not hold is refused now.
        checkStorageProvider(opts.secretAccessKey === undefined ? provider : { ...provider, secretAccessKey: 'secret:x' });
        if (opts.verify) {
          // Fail now, with the storage error's advice, rather than at the first upload.
          const store = openStore(
            opts.secretAccessKey === undefined ? provider : { ...provider, secretAccessKey: opts.secretAccessKey },
            s.io.env,
          );
          try {
            for await (const _page of store.list('', { maxKeys: 1 })) break;
          } finally {
            store.close?.();
          }
        }
        if (opts.secretAccessKey !== undefined) provider.secretAccessKey = await storeSecret(s, id, opts.secretAccessKey);
        await addStorageProvider(s.configPath, provider);
        s.out.line(`Created storage provider: ${id}`);
        s.out.data(provider);
      }),
    );

  group
    .command('list')
    .description('list storage providers')
    .addHelpText('after', '\nExample:\n  gradient storageProviders list --json')
    .action(
      action(io, async (s) => {
        const { config } = await s.config();
        const managed = managedProviderId(config);
        const list = allProviders(config, s.io.env).map((p) => ({
          id: p.id,
          name: p.name,
          type: p.type,
          location: p.type === 'local' ? p.path : `s3://${p.bucket}/${p.prefix ?? ''}${p.endpoint ? ` (${p.endpoint})` : ''}`,
          managed: p.id === managed,
        }));
        s.out.result(
          () =>
            table([
              ['Name', 'ID', 'Type', 'Location', 'Default'],
              ...list.map((p) => [p.name, p.id, p.type, p.location, p.managed ? 'yes' : '']),
            ]),
          list,
        );
      }),
    );

  group
    .command('delete')
    .description('remove a storage provider from the config file (the bucket and what is in it stay)')
    .requiredOption('--id <id>', 'storage provider id')
    .option('--force', 'remove it even though datasets are kept in it (or it cannot be checked)')
    .option('--yes', 'do not ask for confirmation (needed without a terminal)')
    .addHelpText(
      'after',
      '\nRefused while datasets are kept in it: they would be unreachable (their data stays in the bucket).\nThe secret `storageProviders create` saved for it goes too.\n\nExit codes: 0 removed; 2 no confirmation (no terminal and no --yes); 3 no such provider; 4 it holds datasets, or is the managed one.\n\nExample:\n  gradient storageProviders delete --id splabc123def456 --yes',
    )
    .action(
      action(io, async (s, opts: { id: string; force?: boolean; yes?: boolean }) => {
        const { config } = await s.config();
        const provider = findProvider(config, opts.id, s.io.env);
        if (provider.id === MANAGED_PROVIDER_ID) throw new CatalogError('BadInput', `the built-in provider "${provider.name}" cannot be removed`);
        const label = `${provider.name} (${provider.id})`;
        if (managedProviderId(config) === provider.id) {
          throw new CatalogError('Refused', `${label} is the managed provider (managedStorageProviderId in ${s.configPath}): name another one there first`);
        }
        if (!opts.force) {
          const catalog = await s.catalog();
          const held = await catalog.datasetsIn(provider.id).catch((err: unknown) => {
            throw new CliError(exitCodeFor(err), `cannot check whether ${label} holds datasets (${(err as Error).message}): pass --force to remove it anyway`);
          });
          if (held.length > 0) {
            throw new CatalogError(
              'Refused',
              `${label} holds ${count(held.length, 'dataset')} (${held.map((d) => `${d.name} ${d.id}`).join(', ')}): delete ${held.length === 1 ? 'it' : 'them'} first, or pass --force (the data stays in the bucket, unreachable until a provider names it again)`,
            );
          }
        }
        await confirm(s, `remove storage provider ${label} from ${s.configPath}`, opts.yes);
        const removed = await removeStorageProvider(s.configPath, provider.id);
        // Its secret, if `storageProviders create` saved it: nothing else refers to that file.
        let secretRemoved = false;
        if (removed.type === 's3' && removed.secretAccessKey === `secret:${ownSecretName(removed.id)}`) {
          secretRemoved = await unlink(path.join(secretsDir(s.io.env), ownSecretName(removed.id))).then(
            () => true,
            () => false,
          );
        }
        s.out.line(`Deleted storage provider: ${label}`);
        s.out.data({ id: removed.id, name: removed.name, deleted: true, secretRemoved });
      }),
    );
}
