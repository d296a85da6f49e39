// Malformed settings.yaml and config.yaml files, table-driven: bad YAML, wrong types, unknown types, missing
// fields, bad URLs, secrets on the offending line or in the wrong place, huge files, binary garbage,
// duplicate and invalid names. The bulk goes through the loaders (loadSettings, loadDaemonConfig, secret
// resolution); a set of them goes to the real `gradient mount` as live edits (it must keep serving the last
// good settings) and as config files at start (it must refuse to start, naming the file and field). Every
// message must say what is wrong and where, and no secret may appear in any message, log line or status.
// Cases already covered by test/unit/settings and test/unit/config are not repeated here.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-file.js';
import { loadDaemonConfig } from '../../src/daemon/config.js';
import { SettingsError } from '../../src/settings/errors.js';
import { loadSettings } from '../../src/settings/parse.js';
import type { S3Entry } from '../../src/settings/schema.js';
import { resolveEntryCredentials } from '../../src/settings/secrets.js';
import { emptyAndDeleteBucket } from '../helpers/buckets.js';
import { runCli } from '../helpers/cli.js';
import { daemonHome, laterTempDir } from '../helpers/daemon-process.js';
import { sh } from '../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../helpers/s3.js';
import { until } from '../helpers/until.js';

/** A distinctive fake secret: it sits on bad lines, in wrong fields and in secret files, and must never come back. */
const FAKE = `gdFAKEsecret${randomBytes(12).toString('hex')}`;

/** Deterministic bytes that are not text (every byte value), with the fake secret inside. */
const garbage = (): Buffer => Buffer.concat([Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)), Buffer.from(FAKE)]);

const s3Entry = (name: string, extra = '') => `${name}:\n  type: s3\n  url: s3://bkt/data\n  accessKeyId: AK123\n  secretAccessKey: secret:k\n${extra}`;

interface Row {
  what: string;
  /** File content; a function may instead create the file itself (a directory, a symlink). */
  content: string | Buffer | ((file: string) => void);
  /** The message must match this (it names the file, line:col and field where it can). */
  message: RegExp;
}

