// `gradient datasets ...`: create/list/details/delete and gc here; versions, files and tags in their own
// modules. Verbs and output as in Gradient's docs. Wherever a dataset id is asked for, a dataset's name works
// too when no other dataset has it.
import type { Command } from 'commander';
import { deleteDataset } from '../catalog/delete.js';
import { collectGarbage, DEFAULT_GC_GRACE_MS, type GcStoreResult } from '../catalog/gc.js';
import { REUSE_MAX_AGE_MS } from '../catalog/put.js';
import { datasetIdArg, duration } from './args.js';
import { confirm } from './confirm.js';
import { action, type CliIO, type CommandContext } from './context.js';
import { registerFiles } from './dataset-files.js';
import { registerTags } from './dataset-tags.js';
import { registerVersions } from './dataset-versions.js';
import { count, formatBytes, table } from './output.js';

async function providerLabel(s: CommandContext, providerId: string): Promise<string> {
  const catalog = await s.catalog();
  const p = catalog.providers.find((x) => x.id === providerId);
  return p ? `${p.name} (${p.id})` : providerId;
}

export function registerDatasets(program: Command, io: CliIO): void {
  const datasets = program.command('datasets').description('versioned team datasets');

  datasets
    .command('create')
    .description('create a dataset')
    .requiredOption('--name <name>', 'dataset name')
    .option('--description <text>', 'description')
    .option('--storageProviderId <id>', 'storage provider to keep it in (default: the managed provider)')
    .addHelpText('after', '\nA second dataset with the same name is allowed (with a warning); refer to such datasets by id.\n\nExample:\n  gradient datasets create --name democli --storageProviderId splabc123def456')
    .action(
      action(io, async (s, opts: { name: string; description?: string; storageProviderId?: string }) => {
        const catalog = await s.catalog();
        const namesakes = (await catalog.listDatasets()).datasets.filter((d) => d.name === opts.name.trim());
        const ds = await catalog.createDataset(opts);
        if (namesakes.length > 0) {
          s.out.warn(`${count(namesakes.length, 'dataset')} already ${namesakes.length === 1 ? 'has' : 'have'} the name "${ds.name}" (${namesakes.map((d) => d.id).join(', ')}): name ${ds.id} by its id`);
        }
        s.out.line(`Created dataset: ${ds.id}`);
        s.out.data(ds);
      }),
    );

  datasets
    .command('list')
    .description('list datasets')
    .addHelpText('after', '\nExample:\n  gradient datasets list --json')
    .action(
      action(io, async (s) => {
        const catalog = await s.catalog();
        const { datasets: list, warnings } = await catalog.listDatasets();
        warnings.forEach((w) => s.out.warn(w));
        const rows = await Promise.all(list.map(async (d) => [d.name, d.id, await providerLabel(s, d.storageProviderId)]));
        s.out.result(() => (list.length === 0 ? 'No datasets found' : table([['Name', 'ID', 'Storage Provider'], ...rows])), list);
      }),
    );

  datasets
    .command('details')
    .description('show a dataset')
    .requiredOption('--id <dataset>', 'dataset id (or its unique name)')
    .addHelpText('after', '\nExample:\n  gradient datasets details --id democli')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const { record } = await catalog.getDataset(await datasetIdArg(catalog, opts.id));
        const provider = await providerLabel(s, record.storageProviderId);
        s.out.result(
          () =>
            table(
              [
                ['Name', record.name],
                ['ID', record.id],
                ['Description', record.description],
                ['StorageProvider', provider],
              ],
              false,
            ),
          record,
        );
      }),
    );

  datasets
    .command('delete')
    .description('delete a dataset: every version and tag (the file contents go with `datasets gc`)')
    .requiredOption('--id <dataset>', 'dataset id (or its unique name)')
    .option('--yes', 'do not ask for confirmation (needed without a terminal)')
    .addHelpText('after', '\nExit codes: 0 deleted; 2 no confirmation (no terminal and no --yes); 3 no such dataset.\n\nExample:\n  gradient datasets delete --id dsabc123def4567 --yes')
    .action(
      action(io, async (s, opts: { id: string; yes?: boolean }) => {
        const catalog = await s.catalog();
        const r = await deleteDataset(catalog, await datasetIdArg(catalog, opts.id), {
          confirm: ({ record, versions }) => confirm(s, `delete dataset ${record.name} (${record.id}) and its ${count(versions, 'version')}`, opts.yes),
        });
        s.out.line(`Deleted dataset: ${r.record.id} (${r.record.name}, ${count(r.versions, 'version')}); \`gradient datasets gc\` frees its file contents`);
        s.out.data({ datasetId: r.record.id, name: r.record.name, versions: r.versions, objects: r.objects, deleted: true });
      }),
    );

  datasets
    .command('gc')
    .description('remove file contents (blobs) that no version names any more')
    .option('--dry-run', 'show what would be removed, and how many bytes, and remove nothing')
    .option('--grace <duration>', 'keep contents younger than this, named or not (protects puts in progress)', formatDuration(DEFAULT_GC_GRACE_MS))
    .option('--storageProviderId <id>', 'only this storage provider (default: all)')
    .option('--yes', 'do not ask for confirmation (needed without a terminal)')
    .addHelpText(
      'after',
      `\nSafe while \`files put\` runs elsewhere: contents younger than --grace stay, and so does everything a
journal or manifest names. Keep --grace above ${REUSE_MAX_AGE_MS / 3_600_000} h (how long a put reuses contents it finds) unless nothing
else writes.\n\nExit codes: 0 done; 2 no confirmation (no terminal and no --yes) or a bad option.\n\nExamples:\n  gradient datasets gc --dry-run\n  gradient datasets gc --yes`,
    )
    .action(
      action(io, async (s, opts: { dryRun?: boolean; grace: string; storageProviderId?: string; yes?: boolean }) => {
        const catalog = await s.catalog();
        const graceMs = duration(opts.grace);
        if (graceMs < REUSE_MAX_AGE_MS) {
          s.out.warn(`--grace ${opts.grace} is below ${REUSE_MAX_AGE_MS / 3_600_000} h: a \`files put\` running now could lose contents it reuses`);
        }
        const run = (dryRun: boolean) => collectGarbage(catalog, { graceMs, dryRun, ...(opts.storageProviderId ? { providerId: opts.storageProviderId } : {}) });
        if (!opts.dryRun && !opts.yes && s.io.stdin?.isTTY && s.io.stderr.isTTY) {
          // At a terminal: show what would go before asking (the real run looks again).
          const preview = await run(true);
          s.io.stderr.write(`${preview.map((r) => gcLine(r, true, graceMs)).join('\n')}\n`);
        }
        if (!opts.dryRun) await confirm(s, 'remove the file contents no version names', opts.yes);
        const stores = await run(opts.dryRun === true);
        const removed = stores.reduce((n, r) => n + r.removed.length, 0);
        const removedBytes = stores.reduce((n, r) => n + r.removedBytes, 0);
        s.out.result(() => stores.map((r) => gcLine(r, opts.dryRun === true, graceMs)).join('\n'), {
          dryRun: opts.dryRun === true,
          graceSeconds: graceMs / 1000,
          removed,
          removedBytes,
          stores,
        });
      }),
    );

  registerVersions(datasets, io);
  registerFiles(datasets, io);
  registerTags(datasets, io);
}

function gcLine(r: GcStoreResult, dryRun: boolean, graceMs: number): string {
  const what = `${count(r.removed.length, 'blob')} (${formatBytes(r.removedBytes)})`;
  return (
    `${dryRun ? 'Would remove' : 'Removed'} ${what} of ${r.blobs} from ${r.location}; ` +
    `kept ${r.referenced} named by versions and ${r.young} younger than ${formatDuration(graceMs)}`
  );
}

function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
