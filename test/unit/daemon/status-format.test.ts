import { describe, expect, it } from 'vitest';
import { formatStatus, statusExitCode } from '../../../src/cli/status.js';
import { defaultSocketPath } from '../../../src/daemon/socket-path.js';
import type { DaemonStatus } from '../../../src/daemon/status.js';

const base: DaemonStatus = {
  version: 1,
  pid: 42,
  startedAt: '2026-01-01T00:00:00.000Z',
  phase: 'ready',
  ready: true,
  mountpoint: '/datasets',
  settings: { file: '/n/.gradient/settings.yaml', state: 'ok', lastError: null, appliedAt: null },
  mounts: [
    { name: 'mnist', type: 'public', ref: 'public:mnist', resolved: 'embedded:mnist@abc', state: 'ok', lastError: null, lastErrorAt: null, since: null },
    {
      name: 'reports',
      type: 'dataset',
      ref: 'dst1:v9',
      resolved: 'dst1:v1',
      state: 'stale',
      lastError: 'settings.yaml:4:12: reports.version: unknown tag "v9"',
      lastErrorAt: null,
      since: null,
    },
  ],
  cache: null,
  uploads: [],
  requests: { fuse: {}, store: {} },
  fatalError: null,
};

describe('gradient status output', () => {
  it('prints aligned rows and the full errors below', () => {
    const out = formatStatus(base);
    expect(out).toContain('NAME     TYPE     REF           SERVING             STATE\n');
    expect(out).toContain('reports  dataset  dst1:v9       dst1:v1             stale\n');
    expect(out).toContain('errors:\n  settings.yaml:4:12: reports.version: unknown tag "v9"\n');
  });

  it('lists writes not yet in the bucket, with their last error', () => {
    const out = formatStatus({
      ...base,
      uploads: [{ mount: 'bucket', key: 'runs/model.pt', bytes: 3 * 1024 * 1024, state: 'failed', attempts: 2, lastError: 'cannot reach S3 endpoint' }],
    });
    expect(out).toContain('uploads not yet in the bucket (1):\n  bucket/runs/model.pt  3.0 MiB  failed, 2 failed attempts: cannot reach S3 endpoint\n');
  });

  it('lists outputs: version, what was written, pending uploads, committed or not', () => {
    const out = formatStatus({
      ...base,
      outputs: [
        { mount: 'results', version: 'dst1:ab12cd3', filesWritten: 12, bytesWritten: 5 * 1024 * 1024, files: 14, pendingUploads: 1, committed: false, commitOnExit: true },
        { mount: 'done', version: 'dst1:ef45gh6', filesWritten: 1, bytesWritten: 10, files: 1, pendingUploads: 0, committed: true, commitOnExit: false },
      ],
    });
    expect(out).toContain('outputs (dataset versions mounted read-write):\n');
    expect(out).toContain('  results  dst1:ab12cd3  uncommitted, commits on exit  12 files / 5.0 MiB written, 14 in the version, 1 pending\n');
    expect(out).toContain('  done  dst1:ef45gh6  committed (read-only)  1 file / 10 B written, 1 in the version, 0 pending\n');
  });

  it('exits 0 when all is well, 1 on entry or settings errors, 6 when not ready', () => {
    const ok = { ...base, mounts: [base.mounts[0]!] };
    expect(statusExitCode(ok)).toBe(0);
    expect(statusExitCode(base)).toBe(1);
    expect(statusExitCode({ ...ok, settings: { ...ok.settings, state: 'error' } })).toBe(1);
    expect(statusExitCode({ ...ok, ready: false, phase: 'starting' })).toBe(6);
  });
});

describe('defaultSocketPath', () => {
  it('follows the documented order', () => {
    expect(defaultSocketPath({ GRADIENT_DAEMON_SOCKET: '/x.sock' }, 1000)).toBe('/x.sock');
    expect(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }, 0)).toBe('/run/gradient/daemon.sock');
    expect(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe('/run/user/1000/gradient/daemon.sock');
    expect(defaultSocketPath({}, 1000)).toMatch(/\/gradient-1000\/daemon\.sock$/);
  });
});
