import { describe, expect, it } from 'vitest';
import { EntryError, Reconciler, type MountEntry, type MountTarget, type ResolvedMount } from '../../../src/daemon/reconciler.js';
import { parseSettings, type Settings } from '../../../src/settings/parse.js';

/** A catalog in miniature: dataset → versions, tags (movable), and which tags exist. */
class Catalog {
  tags = new Map<string, string>([['d1:prod', 'v1']]);
  versions = new Set(['d1:v1', 'd1:v2', 'd2:v1']);
  latest = new Map([['d1', 'v2'], ['d2', 'v1']]);
  resolve(id: string, version: string): string {
    const v = version === 'latest' ? this.latest.get(id) : this.tags.get(`${id}:${version}`) ?? version;
    if (!v || !this.versions.has(`${id}:${v}`)) throw new EntryError('UnknownVersion', `unknown version or tag "${version}" of dataset ${id}`, 'version');
    return `${id}:${v}`;
  }
}

/** Records what the namespace would serve, and can be told to fail. */
class Namespace implements MountTarget<string> {
  served = new Map<string, string>();
  calls: string[] = [];
  failMount = new Set<string>();
  mount(name: string, m: ResolvedMount<string>) {
    this.calls.push(`mount ${name} ${m.resolved}`);
    if (this.failMount.has(name)) throw new Error('mount refused');
    this.served.set(name, m.payload);
  }
  swap(name: string, m: ResolvedMount<string>) {
    this.calls.push(`swap ${name} ${m.resolved}`);
    this.served.set(name, m.payload);
  }
  unmount(name: string) {
    this.calls.push(`unmount ${name}`);
    this.served.delete(name);
  }
}

function setup() {
  const catalog = new Catalog();
  const ns = new Namespace();
  const rec = new Reconciler<string>({
    target: ns,
    resolve: async (_name, entry: MountEntry) => {
      if (entry.type !== 'dataset') return { resolved: entry.type, identity: entry.type, payload: entry.type };
      const r = catalog.resolve(entry.id, entry.version);
      return { resolved: r, identity: r, payload: r };
    },
  });
  const apply = (yaml: string, refresh = false) => {
    const s: Settings = parseSettings(yaml, 'settings.yaml');
    return rec.apply(s.entries, s, { refresh });
  };
  return { catalog, ns, rec, apply };
}

const ds = (name: string, id: string, version: string) => `${name}:\n  type: dataset\n  id: ${id}\n  version: ${version}\n`;

