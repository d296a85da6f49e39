import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addStorageProvider, allProviders, ConfigError, loadConfig } from '../../../src/config/config-file.js';
import { configPath, defaultStorePath } from '../../../src/config/paths.js';

describe('config paths', () => {
  it('follows --config, GRADIENT_CONFIG, XDG_CONFIG_HOME, then ~/.config', () => {
    expect(configPath('/x/c.yaml', { GRADIENT_CONFIG: '/y', HOME: '/h' })).toBe('/x/c.yaml');
    expect(configPath(undefined, { GRADIENT_CONFIG: '/y.yaml', HOME: '/h' })).toBe('/y.yaml');
    expect(configPath(undefined, { XDG_CONFIG_HOME: '/xdg', HOME: '/h' })).toBe('/xdg/gradient/config.yaml');
    expect(configPath(undefined, { HOME: '/h' })).toBe('/h/.config/gradient/config.yaml');
    expect(defaultStorePath({ HOME: '/h' })).toBe('/h/.local/share/gradient/store');
    expect(defaultStorePath({ XDG_DATA_HOME: '/d', HOME: '/h' })).toBe('/d/gradient/store');
    expect(defaultStorePath({ GRADIENT_STORE_DIR: '/s', HOME: '/h' })).toBe('/s');
  });
});

describe('config file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gd-config-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('defaults when missing: team "default" and the managed local store', async () => {
    const { exists, config } = await loadConfig(path.join(dir, 'none.yaml'));
    expect(exists).toBe(false);
    expect(config.teamId).toBe('default');
    expect(allProviders(config, { HOME: '/h' })).toEqual([
      { id: 'managed', name: 'Gradient Managed', type: 'local', path: '/h/.local/share/gradient/store' },
    ]);
  });

  it('adds providers keeping comments and the cache section, mode 0600', async () => {
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, '# my team\nteamId: acme # shared with CI\ncache:\n  maxSize: 10G\n');
    await addStorageProvider(file, { id: 'spl1', name: 'one', type: 's3', bucket: 'bkt', secretAccessKey: 'secret:k' });
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# my team');
    expect(text).toContain('# shared with CI');
    expect(text).toContain('maxSize: 10G');
    const { config } = await loadConfig(file);
    expect(config.storageProviders).toEqual([{ id: 'spl1', name: 'one', type: 's3', bucket: 'bkt', secretAccessKey: 'secret:k' }]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(addStorageProvider(file, { id: 'spl2', name: 'one', type: 'local', path: '/x' })).rejects.toThrow(/already exists/);
  });

  it('says what is wrong and where', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'teamId: acme\nstorageProviders:\n  - id: x\n    name: n\n    type: s3\n');
    await expect(loadConfig(file)).rejects.toThrow(ConfigError);
    await expect(loadConfig(file)).rejects.toThrow(/storageProviders\.0\.bucket/);
    await writeFile(file, 'teamid: typo\n');
    await expect(loadConfig(file)).rejects.toThrow(/teamid/);
  });
});
