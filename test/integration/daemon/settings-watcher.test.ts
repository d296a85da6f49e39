// Real files and a real chokidar watch: saves the way editors do them, and a corpus of bad edits.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsWatcher } from '../../../src/daemon/settings-watcher.js';
import type { SettingsError } from '../../../src/settings/errors.js';
import type { Settings } from '../../../src/settings/parse.js';

const ds = (name: string, version: string) => `${name}:\n  type: dataset\n  id: dst1\n  version: ${version}\n`;

/** Collects what the watcher reports and lets a test wait for the next report. */
class Reports {
  events: Array<{ kind: 'settings'; s: Settings } | { kind: 'error'; e: SettingsError }> = [];
  private waiters: Array<() => void> = [];
  push(ev: Reports['events'][number]) {
    this.events.push(ev);
    this.waiters.splice(0).forEach((w) => w());
  }
  async next(after: number, timeoutMs = 3000): Promise<Reports['events'][number]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length <= after) {
      if (Date.now() > deadline) throw new Error('no report from the watcher');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.events[after]!;
  }
}

describe('SettingsWatcher', () => {
  let dir: string;
  let file: string;
  let reports: Reports;
  let watcher: SettingsWatcher;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gd-watch-'));
    file = path.join(dir, '.gradient', 'settings.yaml');
    mkdirSync(path.dirname(file));
    writeFileSync(file, ds('a', 'v1'));
    reports = new Reports();
    watcher = new SettingsWatcher({
      file,
      dirPollMs: 50,
      onSettings: (s) => reports.push({ kind: 'settings', s }),
      onError: (e) => reports.push({ kind: 'error', e }),
    });
    await watcher.start();
  });

  afterEach(async () => {
    await watcher.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const version = (ev: Reports['events'][number]) => {
    if (ev.kind !== 'settings') throw new Error(`expected settings, got: ${ev.e.message}`);
    const e = ev.s.entries.get('a');
    return e?.type === 'dataset' ? e.version : undefined;
  };

  it('loads the file at start', () => {
    expect(reports.events).toHaveLength(1);
    expect(version(reports.events[0]!)).toBe('v1');
  });

  it('applies an in-place write well within a second', async () => {
    const t0 = Date.now();
    writeFileSync(file, ds('a', 'v2'));
    expect(version(await reports.next(1))).toBe('v2');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('follows rename-and-replace saves (write temp, rename over) repeatedly', async () => {
    for (const [i, v] of ['v2', 'v3', 'v4'].entries()) {
      const tmp = path.join(dir, '.gradient', `.settings.yaml.${i}.tmp`);
      writeFileSync(tmp, ds('a', v));
      const t0 = Date.now();
      renameSync(tmp, file);
      expect(version(await reports.next(1 + i))).toBe(v);
      expect(Date.now() - t0).toBeLessThan(1000);
    }
  });

  it('follows vim-style saves (move the original away, write a new file)', async () => {
    renameSync(file, `${file}~`);
    writeFileSync(file, ds('a', 'v5'));
    unlinkSync(`${file}~`);
    expect(version(await reports.next(1))).toBe('v5');
  });

  it('reports a deleted file and recovers when it is re-created', async () => {
    unlinkSync(file);
    const err = await reports.next(1);
    expect(err.kind).toBe('error');
    expect(err.kind === 'error' && err.e.message).toBe(`${file}: file not found`);
    expect(watcher.current?.entries.get('a')).toMatchObject({ version: 'v1' });
    writeFileSync(file, ds('a', 'v6'));
    expect(version(await reports.next(2))).toBe('v6');
    expect(watcher.lastError).toBeUndefined();
  });

  it('keeps the last good settings through a corpus of bad edits, each reported with file:line:col and field', async () => {
    const corpus: Array<[string, RegExp]> = [
      ['a:\n  type: dataset\n  id: dst1\n  version: [v2\n', /settings\.yaml:\d+:\d+: YAML: /],
      ['a:\n  type: dataset\n  id: dst1\n  version: v2\n  colour: blue\n', /settings\.yaml:5:3: a\.colour: unknown field for type dataset/],
      ['a:\n  type: dataset\n  id: dst1\n', /settings\.yaml:1:1: a\.version: required/],
      ['a:\n  type: bucket\n  url: s3://b\n', /settings\.yaml:2:9: a\.type: must be "dataset" or "s3"/],
      ['"..":\n  type: dataset\n  id: dst1\n  version: v1\n', /settings\.yaml:1:1: \.\.: invalid entry name/],
      ['a:\n  type: s3\n  url: http://not-s3\n', /settings\.yaml:3:8: a\.url: must look like s3:\/\//],
      ['a:\n  type: s3\n  url: s3://bkt\n  region: r\n  endpoint: https://e.example\n', /settings\.yaml:5:13: a\.endpoint: set either region or endpoint/],
      ['- a\n', /settings\.yaml:1:1: expected a mapping/],
    ];
    let seen = 1;
    for (const [text, expected] of corpus) {
      writeFileSync(file, text);
      const ev = await reports.next(seen++);
      expect(ev.kind, text).toBe('error');
      if (ev.kind === 'error') expect(ev.e.message).toMatch(expected);
      expect(watcher.current?.entries.get('a')).toMatchObject({ version: 'v1' });
    }
    writeFileSync(file, ds('a', 'v7'));
    expect(version(await reports.next(seen))).toBe('v7');
  });

  it('debounces a burst of writes into one load of the final content', async () => {
    for (const v of ['v2', 'v3', 'v4', 'v5']) writeFileSync(file, ds('a', v));
    expect(version(await reports.next(1))).toBe('v5');
    await new Promise((r) => setTimeout(r, 300));
    expect(reports.events).toHaveLength(2);
  });
});

describe('SettingsWatcher without a settings directory yet', () => {
  it('starts with empty settings and picks the file up once the directory appears', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-watch-nodir-'));
    const file = path.join(dir, '.gradient', 'settings.yaml');
    const seen: Settings[] = [];
    const w = new SettingsWatcher({ file, dirPollMs: 50, onSettings: (s) => seen.push(s), onError: () => undefined });
    try {
      await w.start();
      expect(seen).toHaveLength(1);
      expect(seen[0]!.entries.size).toBe(0);
      mkdirSync(path.dirname(file));
      writeFileSync(file, ds('a', 'v1'));
      const deadline = Date.now() + 3000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(seen.at(-1)?.entries.get('a')).toMatchObject({ version: 'v1' });
    } finally {
      await w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SettingsWatcher on a Kubernetes ConfigMap volume', () => {
  it('follows the ..data symlink swap the kubelet does on update', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-watch-cm-'));
    // The kubelet's layout: ..<timestamp>/settings.yaml, ..data → ..<timestamp>, settings.yaml → ..data/settings.yaml
    const publish = (stamp: string, text: string) => {
      mkdirSync(path.join(dir, stamp));
      writeFileSync(path.join(dir, stamp, 'settings.yaml'), text);
      symlinkSync(stamp, path.join(dir, '..data_tmp'));
      renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    };
    publish('..2026_01', ds('a', 'v1'));
    symlinkSync('..data/settings.yaml', path.join(dir, 'settings.yaml'));
    const seen: Settings[] = [];
    const w = new SettingsWatcher({ file: path.join(dir, 'settings.yaml'), onSettings: (s) => seen.push(s), onError: () => undefined });
    try {
      await w.start();
      expect(seen.at(-1)?.entries.get('a')).toMatchObject({ version: 'v1' });
      publish('..2026_02', ds('a', 'v2'));
      rmSync(path.join(dir, '..2026_01'), { recursive: true });
      const deadline = Date.now() + 3000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(seen.at(-1)?.entries.get('a')).toMatchObject({ version: 'v2' });
    } finally {
      await w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SettingsWatcher reload without a file', () => {
  it('keeps "no entries" without an error when the file never existed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-watch-none-'));
    const errors: SettingsError[] = [];
    const w = new SettingsWatcher({ file: path.join(dir, 'settings.yaml'), onSettings: () => undefined, onError: (e) => errors.push(e) });
    try {
      await w.start();
      await w.reload();
      expect(errors).toEqual([]);
      expect(w.current?.entries.size).toBe(0);
    } finally {
      await w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
