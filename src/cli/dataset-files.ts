// `gradient datasets files put|list|get|delete`.
import type { Command } from 'commander';
import { getFiles } from '../catalog/get.js';
import { putFiles } from '../catalog/put.js';
import { formatRef } from '../catalog/refs.js';
import { CatalogError } from '../catalog/errors.js';
import { parallelism, refArg } from './args.js';
import { action, type CliIO } from './context.js';
import { count, formatBytes, table } from './output.js';
import { progressBar } from './progress.js';

export function registerFiles(datasets: Command, io: CliIO): void {
  const files = datasets.command('files').description('files in a dataset version');

  files
    .command('put')
    .description('upload a file or a directory tree into an uncommitted version')
    .requiredOption('--id <dataset:version>', 'version to upload into')
    .requiredOption('--source-path <path>', 'local file or directory')
    .option('--target-path <path>', 'where to put it inside the version (default: the root)')
    .option('--parallel <n>', 'files uploaded in parallel', parallelism, 16)
    .addHelpText('after', '\nExample:\n  gradient datasets files put --id democli:fo5rp4m --source-path ./images --target-path images/')
    .action(
      action(io, async (s, opts: { id: string; sourcePath: string; targetPath?: string; parallel: number }) => {
        const catalog = await s.catalog();
        const ref = await refArg(catalog, opts.id);
        const bar = progressBar('Uploading', io.stderr, s.progress);
        const res = await putFiles(catalog, ref, opts.sourcePath, {
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
    .requiredOption('--id <dataset:version[/path]>', 'version, optionally with a path inside it')
    .option('--recursive', 'list every file below the path')
    .addHelpText('after', '\nExample:\n  gradient datasets files list --id democli:latest/images --recursive')
    .action(
      action(io, async (s, opts: { id: string; recursive?: boolean }) => {
        const catalog = await s.catalog();
        const ref = await refArg(catalog, opts.id, { allowPath: true });
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
    .requiredOption('--id <dataset:version[/path]>', 'version, optionally with a path inside it')
    .requiredOption('--target-path <dir>', 'local directory to download into')
    .option('--parallel <n>', 'files downloaded in parallel', parallelism, 16)
    .option('--force', 'overwrite local files that exist (by default nothing is downloaded if any would be)')
    .addHelpText('after', '\nExit codes: 0 downloaded; 3 no such version or path; 4 local files exist (without --force).\n\nExample:\n  gradient datasets files get --id democli:latest/images --target-path ./images')
    .action(
      action(io, async (s, opts: { id: string; targetPath: string; parallel: number; force?: boolean }) => {
        const catalog = await s.catalog();
        const ref = await refArg(catalog, opts.id, { allowPath: true });
        const bar = progressBar('Downloading', io.stderr, s.progress);
        const res = await getFiles(catalog, ref, opts.targetPath, {
          concurrency: opts.parallel,
          force: opts.force === true,
          onProgress: (p) => bar.update(p),
        }).finally(() => bar.done());
        s.out.line(`Downloaded ${count(res.files, 'file')} (${formatBytes(res.bytes)}) to ${opts.targetPath}`);
        s.out.data(res);
      }),
    );

  files
    .command('delete')
    .description('remove a file or directory from an uncommitted version')
    .requiredOption('--id <dataset:version/path>', 'version and the path to remove')
    .addHelpText('after', '\nExample:\n  gradient datasets files delete --id democli:fo5rp4m/images/bad.png')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const n = await catalog.deleteFiles(await refArg(catalog, opts.id, { allowPath: true }));
        s.out.line(`Deleted ${count(n, 'file')} from ${opts.id}`);
        s.out.data({ deleted: n });
      }),
    );
}
