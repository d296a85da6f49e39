// `gradient datasets ...`: create/list/details, versions, files, tags — verbs and output as in Gradient's docs.
import type { Command } from 'commander';
import { getFiles } from '../catalog/get.js';
import { putFiles } from '../catalog/put.js';
import { formatRef, parseDatasetId, parseRef } from '../catalog/refs.js';
import { CatalogError } from '../catalog/errors.js';
import { action, type CliIO, type CommandContext } from './context.js';
import { count, formatBytes, table } from './output.js';
import { progressBar } from './progress.js';

function parallelism(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new CatalogError('BadInput', `--parallel must be an integer from 1 to 256, got "${value}"`);
  return n;
}

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
    .action(
      action(io, async (s, opts: { name: string; description?: string; storageProviderId?: string }) => {
        const catalog = await s.catalog();
        const ds = await catalog.createDataset(opts);
        s.out.line(`Created dataset: ${ds.id}`);
        s.out.data(ds);
      }),
    );

  datasets
    .command('list')
    .description('list datasets')
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
    .requiredOption('--id <dataset-id>', 'dataset id')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const { record } = await catalog.getDataset(parseDatasetId(opts.id));
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

  const versions = datasets.command('versions').description('dataset versions');
  versions
    .command('create')
    .description('create a new (uncommitted) version')
    .requiredOption('--id <dataset-id>', 'dataset id')
    .option('--message <text>', 'what this version is about', '')
    .action(
      action(io, async (s, opts: { id: string; message: string }) => {
        const catalog = await s.catalog();
        const v = await catalog.createVersion(parseDatasetId(opts.id), opts.message);
        s.out.line(`Created dataset version: ${formatRef(v.datasetId, v.id)}`);
        s.out.data({ ...v, ref: formatRef(v.datasetId, v.id) });
      }),
    );
  versions
    .command('commit')
    .description('commit a version: it becomes immutable and "latest"')
    .requiredOption('--id <dataset-id:version>', 'version to commit')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const ref = parseRef(opts.id);
        const versionId = await catalog.resolveVersionId(ref.datasetId, ref.version);
        const committed = await catalog.commitVersion(ref.datasetId, versionId);
        s.out.line(`Committed dataset version: ${formatRef(ref.datasetId, versionId)}`);
        s.out.data({ datasetId: ref.datasetId, versionId, ...committed });
      }),
    );
  versions
    .command('list')
    .description("list a dataset's versions")
    .requiredOption('--id <dataset-id>', 'dataset id')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const list = await catalog.listVersions(parseDatasetId(opts.id));
        s.out.result(
          () =>
            list.length === 0
              ? 'No versions found'
              : table([
                  ['ID', 'Message', 'State', 'Files', 'Size', 'Tags', 'Created', 'Committed'],
                  ...list.map((v) => [
                    v.id,
                    v.message,
                    v.state,
                    v.fileCount === undefined ? '' : String(v.fileCount),
                    v.bytes === undefined ? '' : formatBytes(v.bytes),
                    v.tags.join(', '),
                    v.createdAt,
                    v.committedAt ?? '',
                  ]),
                ]),
          list,
        );
      }),
    );

  const files = datasets.command('files').description('files in a dataset version');
  files
    .command('put')
    .description('upload a file or a directory tree into an uncommitted version')
    .requiredOption('--id <dataset-id:version>', 'version to upload into')
    .requiredOption('--source-path <path>', 'local file or directory')
    .option('--target-path <path>', 'where to put it inside the version (default: the root)')
    .option('--parallel <n>', 'files uploaded in parallel', parallelism, 16)
    .action(
      action(io, async (s, opts: { id: string; sourcePath: string; targetPath?: string; parallel: number }) => {
        const catalog = await s.catalog();
        const bar = progressBar('Uploading', io.stderr, s.progress);
        const res = await putFiles(catalog, opts.id, opts.sourcePath, {
          targetPath: opts.targetPath,
          concurrency: opts.parallel,
          onProgress: (p) => bar.update(p),
        }).finally(() => bar.done());
        s.out.line(
          `Uploaded ${count(res.files, 'file')} (${formatBytes(res.bytes)}; ${res.uploadedFiles} new, ${formatBytes(res.uploadedBytes)}) to ${formatRef(res.datasetId, res.versionId)}`,
        );
        s.out.data(res);
      }),
    );
  files
    .command('list')
    .description('list files (one directory level, or --recursive)')
    .requiredOption('--id <dataset-id:version[/path]>', 'version, optionally with a path inside it')
    .option('--recursive', 'list every file below the path')
    .action(
      action(io, async (s, opts: { id: string; recursive?: boolean }) => {
        const catalog = await s.catalog();
        const ref = parseRef(opts.id, { allowPath: true });
        const { files: all } = await catalog.listFiles(ref);
        const base = ref.path === '' ? '' : `${ref.path}/`;
        const rows: Array<{ name: string; size?: number }> = [];
        const dirs = new Set<string>();
        for (const f of all) {
          const rel = f.path === ref.path ? f.path.slice(f.path.lastIndexOf('/') + 1) : f.path.slice(base.length);
          const slash = rel.indexOf('/');
          if (opts.recursive || slash < 0) rows.push({ name: rel, size: f.size });
          else if (!dirs.has(rel.slice(0, slash))) {
            dirs.add(rel.slice(0, slash));
            rows.push({ name: `${rel.slice(0, slash)}/` });
          }
        }
        if (all.length === 0 && ref.path !== '') throw new CatalogError('NotFound', `no file or directory "${ref.path}" in ${opts.id.split('/')[0]}`);
        s.out.result(
          () => table([['Name', 'Size'], ...rows.map((r) => [r.name, r.size === undefined ? '' : String(r.size)])]),
          all,
        );
      }),
    );
  files
    .command('get')
    .description('download files of a version into a local directory')
    .requiredOption('--id <dataset-id:version[/path]>', 'version, optionally with a path inside it')
    .requiredOption('--target-path <dir>', 'local directory to download into')
    .option('--parallel <n>', 'files downloaded in parallel', parallelism, 16)
    .action(
      action(io, async (s, opts: { id: string; targetPath: string; parallel: number }) => {
        const catalog = await s.catalog();
        const bar = progressBar('Downloading', io.stderr, s.progress);
        const res = await getFiles(catalog, opts.id, opts.targetPath, {
          concurrency: opts.parallel,
          onProgress: (p) => bar.update(p),
        }).finally(() => bar.done());
        s.out.line(`Downloaded ${count(res.files, 'file')} (${formatBytes(res.bytes)}) to ${opts.targetPath}`);
        s.out.data(res);
      }),
    );
  files
    .command('delete')
    .description('remove a file or directory from an uncommitted version')
    .requiredOption('--id <dataset-id:version/path>', 'version and the path to remove')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const n = await catalog.deleteFiles(opts.id);
        s.out.line(`Deleted ${count(n, 'file')} from ${opts.id}`);
        s.out.data({ deleted: n });
      }),
    );

  const tags = datasets.command('tags').description('named pointers to committed versions');
  tags
    .command('set')
    .description('point a tag at a committed version (moves it if it exists)')
    .requiredOption('--id <dataset-id:version>', 'version to tag')
    .requiredOption('--name <tag>', 'tag name')
    .action(
      action(io, async (s, opts: { id: string; name: string }) => {
        const catalog = await s.catalog();
        const ref = parseRef(opts.id);
        const versionId = await catalog.setTag(ref.datasetId, ref.version, opts.name);
        s.out.line(`Set tag ${opts.name} on dataset version: ${formatRef(ref.datasetId, versionId)}`);
        s.out.data({ datasetId: ref.datasetId, versionId, tag: opts.name });
      }),
    );
  tags
    .command('delete')
    .description('delete a tag')
    .requiredOption('--id <dataset-id>', 'dataset id')
    .requiredOption('--name <tag>', 'tag name')
    .action(
      action(io, async (s, opts: { id: string; name: string }) => {
        const catalog = await s.catalog();
        await catalog.deleteTag(parseDatasetId(opts.id), opts.name);
        s.out.line(`Deleted tag: ${opts.name}`);
        s.out.data({ datasetId: opts.id, tag: opts.name, deleted: true });
      }),
    );
  tags
    .command('list')
    .description("list a dataset's tags")
    .requiredOption('--id <dataset-id>', 'dataset id')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const list = await catalog.listTags(parseDatasetId(opts.id));
        s.out.result(
          () => (list.length === 0 ? 'No tags found' : table([['Tag', 'Version'], ...list.map((t) => [t.tag, t.version])])),
          list,
        );
      }),
    );
}
