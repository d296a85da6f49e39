import { describe, expect, it } from 'vitest';
import { PUBLIC_DATASET_NAMES, PublicCatalog, publicDatasetsConfigSchema } from '../../../src/catalog/public-datasets.js';
import { configSchema, configSection } from '../../../src/config/config-file.js';
import { createEntryResolver, desiredEntries } from '../../../src/daemon/resolvers.js';
import { parseSettings } from '../../../src/settings/parse.js';

describe('PublicCatalog', () => {
  it('serves only the embedded mnist without configuration', () => {
    const c = new PublicCatalog();
    expect(c.names()).toEqual(['mnist']);
    expect(c.source('mnist')).toEqual({ kind: 'embedded' });
    expect(c.source('coco')).toBeUndefined();
  });

  it('serves every public dataset from an anonymous bucket, with per-dataset overrides', () => {
    const c = new PublicCatalog({
      source: { bucket: 'gradient-public', prefix: '/datasets/', endpoint: 'http://127.0.0.1:7480' },
      datasets: { mnist: 'embedded', lsun: false, coco: { bucket: 'coco-mirror', prefix: '2017' } },
    });
    expect(c.names()).toEqual(PUBLIC_DATASET_NAMES.filter((n) => n !== 'lsun'));
    expect(c.source('mnist')).toEqual({ kind: 'embedded' });
    expect(c.source('coco')).toEqual({ kind: 's3', bucket: 'coco-mirror', prefix: '2017' });
    expect(c.source('tiny-imagenet-200')).toEqual({
      kind: 's3',
      bucket: 'gradient-public',
      prefix: 'datasets/tiny-imagenet-200',
      endpoint: 'http://127.0.0.1:7480',
    });
  });

  it('rejects unknown names and an embedded copy of anything but mnist', () => {
    expect(() => new PublicCatalog({ datasets: { imagenet: false } as never })).toThrow();
    expect(() => new PublicCatalog({ datasets: { coco: 'embedded' } })).toThrow(/only mnist has an embedded copy/);
  });
});

describe('desiredEntries', () => {
  it('lists public datasets first, and lets a settings entry take a public name', () => {
    const settings = parseSettings('mine:\n  type: s3\n  url: s3://bkt\nmnist:\n  type: dataset\n  id: d1\n  version: v1\n', 'settings.yaml');
    const desired = desiredEntries(settings, new PublicCatalog({ source: { bucket: 'pub' }, datasets: { coco: false } }));
    expect([...desired.keys()]).toEqual(['fastai', 'lsun', 'openslr', 'tiny-imagenet-200', 'mine', 'mnist']);
    expect(desired.get('mnist')).toMatchObject({ type: 'dataset', id: 'd1' });
    expect([...desiredEntries(undefined, new PublicCatalog())]).toEqual([['mnist', { type: 'public', dataset: 'mnist' }]]);
  });
});

describe('the public entry resolver', () => {
  it('builds the embedded MNIST once and serves that one copy to every resolution', async () => {
    const resolve = createEntryResolver({ catalog: { resolve: () => Promise.reject(new Error('unused')) }, publicCatalog: new PublicCatalog() });
    const mnist = () => resolve('mnist', { type: 'public', dataset: 'mnist' }, { settings: undefined, refresh: false });
    const dataset = async (r: ReturnType<typeof mnist>) => {
      const { payload } = await r;
      return payload.kind === 'embedded' ? payload.dataset : undefined;
    };
    const [a, b] = await Promise.all([dataset(mnist()), dataset(mnist())]);
    expect(a?.name).toBe('mnist');
    expect(b === a && (await dataset(mnist())) === a).toBe(true); // one object: no diff of 6.7 MB on failure
  });
});

describe('publicDatasets in the config file', () => {
  it('is validated by its schema and feeds the public catalog', () => {
    const loaded = (publicDatasets: unknown) => ({ path: 'config.yaml', exists: true, config: configSchema.parse({ publicDatasets }) });
    const config = configSection(loaded({ source: { bucket: 'gradient-public', endpoint: 'http://127.0.0.1:7480' } }), 'publicDatasets', publicDatasetsConfigSchema);
    expect(new PublicCatalog(config).source('coco')).toMatchObject({ bucket: 'gradient-public', prefix: 'coco' });
    expect(() => configSection(loaded({ sources: {} }), 'publicDatasets', publicDatasetsConfigSchema)).toThrow(
      'config file config.yaml is invalid: publicDatasets: unknown key "sources"',
    );
  });
});
