import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressBar } from '../../../src/cli/progress.js';

class Tty extends Writable {
  text = '';
  isTTY = true;
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void) {
    this.text += c.toString();
    cb();
  }
}

describe('progressBar', () => {
  it('draws bytes, rate and files on a terminal', () => {
    const tty = new Tty();
    const bar = progressBar('Uploading', tty, true);
    bar.update({ filesDone: 1, filesTotal: 2, bytesDone: 512 * 1024, bytesTotal: 1024 * 1024 });
    bar.done();
    expect(tty.text).toMatch(/Uploading \[#{12}\.{12}\] {2}50% 512\.0 KiB\/1\.0 MiB .*\/s 1\/2 files/);
    expect(tty.text.endsWith('\n')).toBe(true);
  });
  it('is silent when not a terminal or disabled', () => {
    const pipe = new Tty();
    pipe.isTTY = false;
    progressBar('x', pipe, true).update({ filesDone: 1, filesTotal: 1, bytesDone: 1, bytesTotal: 1 });
    const tty = new Tty();
    const off = progressBar('x', tty, false);
    off.update({ filesDone: 1, filesTotal: 1, bytesDone: 1, bytesTotal: 1 });
    off.done();
    expect(pipe.text + tty.text).toBe('');
  });
});
