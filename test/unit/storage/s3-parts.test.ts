import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fileParts, partSizeFor, sendParts, streamParts } from '../../../src/storage/s3/parts.js';

describe('multipart parts', () => {
  it('cuts a stream into parts of exactly the part size, whatever its chunks', async () => {
    const data = Buffer.from(Array.from({ length: 23 }, (_, i) => i));
    const chunks = [data.subarray(0, 3), data.subarray(3, 4), data.subarray(4, 17), data.subarray(17)];
    const parts: Buffer[] = [];
    for await (const p of streamParts(Readable.from(chunks), 5)) parts.push(p);
    expect(parts.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    const none: Buffer[] = [];
    for await (const p of streamParts(Readable.from([]), 5)) none.push(p);
    expect(none).toEqual([]);
  });

  it('cuts a file into ranges, with bigger parts past 10,000 of them', () => {
    expect([...fileParts('f', 12, 5)]).toEqual([
      { path: 'f', start: 0, length: 5 },
      { path: 'f', start: 5, length: 5 },
      { path: 'f', start: 10, length: 2 },
    ]);
    expect(partSizeFor(100 << 20, 16 << 20)).toBe(16 << 20);
    expect(partSizeFor(200 * 2 ** 30, 16 << 20)).toBe(21 << 20);
  });

  it('sends at most queueSize parts at once, numbered from 1; the first failure stops it, after the rest settle', async () => {
    let inFlight = 0;
    let peak = 0;
    const sent: number[] = [];
    const send = async (n: number) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      if (n === 6) throw new Error('part 6 failed');
      sent.push(n);
    };
    const parts = Array.from({ length: 20 }, () => Buffer.alloc(1));
    await expect(sendParts(parts, 4, send)).rejects.toThrow('part 6 failed');
    expect(peak).toBe(4);
    expect(inFlight).toBe(0);
    expect(Math.max(...sent)).toBeLessThan(12);
    async function* broken() {
      yield Buffer.alloc(1);
      throw new Error('source failed');
    }
    inFlight = 0;
    await expect(sendParts(broken(), 4, send)).rejects.toThrow('source failed');
    expect(inFlight).toBe(0);
  });
});