describe('reliability: a corpus of malformed settings and config files', () => {
  const work = laterTempDir('gd-corpus-');
  beforeAll(() => work.create());
  afterAll(() => work.remove());
  let n = 0;
  /** A fresh file for a row (named settings.yaml / config.yaml, in its own directory). */
  function place(name: string, content: Row['content']): string {
    const dir = path.join(work.dir, `row-${n++}`);
    mkdirSync(dir);
    const file = path.join(dir, name);
    if (typeof content === 'function') content(file);
    else writeFileSync(file, content);
    return file;
  }

  const settingsRows: Row[] = [
    { what: 'readOnly of the wrong type', content: s3Entry('b', '  readOnly: "yes"\n'), message: /settings\.yaml:6:13: b\.readOnly: expected true or false, got a string/ },
    { what: 'url given as a list', content: 'b:\n  type: s3\n  url: [s3://bkt]\n', message: /settings\.yaml:3:8: b\.url: expected a string, got a list/ },
    { what: 'version given as a mapping', content: 'd:\n  type: dataset\n  id: ds1\n  version: {tag: x}\n', message: /settings\.yaml:4:12: d\.version: expected a string, got a mapping/ },
    { what: 'type given as a number', content: 'd:\n  type: 5\n  id: ds1\n  version: v\n', message: /settings\.yaml:2:9: d\.type: must be "dataset" or "s3"/ },
    { what: 'missing id', content: 'd:\n  type: dataset\n  version: v1\n', message: /settings\.yaml:1:1: d\.id: required/ },
    { what: 'missing url', content: 'b:\n  type: s3\n  readOnly: true\n', message: /settings\.yaml:1:1: b\.url: required/ },
    { what: 'url with an https scheme', content: 'b:\n  type: s3\n  url: https://bkt.example.com/data\n', message: /settings\.yaml:3:8: b\.url: must look like s3:\/\/bucket/ },
    { what: 'endpoint with an ftp scheme', content: s3Entry('b', '  endpoint: ftp://127.0.0.1:21\n'), message: /settings\.yaml:6:13: b\.endpoint: must be an http:\/\/ or https:\/\/ URL without credentials/ },
    { what: 'endpoint with the secret in its userinfo', content: s3Entry('b', `  endpoint: http://AK123:${FAKE}@127.0.0.1:9000\n`), message: /b\.endpoint: must be an http:\/\/ or https:\/\/ URL without credentials/ },
    { what: 'unterminated quote on the secret line', content: `b:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK\n  secretAccessKey: "${FAKE}\n`, message: /settings\.yaml:\d+:\d+: YAML: Missing closing "quote/ },
    { what: 'the secret written as an alias', content: `b:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK\n  secretAccessKey: *${FAKE}\n`, message: /settings\.yaml:1:1: b: YAML: Unresolved alias/ },
    { what: 'a bad escape inside the secret', content: `b:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK\n  secretAccessKey: "\\x${FAKE}"\n`, message: /settings\.yaml:5:\d+: YAML: Invalid escape sequence/ },
    { what: 'the secret pasted as a key', content: `b:\n  type: s3\n  url: s3://bkt\n  ${FAKE}: x\n`, message: /settings\.yaml:4:3: b\.\(a field\): unknown field for type s3/ },
    { what: 'the secret after a stray colon', content: `b:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK\n  secretAccessKey: ${FAKE}: more\n`, message: /settings\.yaml:5:\d+: YAML: / },
    {
      what: 'an alias bomb (billion laughs)',
      content: `x: &x [1,2,3,4,5,6,7,8,9,10]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]\nb:\n  type: dataset\n  id: [*z,*z,*z,*z,*z,*z,*z,*z,*z,*z]\n  version: v\n`,
      message: /settings\.yaml:4:1: b: YAML: Excessive alias count/,
    },
    { what: 'a huge file', content: 'd:\n  type: dataset\n  id: ds1\n  version: v1\n' + `# ${'x'.repeat(1000)}\n`.repeat(300), message: /settings\.yaml: the file is larger than 256 KiB/ },
    { what: 'a file that never ends (/dev/zero)', content: (f) => symlinkSync('/dev/zero', f), message: /settings\.yaml: the file is larger than 256 KiB/ },
    { what: 'binary garbage', content: garbage(), message: /settings\.yaml:\d+:\d+: / },
    { what: 'duplicate entry names', content: 'd:\n  type: dataset\n  id: ds1\n  version: v1\nd:\n  type: dataset\n  id: ds2\n  version: v1\n', message: /settings\.yaml:5:1: YAML: Map keys must be unique/ },
    { what: 'an entry named null', content: '~:\n  type: dataset\n  id: ds1\n  version: v1\n', message: /settings\.yaml:1:1: an entry name must be a plain string/ },
    { what: 'an entry named by a list', content: '[a, b]:\n  type: dataset\n  id: ds1\n  version: v1\n', message: /settings\.yaml:1:1: an entry name must be a plain string/ },
    { what: 'a directory instead of a file', content: (f) => mkdirSync(f), message: /settings\.yaml: cannot read the file \(EISDIR\)/ },
  ];

  it.each(settingsRows)('settings.yaml: $what', async (row) => {
    const file = place('settings.yaml', row.content);
    const err = await loadSettings(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SettingsError);
    const message = (err as SettingsError).message;
    expect(message).toMatch(row.message);
    expect(message.startsWith(file), message).toBe(true); // names the file, as given
    expect(message).not.toContain(FAKE);
    expect(message.length).toBeLessThan(2000);
  });

  it('settings.yaml: secrets are resolved by name, an empty or missing one is named, a plaintext one is accepted as is', async () => {
    const secrets = path.join(work.dir, 'secrets');
    mkdirSync(secrets);
    writeFileSync(path.join(secrets, 'k'), `${FAKE}\n`);
    writeFileSync(path.join(secrets, 'empty'), '\n');
    const file = place(
      'settings.yaml',
      s3Entry('ref') + s3Entry('empty').replace('secret:k', 'secret:empty') + s3Entry('missing').replace('secret:k', 'secret:nope') + s3Entry('plain').replace('secret:k', FAKE),
    );
    const settings = await loadSettings(file);
    const resolve = (name: string) => resolveEntryCredentials(settings, name, settings.entries.get(name) as S3Entry, { GRADIENT_SECRETS_DIR: secrets });
    expect(resolve('ref')?.secretAccessKey).toBe(FAKE);
    expect(resolve('plain')?.secretAccessKey).toBe(FAKE);
    expect(() => resolve('empty')).toThrow(/settings\.yaml:\d+:\d+: empty\.secretAccessKey: secret "empty" is empty/);
    expect(() => resolve('missing')).toThrow(/settings\.yaml:\d+:\d+: missing\.secretAccessKey: secret "nope" not found/);
  });

  const provider = (extra: string) => `storageProviders:\n  - id: rgw\n    name: rgw\n    type: s3\n    bucket: bkt\n${extra}`;
  const configRows: Row[] = [
    { what: 'unterminated quote on the secret line', content: provider(`    accessKey: AK\n    secretAccessKey: "${FAKE}\n`), message: /config\.yaml:\d+:\d+: not valid YAML: Missing closing "quote/ },
    { what: 'the secret after a stray colon', content: provider(`    accessKey: AK\n    secretAccessKey: ${FAKE}: more\n`), message: /config\.yaml:7:\d+: not valid YAML: Nested mappings/ },
    { what: 'the secret written as an alias', content: provider(`    accessKey: AK\n    secretAccessKey: *${FAKE}\n`), message: /config\.yaml:1:1: not valid YAML: Unresolved alias/ },
    { what: 'the secret pasted as a key', content: `teamId: acme\n${FAKE}: x\n`, message: /config\.yaml is invalid: \(top level\): unknown key \(a key not shown\)/ },
    { what: 'teamId of the wrong type', content: 'teamId: [a, b]\n', message: /config\.yaml is invalid: teamId: / },
    { what: 'teamId with a slash', content: 'teamId: team/../other\n', message: /config\.yaml is invalid: teamId: letters, digits/ },
    { what: 'teamId ..', content: 'teamId: ".."\n', message: /config\.yaml is invalid: teamId: letters, digits/ },
    { what: 'an unknown provider type', content: provider('').replace('type: s3', 'type: gcs'), message: /config\.yaml is invalid: storageProviders\.0\.type: / },
    { what: 'a provider without an id', content: provider('').replace('  - id: rgw\n    name', '  - name'), message: /config\.yaml is invalid: storageProviders\.0\.id: / },
    { what: 'a provider id with ..', content: provider('').replace('id: rgw', 'id: ../rgw'), message: /config\.yaml is invalid: storageProviders\.0\.id: letters, digits/ },
    { what: 'a provider endpoint with an ftp scheme', content: provider('    endpoint: ftp://127.0.0.1:21\n'), message: /storageProviders\.0\.endpoint: must be an http:\/\/ or https:\/\/ URL without credentials/ },
    { what: 'a provider endpoint with the secret in it', content: provider(`    endpoint: https://AK:${FAKE}@s3.example.com\n`), message: /storageProviders\.0\.endpoint: must be an http:\/\/ or https:\/\/ URL without credentials/ },
    { what: 'two providers with one id', content: provider('') + '  - id: rgw\n    name: again\n    type: local\n    path: /x\n', message: /config\.yaml: storage provider id "rgw" is used twice or reserved/ },
    { what: 'duplicate keys', content: 'teamId: a\nteamId: b\n', message: /config\.yaml:2:1: not valid YAML: Map keys must be unique/ },
    { what: 'buckets.metadataTtl as a string', content: 'buckets:\n  metadataTtl: 5s\n', message: /config\.yaml is invalid: buckets\.metadataTtl: / },
    {
      what: 'an alias bomb',
      content: `x: &x [1,2,3,4,5,6,7,8,9,10]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]\nteamId: [*z,*z,*z,*z,*z,*z,*z,*z,*z,*z]\n`,
      message: /config\.yaml:1:1: not valid YAML: Excessive alias count/,
    },
    { what: 'a huge file', content: `teamId: acme\n${`# ${'x'.repeat(1000)}\n`.repeat(1100)}`, message: /config\.yaml is larger than 1 MiB: is it the right file\?/ },
    { what: 'binary garbage', content: garbage(), message: /config\.yaml(:\d+:\d+: not valid YAML| is invalid)/ },
  ];

  it.each(configRows)('config.yaml: $what', async (row) => {
    const file = place('config.yaml', row.content);
    const err = await loadDaemonConfig(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    expect(message).toMatch(row.message);
    expect(message).toContain(file);
    expect(message).not.toContain(FAKE);
    expect(message.length).toBeLessThan(2000);
  });
});

describe('reliability: malformed files fed to the real daemon', () => {
  const s = s3Server();
  const client = s3Client();
  const { work, home, mnt, settings, env, daemon, writeSecret } = daemonHome('gd-corpus-daemon-', { config: 'config.yaml' });
  const config = path.join(home, 'config.yaml');
  const secrets = env.GRADIENT_SECRETS_DIR!;
  let bucket = '';
  const SECRET = s.secretAccessKey; // the real key: used from a secret file and, in one entry, in plain text
  const goodConfig = 'buckets:\n  metadataTtl: 1\n';
  const entry = (name: string, secret: string, extra = '') =>
    `${name}:\n  type: s3\n  url: s3://${bucket}/data\n  endpoint: ${s.endpoint}\n  accessKeyId: ${s.accessKeyId}\n  secretAccessKey: ${secret}\n${extra}`;
  let good = '';
  const counts = { liveEdits: 0, configsRefused: 0 };

  /** An editor's safe save. */
  function save(content: string | Buffer): void {
    const tmp = `${settings}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, content);
    renameSync(tmp, settings);
  }

  beforeAll(async () => {
    work.create();
    bucket = await freshBucket('corpus');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'data/hello.txt', Body: 'hello from the bucket\n' }));
    writeSecret('rgw-key', SECRET);
    writeSecret('wrong-key', FAKE);
    writeFileSync(config, goodConfig);
    // `bkt` reads its key from the secrets directory; `plain` has it in plain text in the file.
    good = entry('bkt', 'secret:rgw-key') + entry('plain', SECRET);
    save(good);
    await daemon.start();
  }, 120_000);

  afterAll(async () => {
    await daemon.cleanup();
    await emptyAndDeleteBucket(bucket).catch(() => undefined);
    client.destroy();
    console.log(`config-corpus daemon: ${JSON.stringify(counts)}`);
    work.remove();
  });

  /** What the last good settings serve, read by a child process. */
  const served = () => sh(`cat ${mnt}/bkt/hello.txt ${mnt}/plain/hello.txt`);
  const noSecrets = (text: string) => {
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(FAKE);
  };

  // Contents are built when the row runs: the bucket name and `good` exist only once beforeAll ran.
  const liveRows: Array<{ what: string; content: () => string | Buffer; settingsError?: RegExp; entryError?: [string, RegExp] }> = [
    { what: 'unterminated quote on the secret line', content: () => `${entry('bkt', `"${FAKE}`)}`, settingsError: /settings\.yaml:\d+:\d+: YAML: Missing closing "quote/ },
    { what: 'the secret written as an alias', content: () => entry('bkt', `*${FAKE}`), settingsError: /settings\.yaml:1:1: bkt: YAML: Unresolved alias/ },
    { what: 'binary garbage', content: () => garbage(), settingsError: /settings\.yaml:\d+:\d+: / },
    { what: 'a huge file', content: () => good + `# ${'x'.repeat(1000)}\n`.repeat(300), settingsError: /settings\.yaml: the file is larger than 256 KiB/ },
    { what: 'an alias bomb', content: () => `x: &x [1,2,3,4,5,6,7,8,9,10]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]\n${entry('bkt', '[*z,*z,*z,*z,*z,*z,*z,*z,*z,*z]')}`, settingsError: /settings\.yaml:4:1: bkt: YAML: Excessive alias count/ },
    { what: 'duplicate entry names', content: () => good + entry('bkt', 'secret:rgw-key'), settingsError: /settings\.yaml:\d+:1: YAML: Map keys must be unique/ },
    { what: 'readOnly of the wrong type', content: () => entry('bkt', 'secret:rgw-key', '  readOnly: "no"\n') + entry('plain', SECRET), settingsError: /settings\.yaml:7:13: bkt\.readOnly: expected true or false, got a string/ },
    { what: 'both region and endpoint', content: () => entry('bkt', 'secret:rgw-key', '  region: us-east-1\n') + entry('plain', SECRET), settingsError: /settings\.yaml:4:13: bkt\.endpoint: set either region or endpoint, not both/ },
    { what: 'the secret in the endpoint', content: () => entry('bkt', 'secret:rgw-key').replace(s.endpoint, s.endpoint.replace('://', `://${s.accessKeyId}:${FAKE}@`)) + entry('plain', SECRET), settingsError: /bkt\.endpoint: must be an http:\/\/ or https:\/\/ URL without credentials/ },
    { what: 'a secret file that does not exist', content: () => entry('bkt', 'secret:nope') + entry('plain', SECRET), entryError: ['bkt', /settings\.yaml:6:20: bkt\.secretAccessKey: secret "nope" not found/] },
    { what: 'a secret the bucket rejects', content: () => good + entry('other', 'secret:wrong-key'), entryError: ['other', /settings\.yaml:\d+:\d+: other\.secretAccessKey: .*rejected the credentials/] },
    { what: 'a plaintext secret the bucket rejects', content: () => good + entry('other2', FAKE), entryError: ['other2', /settings\.yaml:\d+:\d+: other2\.secretAccessKey: .*rejected the credentials/] },
  ];

  it('live edits: each bad file is reported with file, position and field; the last good entries keep serving; no secret shows', async () => {
    expect(await served()).toBe('hello from the bucket\nhello from the bucket\n');
    for (const row of liveRows) {
      save(row.content());
      const st = await until(
        row.what,
        () => daemon.status(),
        (x) =>
          row.settingsError
            ? x.settings.state === 'error' && row.settingsError.test(x.settings.lastError ?? '')
            : row.entryError![1].test(x.mounts.find((m) => m.name === row.entryError![0])?.lastError ?? ''),
      );
      noSecrets(JSON.stringify(st));
      // The entries of the last good settings are still there and serve the same bytes.
      expect(await served(), row.what).toBe('hello from the bucket\nhello from the bucket\n');
      counts.liveEdits++;
      save(good); // back to good before the next row, so each row's error is its own
      await until(`recovery after ${row.what}`, () => daemon.status(), (x) => x.settings.state === 'ok' && x.mounts.every((m) => m.state === 'ok') && x.mounts.length === 3);
    }
    // gradient status, as a user runs it: table and JSON.
    for (const args of [['status', '--socket', daemon.opts.socket], ['status', '--socket', daemon.opts.socket, '--json']]) {
      const r = await runCli(args, env);
      expect(r.code, r.stderr).toBe(0);
      noSecrets(r.stdout + r.stderr);
    }
  }, 180_000);

  const startRows: Array<{ what: string; content: string | Buffer; message: RegExp }> = [
    { what: 'bad YAML on a secret line', content: `storageProviders:\n  - id: rgw\n    name: rgw\n    type: s3\n    bucket: b\n    accessKey: AK\n    secretAccessKey: "${FAKE}\n`, message: /config\.yaml:\d+:\d+: not valid YAML: Missing closing "quote/ },
    { what: 'a provider endpoint with the secret in it', content: `storageProviders:\n  - id: rgw\n    name: rgw\n    type: s3\n    bucket: b\n    endpoint: http://AK:${FAKE}@127.0.0.1:1\n`, message: /storageProviders\.0\.endpoint: must be an http:\/\/ or https:\/\/ URL without credentials/ },
    { what: 'cache.maxSize as a list', content: 'cache:\n  maxSize: [1, 2]\n', message: /cache\.maxSize/ },
    { what: 'buckets.drainTimeout negative', content: 'buckets:\n  drainTimeout: -1\n', message: /config\.yaml is invalid: buckets\.drainTimeout/ },
    { what: 'a huge file', content: `teamId: acme\n${`# ${'x'.repeat(1000)}\n`.repeat(1100)}`, message: /config\.yaml is larger than 1 MiB/ },
    { what: 'binary garbage', content: garbage(), message: /config\.yaml/ },
  ];

  it('config.yaml at start: a bad file stops a new daemon with a clear message (exit 7 or 2), the running one is untouched', async () => {
    for (const row of startRows) {
      writeFileSync(config, row.content);
      const { code, output } = await daemon.startExpectingFailure();
      const errorLine = output.split('\n').find((l) => l.startsWith('error: ')) ?? output;
      expect(errorLine, row.what).toMatch(row.message);
      expect([2, 7], `${row.what}: exit ${code}: ${errorLine}`).toContain(code);
      noSecrets(output);
      counts.configsRefused++;
    }
    writeFileSync(config, goodConfig);
    expect(await served()).toBe('hello from the bucket\nhello from the bucket\n');
    expect((await daemon.status()).mounts.every((m) => m.state === 'ok')).toBe(true);
  }, 180_000);

  it('no secret in any line the daemon logged', () => {
    const log = daemon.log();
    expect(log.length).toBeGreaterThan(0);
    noSecrets(log);
    rmSync(path.join(secrets, 'wrong-key'));
  });
});
