// Human sizes for options, config and CLI: "10G", "512MiB", "1.5 TB", "4096". Binary units (1 KiB = 1024)
// for K/M/G/T with or without "i", because that is what `du -h` and operators mean by a cache size;
// explicit "KB/MB/GB/TB" are decimal.
import { CacheError } from './errors.js';

const BINARY: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };
const DECIMAL: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$/i;

/** Parses a size into bytes; throws CacheError('InvalidSize') with the accepted forms on anything else. */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isSafeInteger(text) && text >= 0) return text;
    throw new CacheError('InvalidSize', `invalid size ${text}: expected a whole number of bytes`);
  }
  const m = SIZE.exec(text);
  if (!m) {
    throw new CacheError('InvalidSize', `invalid size "${text}": use e.g. 4096, 512MiB, 10G, 1.5T, 20GB`);
  }
  const [, num = '0', unitRaw = '', i = '', b = ''] = m;
  const unit = unitRaw.toUpperCase();
  // "GB" (no i) is decimal; "G", "GiB" are binary; a bare "B" or nothing is bytes.
  const factor = unit !== '' && b !== '' && i === '' ? DECIMAL[unit] : BINARY[unit];
  const bytes = Math.round(Number(num) * (factor ?? 1));
  if (!Number.isSafeInteger(bytes)) throw new CacheError('InvalidSize', `size "${text}" is too large`);
  return bytes;
}

/** Formats bytes the way parseSize reads them back: "1.5 GiB", "512 MiB", "42 B". */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))} ${units[u]}`;
}
