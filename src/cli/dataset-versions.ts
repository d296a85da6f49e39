// `gradient datasets versions create|commit|list|delete`.
import type { Command } from 'commander';
import { deleteVersion } from '../catalog/delete.js';
import { formatRef } from '../catalog/refs.js';
import { CatalogError, type CatalogErrorCode } from '../catalog/errors.js';
import type { CommittedRecord } from '../catalog/records.js';
import { DaemonClientError, requestCommit } from '../daemon/client.js';
import { defaultSocketPath } from '../daemon/socket-path.js';
import { datasetIdArg, refArg } from './args.js';
import { confirm } from './confirm.js';
import { action, type CliIO } from './context.js';
import { count, formatBytes, table } from './output.js';

export function registerVersions(datasets: Command, io: CliIO): void {
  const versions = datasets.command('versions').description('dataset versions');

  versions
    .command('create')
    .description('create a new (uncommitted) version, empty or starting with the files of another')
    .requiredOption('--id <dataset>', 'dataset id (or its unique name)')
    .option('--message <text>', 'what this version is about', '')
    .option('--from <dataset:version>', 'start with the files of this version (a tag or latest works; no data is copied)')
    .addHelpText(
      'after',
      '\nExamples:\n  gradient datasets versions create --id democli --message "first cut"\n  gradient datasets versions create --id democli --from democli:latest   # then files put/delete, commit',
    )
    .action(
      action(io, async (s, opts: { id: string; message: string; from?: string }) => {
        const catalog = await s.catalog();
        const datasetId = await datasetIdArg(catalog, opts.id);
        const from = opts.from === undefined ? undefined : await refArg(catalog, opts.from);
        const v = await catalog.createVersion(datasetId, opts.message, from ? { from } : {});
        const ref = formatRef(v.datasetId, v.id);
        s.out.line(`Created dataset version: ${ref}${v.from ? ` (from ${v.from}, ${count(v.fileCount, 'file')})` : ''}`);
        s.out.data({ ...v, ref });
      }),
    );

  versions
    .command('commit')
    .description('commit a version: it becomes immutable and "latest"')
    .requiredOption('--id <dataset:version>', 'version to commit')
    .option('--allow-empty', 'commit a version that has no files')
    .addHelpText('after', '\nExit codes: 0 committed; 4 already committed, or empty without --allow-empty.\n\nExample:\n  gradient datasets versions commit --id democli:fo5rp4m')
    .action(
      action(io, async (s, opts: { id: string; allowEmpty?: boolean }) => {
        const catalog = await s.catalog();
        const ref = await refArg(catalog, opts.id);
        const versionId = await catalog.resolveVersionId(ref.datasetId, ref.version);
        const allowEmpty = opts.allowEmpty === true;
        // A daemon serving the version read-write commits it itself: it finishes the uploads closed files
        // asked for, then turns the mount read-only. Otherwise (no daemon, or not served there) commit here.
        const viaDaemon = await commitThroughDaemon(defaultSocketPath(s.io.env), ref.datasetId, versionId, allowEmpty);
        const committed = viaDaemon ?? (await catalog.commitVersion(ref.datasetId, versionId, { allowEmpty }));
        s.out.line(`Committed dataset version: ${formatRef(ref.datasetId, versionId)}`);
        s.out.data({ datasetId: ref.datasetId, versionId, ...committed });
      }),
    );

  versions
    .command('list')
    .description("list a dataset's versions, with the one latest names and where the tags point")
    .requiredOption('--id <dataset>', 'dataset id (or its unique name)')
    .addHelpText('after', '\nExample:\n  gradient datasets versions list --id democli --json')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const list = await catalog.listVersions(await datasetIdArg(catalog, opts.id));
        s.out.result(
          () =>
            list.length === 0
              ? 'No versions found'
              : table([
                  ['ID', 'Message', 'State', 'Files', 'Size', 'Latest', 'Tags', 'Created', 'Committed'],
                  ...list.map((v) => [
                    v.id,
                    v.message,
                    v.state,
                    v.fileCount === undefined ? '' : String(v.fileCount),
                    v.bytes === undefined ? '' : formatBytes(v.bytes),
                    v.latest ? 'yes' : '',
                    v.tags.join(', '),
                    v.createdAt,
                    v.committedAt ?? '',
                  ]),
                ]),
          list,
        );
      }),
    );

  versions
    .command('delete')
    .description('delete a version (committed or tagged ones only with --force)')
    .requiredOption('--id <dataset:version>', 'version to delete')
    .option('--force', 'also delete a committed version, and the tags that point to it')
    .option('--yes', 'do not ask for confirmation (needed without a terminal)')
    .addHelpText(
      'after',
      '\nAn uncommitted version goes freely. A committed one needs --force (`latest` then falls back to the\nprevious commit), as does one a tag points to (the tags go too). File contents go with `datasets gc`.\n\nExit codes: 0 deleted; 2 no confirmation (no terminal and no --yes); 3 no such version; 4 committed or tagged.\n\nExample:\n  gradient datasets versions delete --id democli:fo5rp4m --yes',
    )
    .action(
      action(io, async (s, opts: { id: string; force?: boolean; yes?: boolean }) => {
        const catalog = await s.catalog();
        const ref = await refArg(catalog, opts.id);
        const r = await deleteVersion(catalog, ref.datasetId, ref.version, {
          force: opts.force === true,
          confirm: (plan) =>
            confirm(
              s,
              `delete ${plan.state} dataset version ${formatRef(plan.datasetId, plan.versionId)}${plan.tags.length > 0 ? ` and ${plan.tags.length === 1 ? 'its tag' : 'its tags'} ${plan.tags.join(', ')}` : ''}`,
              opts.yes,
            ),
        });
        const refText = formatRef(r.datasetId, r.versionId);
        s.out.line(`Deleted dataset version: ${refText}${r.tags.length > 0 ? ` (and ${r.tags.length === 1 ? 'tag' : 'tags'} ${r.tags.join(', ')})` : ''}`);
        s.out.data({ ...r, ref: refText, deleted: true });
      }),
    );
}

const CATALOG_CODES: readonly string[] = ['NotFound', 'BadRef', 'BadInput', 'Committed', 'NotCommitted', 'Conflict', 'Refused', 'Corrupt'] satisfies CatalogErrorCode[];

/** The daemon's commit of a version it serves, or undefined when no daemon serves it. */
async function commitThroughDaemon(socket: string, datasetId: string, versionId: string, allowEmpty: boolean): Promise<CommittedRecord | undefined> {
  try {
    const r = await requestCommit(socket, datasetId, versionId, { allowEmpty });
    return r.served ? r.committed : undefined;
  } catch (err) {
    if (err instanceof DaemonClientError && err.code === 'NO_DAEMON') return undefined;
    // The catalog's refusal, as if made here (its exit code); anything else as it came.
    if (err instanceof DaemonClientError && err.remoteCode !== undefined && CATALOG_CODES.includes(err.remoteCode)) {
      throw new CatalogError(err.remoteCode as CatalogErrorCode, err.message);
    }
    throw err;
  }
}
