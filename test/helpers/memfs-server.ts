// A separate daemon process serving a MemFs, for tests that kill it: mounts argv[2], prints "ready",
// unmounts on SIGTERM. Optional argv[3]: JSON {files: {path: content}, backed: {path: backingPath},
// local: {path: localPath} (read-write, fast write path), passthrough: boolean, ttl: seconds (entries and
// attributes, default 1), syncfs: true to print "syncfs <rc> <rc>" for the addon's syncfs on a directory and
// on a bad descriptor}.
import { openSync } from 'node:fs';
import { nativeFuse } from '../../src/fuse/native.js';
import { FuseSession } from '../../src/fuse/session.js';
import { MemFs } from './memfs.js';

const mountpoint = process.argv[2]!;
const spec = JSON.parse(process.argv[3] ?? '{}') as {
  files?: Record<string, string>;
  backed?: Record<string, string>;
  local?: Record<string, string>;
  passthrough?: boolean;
  ttl?: number;
  syncfs?: boolean;
};
const fs = new MemFs({ ttl: spec.ttl ?? 1 });
for (const [p, content] of Object.entries(spec.files ?? {})) fs.addFile(p, content);
for (const [p, backing] of Object.entries(spec.backed ?? {})) fs.addBackedFile(p, backing);
for (const [p, local] of Object.entries(spec.local ?? {})) fs.addLocalFile(p, local);

const state: { session?: FuseSession } = {};
const stop = async () => {
  await state.session?.unmount();
  process.exit(0);
};
// Handlers before mounting: a signal that lands first must not leave a dead mount.
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
state.session = await FuseSession.mount(fs, mountpoint, { passthrough: spec.passthrough ?? true, log: { warn: (o, m) => console.error(m, o) } });
if (spec.syncfs) {
  const native = nativeFuse();
  console.log(`syncfs ${(await Promise.all([native.syncfs(openSync('.', 'r')), native.syncfs(-1)])).join(' ')}`);
}
console.log('ready');
