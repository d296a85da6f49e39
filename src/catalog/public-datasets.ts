// The public datasets catalog: the names Gradient notebooks know under /datasets (mnist, coco, fastai, lsun,
// openslr, tiny-imagenet-200) and where each one's bytes come from. Configurable: an anonymous S3 bucket and
// prefix holding `<prefix>/<name>/`, with per-dataset overrides. Without configuration only `mnist` is
// served, from the embedded sample: no network and no account are needed for `ls /datasets/mnist`.
import { z } from 'zod';

export const PUBLIC_DATASET_NAMES = ['mnist', 'coco', 'fastai', 'lsun', 'openslr', 'tiny-imagenet-200'] as const;
export type PublicDatasetName = (typeof PUBLIC_DATASET_NAMES)[number];

export interface AnonymousS3Source {
  kind: 's3';
  bucket: string;
  /** Key prefix of the dataset's files inside the bucket ('' = bucket root), no leading or trailing '/'. */
  prefix: string;
  region?: string;
  endpoint?: string;
}

export type PublicDatasetSource = { kind: 'embedded' } | AnonymousS3Source;

const s3Location = z.strictObject({
  bucket: z.string().min(3),
  prefix: z.string().default(''),
  region: z.string().optional(),
  endpoint: z.url({ protocol: /^https?$/ }).optional(),
});

/** The `publicDatasets` section of the config file (validated through configSection, src/daemon/config.ts). */
export const publicDatasetsConfigSchema = z.strictObject({
  /** An anonymous bucket holding every public dataset under `<prefix>/<name>/`. */
  source: s3Location.optional(),
  /** Per dataset: another location, `embedded` (mnist only), or `false` to hide it. */
  datasets: z
    .partialRecord(z.enum(PUBLIC_DATASET_NAMES), z.union([s3Location, z.literal('embedded'), z.literal(false)]))
    .optional(),
});

export type PublicDatasetsConfig = z.input<typeof publicDatasetsConfigSchema>;

export class PublicCatalog {
  private readonly sources: ReadonlyMap<PublicDatasetName, PublicDatasetSource>;

  constructor(config: PublicDatasetsConfig = {}) {
    const parsed = publicDatasetsConfigSchema.parse(config);
    const sources = new Map<PublicDatasetName, PublicDatasetSource>();
    for (const name of PUBLIC_DATASET_NAMES) {
      const override = parsed.datasets?.[name];
      if (override === false) continue;
      if (override === 'embedded') {
        if (name !== 'mnist') throw new Error(`public dataset ${name}: only mnist has an embedded copy`);
        sources.set(name, { kind: 'embedded' });
      } else if (override) {
        sources.set(name, s3Source(override, override.prefix));
      } else if (parsed.source) {
        sources.set(name, s3Source(parsed.source, joinKey(parsed.source.prefix, name)));
      } else if (name === 'mnist') {
        sources.set(name, { kind: 'embedded' });
      }
    }
    this.sources = sources;
  }

  /** The public datasets this daemon serves, in a stable order. */
  names(): PublicDatasetName[] {
    return [...this.sources.keys()];
  }

  source(name: string): PublicDatasetSource | undefined {
    return this.sources.get(name as PublicDatasetName);
  }
}

function s3Source(loc: z.output<typeof s3Location>, prefix: string): AnonymousS3Source {
  const src: AnonymousS3Source = { kind: 's3', bucket: loc.bucket, prefix: trimSlashes(prefix) };
  if (loc.region) src.region = loc.region;
  if (loc.endpoint) src.endpoint = loc.endpoint;
  return src;
}

function joinKey(a: string, b: string): string {
  return [trimSlashes(a), b].filter(Boolean).join('/');
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}
