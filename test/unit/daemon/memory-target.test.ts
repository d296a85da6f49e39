import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cgroupMemoryLimit, chooseMemoryTarget, defaultTargetFor, parseMemoryConfig } from '../../../src/daemon/memory-target.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fake /sys/fs/cgroup and /proc/self/cgroup: files by path under the root. */
function fakeHost(files: Record<string, string>, procCgroup: string): { root: string; proc: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'gd-cgroup-'));
  dirs.push(dir);
  const root = path.join(dir, 'cgroup');
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  const proc = path.join(dir, 'proc-self-cgroup');
  writeFileSync(proc, procCgroup);
  return { root, proc };
}

describe('cgroupMemoryLimit', () => {
  it('reads cgroup v2 memory.max, the smallest up the hierarchy', () => {
    const h = fakeHost({ 'memory.max': 'max\n', 'pod/memory.max': '1073741824\n', 'pod/app/memory.max': 'max\n' }, '0::/pod/app\n');
    expect(cgroupMemoryLimit(h.root, h.proc)).toBe(1024 * MiB);
  });

  it('reads cgroup v1 memory.limit_in_bytes on a hybrid host, and treats the huge default as no limit', () => {
    const h = fakeHost(
      { 'memory/memory.limit_in_bytes': '9223372036854771712\n', 'memory/job/memory.limit_in_bytes': '536870912\n', 'unified/cgroup.procs': '' },
      '9:name=systemd:/\n4:memory:/job\n0::/\n',
    );
    expect(cgroupMemoryLimit(h.root, h.proc)).toBe(512 * MiB);
    const none = fakeHost({ 'memory/memory.limit_in_bytes': '9223372036854771712\n' }, '4:memory:/\n');
    expect(cgroupMemoryLimit(none.root, none.proc)).toBeUndefined();
  });

  it('is undefined when nothing can be read', () => {
    expect(cgroupMemoryLimit('/nonexistent', '/nonexistent/cgroup')).toBeUndefined();
  });
});

describe('chooseMemoryTarget', () => {
  it('takes the flag, else the config, else a share of the cgroup limit, else none', () => {
    expect(chooseMemoryTarget(256 * MiB, 512 * MiB, 4096 * MiB)).toEqual({ bytes: 256 * MiB, source: 'flag', cgroupLimitBytes: 4096 * MiB });
    expect(chooseMemoryTarget(undefined, 512 * MiB, undefined)).toEqual({ bytes: 512 * MiB, source: 'config', cgroupLimitBytes: undefined });
    expect(chooseMemoryTarget(undefined, undefined, 4096 * MiB)).toEqual({ bytes: 1024 * MiB, source: 'cgroup', cgroupLimitBytes: 4096 * MiB });
    expect(chooseMemoryTarget(undefined, undefined, undefined)).toEqual({ bytes: undefined, source: 'none', cgroupLimitBytes: undefined });
  });

  it('defaults to a quarter of the limit, at least 192 MiB but never more than half', () => {
    expect(defaultTargetFor(512 * MiB)).toBe(192 * MiB);
    expect(defaultTargetFor(256 * MiB)).toBe(128 * MiB);
    expect(defaultTargetFor(8192 * MiB)).toBe(2048 * MiB);
  });
});

describe('parseMemoryConfig', () => {
  it('reads memory.target as a size and names the field when it is not one', () => {
    expect(parseMemoryConfig({ target: '256M' }, 'c.yaml')).toEqual({ targetBytes: 256 * MiB });
    expect(parseMemoryConfig(undefined, 'c.yaml')).toEqual({});
    expect(() => parseMemoryConfig({ target: 'lots' }, 'c.yaml')).toThrow(/c\.yaml is invalid: memory\.target: invalid size "lots"/);
    expect(() => parseMemoryConfig({ target: '0' }, 'c.yaml')).toThrow(/memory\.target: must be more than 0/);
  });
});
