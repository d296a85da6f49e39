// Encoding replies and notifications, decoding request bodies. Little-endian, as the kernel speaks it
// on every architecture we support (x86_64, arm64).
import type { Attr, DirEntry, Entry, StatFs } from './filesystem.js';
import {
  ATTR_OUT_SIZE,
  DIRENT_BASE_SIZE,
  ENTRY_OUT_SIZE,
  IN_HEADER_SIZE,
  Notify,
  OPEN_OUT_SIZE,
  OUT_HEADER_SIZE,
  STATFS_OUT_SIZE,
} from './protocol.js';

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export function decodeHeader(buf: Buffer): InHeader {
  return {
    len: buf.readUInt32LE(0),
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: Number(buf.readBigUInt64LE(16)),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
  };
}

/** Sequential reader over a request body (after the 40-byte header). */
export class BodyReader {
  private pos = IN_HEADER_SIZE;
  constructor(private readonly buf: Buffer) {}
  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    const v = Number(this.buf.readBigUInt64LE(this.pos));
    this.pos += 8;
    return v;
  }
  u64big(): bigint {
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  skip(n: number): this {
    this.pos += n;
    return this;
  }
  /** A NUL-terminated name. */
  name(): string {
    const end = this.buf.indexOf(0, this.pos);
    const stop = end < 0 ? this.buf.length : end;
    const s = this.buf.toString('utf8', this.pos, stop);
    this.pos = stop + 1;
    return s;
  }
  /** The rest of the request as a view (no copy). */
  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }
}

export function outHeader(len: number, error: number, unique: bigint): Buffer {
  const b = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(-error, 4);
  b.writeBigUInt64LE(unique, 8);
  return b;
}

function writeTime(b: Buffer, secOff: number, nsecOff: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  b.writeBigUInt64LE(BigInt(Math.max(0, sec)), secOff);
  b.writeUInt32LE(Math.max(0, Math.round((ms - sec * 1000) * 1e6)) % 1e9, nsecOff);
}

/** An exact time (ns since the epoch); times before the epoch show as the epoch. */
function writeTimeNs(b: Buffer, secOff: number, nsecOff: number, ns: bigint): void {
  const t = ns < 0n ? 0n : ns;
  b.writeBigUInt64LE(t / 1_000_000_000n, secOff);
  b.writeUInt32LE(Number(t % 1_000_000_000n), nsecOff);
}

function writeTtl(b: Buffer, secOff: number, nsecOff: number, seconds: number): void {
  const s = Math.max(0, seconds);
  const whole = Math.floor(s);
  b.writeBigUInt64LE(BigInt(whole), secOff);
  b.writeUInt32LE(Math.floor((s - whole) * 1e9), nsecOff);
}

function writeAttr(b: Buffer, off: number, a: Attr): void {
  const isDir = (a.mode & 0o170000) === 0o040000;
  b.writeBigUInt64LE(BigInt(a.ino), off);
  b.writeBigUInt64LE(BigInt(a.size), off + 8);
  b.writeBigUInt64LE(BigInt(Math.ceil(a.size / 512)), off + 16);
  const mtime = a.mtimeNs;
  if (a.atimeNs !== undefined) writeTimeNs(b, off + 24, off + 48, a.atimeNs);
  else if (mtime !== undefined && a.atimeMs === undefined) writeTimeNs(b, off + 24, off + 48, mtime);
  else writeTime(b, off + 24, off + 48, a.atimeMs ?? a.mtimeMs);
  if (mtime !== undefined) writeTimeNs(b, off + 32, off + 52, mtime);
  else writeTime(b, off + 32, off + 52, a.mtimeMs);
  if (a.ctimeNs !== undefined) writeTimeNs(b, off + 40, off + 56, a.ctimeNs);
  else if (mtime !== undefined && a.ctimeMs === undefined) writeTimeNs(b, off + 40, off + 56, mtime);
  else writeTime(b, off + 40, off + 56, a.ctimeMs ?? a.mtimeMs);
  b.writeUInt32LE(a.mode >>> 0, off + 60);
  b.writeUInt32LE(a.nlink ?? (isDir ? 2 : 1), off + 64);
  b.writeUInt32LE(a.uid ?? 0, off + 68);
  b.writeUInt32LE(a.gid ?? 0, off + 72);
  b.writeUInt32LE(0, off + 76); // rdev
  b.writeUInt32LE(a.blksize ?? 4096, off + 80);
  b.writeUInt32LE(0, off + 84); // flags
}

