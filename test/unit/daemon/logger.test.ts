import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/daemon/logger.js';
import { REDACTED, Redactor } from '../../../src/daemon/redact.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, destination };
}

describe('logger redaction', () => {
  it('masks secret fields at any depth but keeps accessKeyId', () => {
    const { lines, destination } = capture();
    const log = createLogger({ destination, redactor: new Redactor(), level: 'info' });
    log.info({ entry: { s3: { accessKeyId: 'AK123', secretAccessKey: 'wJalrXUtnFEMI', sessionToken: 'tok' } } }, 'mounting');
    expect(lines[0]).toMatchObject({ msg: 'mounting', entry: { s3: { accessKeyId: 'AK123', secretAccessKey: REDACTED, sessionToken: REDACTED } } });
  });

  it('masks registered secret values inside messages and errors', () => {
    const { lines, destination } = capture();
    const redactor = new Redactor();
    redactor.addSecret('wJalrXUtnFEMI/K7MDENG');
    const log = createLogger({ destination, redactor });
    const err = Object.assign(new Error('signature mismatch for key wJalrXUtnFEMI/K7MDENG'), { code: 'BadCredentials' });
    log.error(err, 'mount failed with wJalrXUtnFEMI/K7MDENG');
    const text = JSON.stringify(lines);
    expect(text).not.toContain('wJalrXUtnFEMI');
    expect(lines[0]).toMatchObject({ msg: `mount failed with ${REDACTED}`, err: { type: 'Error', code: 'BadCredentials', message: `signature mismatch for key ${REDACTED}` } });
  });
});
