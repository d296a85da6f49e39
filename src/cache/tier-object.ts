// The shared tier's object format: the entry's bytes, then a trailer that lets any reader check any
// block-aligned range on its own: one CRC-32 per 64 KiB block, then magic, block size and data size. One
// object per identity, written once whole (a PUT or a multipart upload), so a reader never sees data without
// its checksums. Keys are content addresses: a team-dataset file by its sha256, a bucket object by the hash
// of its canonical identity (location, key, VersionId or ETag), so a tier object never goes stale.
import { crc32 } from 'node:zlib';
import type { EntryRecord } from './entry-record.js';

export const TIER_BLOCK = 64 * 1024;
const MAGIC = 0x31544447; // "GDT1" little-endian
const FOOTER = 16;

/** The tier key of a cache entry: content by hash (so manifests and blobs share one namespace), objects by id. */
export function tierKey(rec: Pick<EntryRecord, 'id' | 'sha256'>): string {
  return rec.sha256 ? `c/${rec.sha256}` : `o/${rec.id}`;
}

export function trailerLength(size: number): number {
  return Math.ceil(size / TIER_BLOCK) * 4 + FOOTER;
}

/** Adds the CRCs of whole blocks of `data` (which starts at block `firstBlock`) into `crcs`. */
export function blockCrcs(data: Buffer, firstBlock: number, crcs: Uint32Array): void {
  for (let at = 0, b = firstBlock; at < data.length; at += TIER_BLOCK, b++) {
    crcs[b] = crc32(data.subarray(at, Math.min(data.length, at + TIER_BLOCK)));
  }
}

export function encodeTrailer(size: number, crcs: Uint32Array): Buffer {
  const out = Buffer.alloc(trailerLength(size));
  for (let i = 0; i < crcs.length; i++) out.writeUInt32LE(crcs[i]!, i * 4);
  const f = crcs.length * 4;
  out.writeUInt32LE(MAGIC, f);
  out.writeUInt32LE(TIER_BLOCK, f + 4);
  out.writeBigUInt64LE(BigInt(size), f + 8);
  return out;
}

/** The block CRCs of a trailer, or a reason it is not the trailer of `size` bytes. */
export function decodeTrailer(trailer: Buffer, size: number): Uint32Array | string {
  if (trailer.length !== trailerLength(size)) return `its trailer is ${trailer.length} bytes, not ${trailerLength(size)}`;
  const f = trailer.length - FOOTER;
  if (trailer.readUInt32LE(f) !== MAGIC || trailer.readUInt32LE(f + 4) !== TIER_BLOCK) return 'its trailer has no valid footer';
  if (trailer.readBigUInt64LE(f + 8) !== BigInt(size)) return `its trailer describes ${trailer.readBigUInt64LE(f + 8)} bytes, not ${size}`;
  const crcs = new Uint32Array(f / 4);
  for (let i = 0; i < crcs.length; i++) crcs[i] = trailer.readUInt32LE(i * 4);
  return crcs;
}

/** The first block of `data` (at byte `start`, block-aligned) whose CRC is not the trailer's, else -1. */
export function firstBadBlock(data: Buffer, start: number, crcs: Uint32Array): number {
  if (start % TIER_BLOCK !== 0) return start / TIER_BLOCK;
  for (let at = 0, b = start / TIER_BLOCK; at < data.length; at += TIER_BLOCK, b++) {
    if (crc32(data.subarray(at, Math.min(data.length, at + TIER_BLOCK))) !== crcs[b]) return b;
  }
  return -1;
}