describe('Reconciler', () => {
  it('mounts added entries, swaps changed ones, unmounts removed ones', async () => {
    const { ns, apply } = setup();
    expect(await apply(ds('a', 'd1', 'v1') + ds('b', 'd2', 'v1'))).toMatchObject({ mounted: ['a', 'b'] });
    expect(await apply(ds('a', 'd1', 'v2'))).toMatchObject({ swapped: ['a'], unmounted: ['b'] });
    expect([...ns.served]).toEqual([['a', 'd1:v2']]);
    expect(await apply(ds('a', 'd1', 'v2'))).toMatchObject({ unchanged: ['a'], mounted: [], swapped: [] });
  });

  it('does not swap when a new ref names the same version', async () => {
    const { ns, apply } = setup();
    await apply(ds('a', 'd1', 'v2'));
    expect(await apply(ds('a', 'd1', 'latest'))).toMatchObject({ swapped: [], unchanged: ['a'] });
    expect(ns.calls).toEqual(['mount a d1:v2']);
  });

  it('keeps the last good mount when the new ref fails, recovers when fixed', async () => {
    const { ns, rec, apply } = setup();
    await apply(ds('a', 'd1', 'v1') + ds('b', 'd2', 'v1'));
    const r = await apply(ds('a', 'd1', 'nope') + ds('b', 'd2', 'v1'));
    expect(r.failed).toEqual(['a']);
    expect(ns.served.get('a')).toBe('d1:v1');
    expect(rec.status()[0]).toMatchObject({
      name: 'a',
      ref: 'd1:nope',
      resolved: 'd1:v1',
      state: 'stale',
      lastError: 'settings.yaml:4:12: a.version: unknown version or tag "nope" of dataset d1',
    });
    await apply(ds('a', 'd1', 'prod') + ds('b', 'd2', 'v1'));
    expect(rec.status()[0]).toMatchObject({ state: 'ok', resolved: 'd1:v1', lastError: null });
  });

  it('reports a new entry that cannot resolve as error, and retries it on the next apply', async () => {
    const { catalog, ns, rec, apply } = setup();
    await apply(ds('x', 'd3', 'v1'));
    expect(rec.status()).toMatchObject([{ name: 'x', state: 'error', resolved: null }]);
    catalog.versions.add('d3:v1');
    await apply(ds('x', 'd3', 'v1')); // e.g. the file was touched after the dataset was created
    expect(ns.served.get('x')).toBe('d3:v1');
  });

  it('records a target failure without affecting other entries', async () => {
    const { ns, rec, apply } = setup();
    ns.failMount.add('a');
    await apply(ds('a', 'd1', 'v1') + ds('b', 'd2', 'v1'));
    expect(rec.status().map((s) => [s.name, s.state])).toEqual([['a', 'error'], ['b', 'ok']]);
    expect(rec.status()[0]!.lastError).toMatch(/^settings\.yaml:1:1: a: cannot mount: mount refused$/);
  });

  it('picks up a moved tag or latest only on refresh', async () => {
    const { catalog, ns, rec, apply } = setup();
    await apply(ds('a', 'd1', 'prod') + ds('b', 'd1', 'latest'));
    catalog.tags.set('d1:prod', 'v2');
    catalog.versions.add('d1:v3');
    catalog.latest.set('d1', 'v3');
    await apply(ds('a', 'd1', 'prod') + ds('b', 'd1', 'latest'));
    expect(ns.served.get('a')).toBe('d1:v1');
    const r = await rec.refresh();
    expect(r.swapped.sort()).toEqual(['a', 'b']);
    expect(rec.status().map((s) => s.resolved)).toEqual(['d1:v2', 'd1:v3']);
  });

  it('coalesces a burst of applies into the newest one', async () => {
    const { ns, apply } = setup();
    const all = await Promise.all([apply(ds('a', 'd1', 'v1')), apply(ds('a', 'd1', 'v2')), apply(ds('a', 'd2', 'v1'))]);
    // The first runs; the next two coalesce into one apply of the newest settings.
    expect(all[1]).toEqual(all[2]);
    expect(ns.calls).toEqual(['mount a d1:v1', 'swap a d2:v1']);
  });

  it('applies each entry on its own: a slow one holds up neither the others nor their next apply', async () => {
    const { catalog, ns } = setup();
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const rec = new Reconciler<string>({
      target: ns,
      resolve: async (_name, entry: MountEntry) => {
        if (entry.type !== 'dataset') throw new Error('unexpected');
        if (entry.id === 'd2') await slow; // e.g. an unreachable bucket, failing after the SDK's retries
        const r = catalog.resolve(entry.id, entry.version);
        return { resolved: r, identity: r, payload: r };
      },
    });
    const s = parseSettings(ds('a', 'd1', 'prod') + ds('b', 'd2', 'v1'), 'settings.yaml');
    const first = rec.apply(s.entries, s);
    await new Promise((r) => setTimeout(r, 10));
    expect(ns.served.get('a')).toBe('d1:v1');
    catalog.tags.set('d1:prod', 'v2');
    expect(await Promise.race([rec.refresh().then((r) => r.swapped), new Promise((r) => setTimeout(() => r('b held it up'), 10))])).toBe('b held it up');
    await new Promise((r) => setTimeout(r, 10));
    expect(ns.served.get('a')).toBe('d1:v2');
    expect(ns.served.has('b')).toBe(false);
    release();
    expect(await first).toMatchObject({ mounted: ['a', 'b'] });
    expect(ns.served.get('b')).toBe('d2:v1');
  });

  it('treats a refresh before any apply as a no-op, not as "unmount everything"', async () => {
    const { ns, rec, apply } = setup();
    expect(await rec.refresh()).toMatchObject({ mounted: [], unmounted: [] });
    await apply(ds('a', 'd1', 'v1'));
    await rec.refresh();
    expect(ns.served.get('a')).toBe('d1:v1');
  });

  it('unmounts everything on stop', async () => {
    const { ns, rec, apply } = setup();
    await apply(ds('a', 'd1', 'v1') + ds('b', 'd2', 'v1'));
    await rec.unmountAll();
    expect(ns.served.size).toBe(0);
    expect(rec.status()).toEqual([]);
  });
});
