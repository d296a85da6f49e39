// `gradient datasets tags set|delete|list`.
import type { Command } from 'commander';
import { formatRef } from '../catalog/refs.js';
import { datasetIdArg, refArg } from './args.js';
import { action, type CliIO } from './context.js';
import { table } from './output.js';

export function registerTags(datasets: Command, io: CliIO): void {
  const tags = datasets.command('tags').description('named pointers to committed versions');

  tags
    .command('set')
    .description('point a tag at a committed version (moves it if it exists)')
    .requiredOption('--id <dataset:version>', 'version to tag')
    .requiredOption('--name <tag>', 'tag name')
    .addHelpText('after', '\nExample:\n  gradient datasets tags set --id democli:fo5rp4m --name golden')
    .action(
      action(io, async (s, opts: { id: string; name: string }) => {
        const catalog = await s.catalog();
        const ref = await refArg(catalog, opts.id);
        const versionId = await catalog.setTag(ref.datasetId, ref.version, opts.name);
        s.out.line(`Set tag ${opts.name} on dataset version: ${formatRef(ref.datasetId, versionId)}`);
        s.out.data({ datasetId: ref.datasetId, versionId, tag: opts.name });
      }),
    );

  tags
    .command('delete')
    .description('delete a tag')
    .requiredOption('--id <dataset>', 'dataset id (or its unique name)')
    .requiredOption('--name <tag>', 'tag name')
    .addHelpText('after', '\nExample:\n  gradient datasets tags delete --id democli --name golden')
    .action(
      action(io, async (s, opts: { id: string; name: string }) => {
        const catalog = await s.catalog();
        const datasetId = await datasetIdArg(catalog, opts.id);
        await catalog.deleteTag(datasetId, opts.name);
        s.out.line(`Deleted tag: ${opts.name}`);
        s.out.data({ datasetId, tag: opts.name, deleted: true });
      }),
    );

  tags
    .command('list')
    .description("list a dataset's tags")
    .requiredOption('--id <dataset>', 'dataset id (or its unique name)')
    .addHelpText('after', '\nExample:\n  gradient datasets tags list --id democli')
    .action(
      action(io, async (s, opts: { id: string }) => {
        const catalog = await s.catalog();
        const list = await catalog.listTags(await datasetIdArg(catalog, opts.id));
        s.out.result(
          () => (list.length === 0 ? 'No tags found' : table([['Tag', 'Version'], ...list.map((t) => [t.tag, t.version])])),
          list,
        );
      }),
    );
}