function writeEntryOut(b: Buffer, off: number, e: Entry): void {
  b.writeBigUInt64LE(BigInt(e.attr.ino), off);
  b.writeBigUInt64LE(BigInt(e.generation ?? 0), off + 8);
  writeTtl(b, off + 16, off + 32, e.entryTtl);
  writeTtl(b, off + 24, off + 36, e.attrTtl);
  writeAttr(b, off + 40, e.attr);
}

export function entryOut(e: Entry): Buffer {
  const b = Buffer.alloc(ENTRY_OUT_SIZE);
  writeEntryOut(b, 0, e);
  return b;
}

export function attrOut(attr: Attr, ttl: number): Buffer {
  const b = Buffer.alloc(ATTR_OUT_SIZE);
  writeTtl(b, 0, 8, ttl);
  writeAttr(b, 16, attr);
  return b;
}

export function openOut(fh: number, openFlags: number, backingId = 0): Buffer {
  const b = Buffer.alloc(OPEN_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(fh), 0);
  b.writeUInt32LE(openFlags >>> 0, 8);
  b.writeInt32LE(backingId, 12);
  return b;
}

export function writeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

export function statfsOut(s: StatFs): Buffer {
  const b = Buffer.alloc(STATFS_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(s.blocks), 0);
  b.writeBigUInt64LE(BigInt(s.bfree), 8);
  b.writeBigUInt64LE(BigInt(s.bavail), 16);
  b.writeBigUInt64LE(BigInt(s.files), 24);
  b.writeBigUInt64LE(BigInt(s.ffree), 32);
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namelen, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

const align8 = (n: number) => (n + 7) & ~7;

/**
 * Packs directory entries into at most `size` bytes. Returns the buffer and how many entries fit
 * (READDIRPLUS entries that fit count as lookups).
 */
export function encodeDirents(entries: DirEntry[], size: number, plus: boolean): { buf: Buffer; count: number } {
  const out = Buffer.alloc(size);
  let pos = 0;
  let count = 0;
  for (const d of entries) {
    const nameLen = Buffer.byteLength(d.name);
    const base = plus ? ENTRY_OUT_SIZE + DIRENT_BASE_SIZE : DIRENT_BASE_SIZE;
    const recLen = align8(base + nameLen);
    if (pos + recLen > size) break;
    let off = pos;
    if (plus) {
      if (d.entry) writeEntryOut(out, off, d.entry);
      // else: nodeid 0 tells the kernel "no entry, just the name" (used for '.' and '..')
      off += ENTRY_OUT_SIZE;
    }
    out.writeBigUInt64LE(BigInt(d.ino), off);
    out.writeBigUInt64LE(BigInt(d.nextOffset), off + 8);
    out.writeUInt32LE(nameLen, off + 16);
    out.writeUInt32LE((d.mode & 0o170000) >>> 12, off + 20); // DT_* = S_IFMT >> 12
    out.write(d.name, off + 24, 'utf8');
    pos += recLen;
    count++;
  }
  return { buf: out.subarray(0, pos), count };
}

/** FUSE_NOTIFY_RESEND: no body. */
export function notifyResend(): Buffer {
  return notification(Notify.RESEND, Buffer.alloc(0));
}

function notification(code: number, body: Buffer): Buffer {
  return Buffer.concat([outHeader(OUT_HEADER_SIZE + body.length, -code, 0n), body]);
}

export function notifyInvalEntry(parent: number, name: string, flags = 0): Buffer {
  const nameBuf = Buffer.from(name);
  const body = Buffer.alloc(16 + nameBuf.length + 1);
  body.writeBigUInt64LE(BigInt(parent), 0);
  body.writeUInt32LE(nameBuf.length, 8);
  body.writeUInt32LE(flags, 12);
  nameBuf.copy(body, 16);
  return notification(Notify.INVAL_ENTRY, body);
}

export function notifyInvalInode(ino: number, offset = 0, length = 0): Buffer {
  const body = Buffer.alloc(24);
  body.writeBigUInt64LE(BigInt(ino), 0);
  body.writeBigInt64LE(BigInt(offset), 8);
  body.writeBigInt64LE(BigInt(length), 16);
  return notification(Notify.INVAL_INODE, body);
}

export function notifyDelete(parent: number, child: number, name: string): Buffer {
  const nameBuf = Buffer.from(name);
  const body = Buffer.alloc(24 + nameBuf.length + 1);
  body.writeBigUInt64LE(BigInt(parent), 0);
  body.writeBigUInt64LE(BigInt(child), 8);
  body.writeUInt32LE(nameBuf.length, 16);
  nameBuf.copy(body, 24);
  return notification(Notify.DELETE, body);
}

