// A separate daemon process serving a MemFs, for tests that kill it: mounts argv[2], prints "ready",
// unmounts on SIGTERM. Optional argv[3]: JSON {files: {path: content}, backed: {path: backingPath},
// local: {path: localPath} (read-write, fast write path), passthrough: boolean, ttl: seconds (entries and
// attributes, default 1), syncfs: true to print "syncfs <rc> <rc>" for the addon's syncfs on a directory and
// on a bad descriptor}. Handed a session (GRADIENT_SESSION_FD and GRADIENT_SESSION_DIR, as the supervisor
// does): serves it instead of mounting, taking it over if an earlier server left state (MemFs numbers its inodes
// the same way in every process that builds it from the same spec).
import { openSync } from 'node:fs';
import { nativeFuse } from '../../src/fuse/native.js';
import { SessionState } from '../../src/fuse/session-state.js';
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
const opts = { passthrough: spec.passthrough ?? true, log: { warn: (o: object, m: string) => console.error(m, o) } };
const fd = Number(process.env.GRADIENT_SESSION_FD);
state.session = Number.isInteger(fd) && fd > 2
  ? await FuseSession.serve(fs, mountpoint, { fd, state: SessionState.open(process.env.GRADIENT_SESSION_DIR!) }, opts)
  : await FuseSession.mount(fs, mountpoint, opts);
if (spec.syncfs) {
  const native = nativeFuse();
  console.log(`syncfs ${(await Promise.all([native.syncfs(openSync('.', 'r')), native.syncfs(-1)])).join(' ')}`);
}
console.log(state.session.adopted ? 'ready (adopted)' : 'ready');
