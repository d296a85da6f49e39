// POSIX attributes in an object's user metadata (x-amz-meta-*), in the conventions other S3 filesystems use,
// so that one bucket reads the same through s3fs, rclone and us:
//   mode         decimal st_mode with the type bits (s3fs): "33188" = -rw-r--r--, "41471" = a symlink (0777)
//   uid, gid     decimal ids (s3fs)
//   mtime        seconds since the epoch, "1700000000" or "1700000000.123456789" (s3fs writes 9 fraction
//                digits; rclone drops trailing zeros, so the fraction is read as decimal digits, not as a
//                count of nanoseconds); RFC 3339 is read too
//   atime, ctime the same format (s3fs)
// Pure: no I/O, no state. Keys are lower-case without the x-amz-meta- prefix, as ObjectInfo.metadata has them.

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
/** Permission bits with setuid, setgid and sticky. */
export const PERMISSION_BITS = 0o7777;

export interface PosixAttrs {
  /** st_mode; its type bits may be 0 (unknown: the listing says file or directory). */
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeNs?: bigint;
  atimeNs?: bigint;
  ctimeNs?: bigint;
}

export type UserMetadata = Record<string, string>;

const TIME_KEYS = { mtimeNs: 'mtime', atimeNs: 'atime', ctimeNs: 'ctime' } as const;
const NS_PER_S = 1_000_000_000n;
const MAX_ID = 2 ** 32 - 2; // (uid_t)-1 means "unchanged" to chown

/** The POSIX attributes in `meta`; a value that does not parse is left out (the default shows instead). */
export function decodePosix(meta: UserMetadata | undefined): PosixAttrs {
  const out: PosixAttrs = {};
  if (!meta) return out;
  const mode = decimal(meta.mode, 0o177777);
  if (mode !== undefined) out.mode = mode;
  const uid = decimal(meta.uid, MAX_ID);
  if (uid !== undefined) out.uid = uid;
  const gid = decimal(meta.gid, MAX_ID);
  if (gid !== undefined) out.gid = gid;
  for (const [field, key] of Object.entries(TIME_KEYS) as [keyof typeof TIME_KEYS, string][]) {
    const v = meta[key];
    const t = v === undefined ? undefined : parseTime(v);
    if (t !== undefined) out[field] = t;
  }
  return out;
}

/** `base` (other keys kept as they are) with the given attributes set. */
export function encodePosix(base: UserMetadata | undefined, attrs: PosixAttrs): UserMetadata {
  const out: UserMetadata = { ...base };
  if (attrs.mode !== undefined) out.mode = String(attrs.mode);
  if (attrs.uid !== undefined) out.uid = String(attrs.uid);
  if (attrs.gid !== undefined) out.gid = String(attrs.gid);
  for (const [field, key] of Object.entries(TIME_KEYS) as [keyof typeof TIME_KEYS, string][]) {
    const t = attrs[field];
    if (t !== undefined) out[key] = formatTime(t);
  }
  return out;
}

/**
 * `meta` after the bytes changed: a write sets mtime and ctime to now, which for an object is its
 * LastModified, so stored times that would hide it go.
 */
export function afterWrite(meta: UserMetadata): UserMetadata {
  const { mtime: _m, ctime: _c, ...rest } = meta;
  return rest;
}

/** s3fs's format: whole seconds, or seconds and nine fraction digits (a negative time as a signed decimal). */
export function formatTime(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const frac = abs % NS_PER_S;
  return frac === 0n ? `${sign}${abs / NS_PER_S}` : `${sign}${abs / NS_PER_S}.${String(frac).padStart(9, '0')}`;
}

const FLOAT_TIME = /^(-?\d{1,12})(?:\.(\d{1,30}))?$/;
const RFC3339 = /^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d{1,30}))?([Zz]|[+-]\d\d:\d\d)$/;

/** Nanoseconds since the epoch from "secs[.fraction]" or RFC 3339, else undefined. */
export function parseTime(s: string): bigint | undefined {
  const v = s.trim();
  const f = FLOAT_TIME.exec(v);
  if (f) {
    const sec = BigInt(f[1]!);
    const frac = fractionNs(f[2]);
    return sec < 0n || f[1]!.startsWith('-') ? sec * NS_PER_S - frac : sec * NS_PER_S + frac;
  }
  const r = RFC3339.exec(v);
  if (r) {
    const ms = Date.parse(`${r[1]!.replace(/[t ]/, 'T')}${r[3]!.toUpperCase()}`);
    if (Number.isNaN(ms)) return undefined;
    return BigInt(ms) * 1_000_000n + fractionNs(r[2]);
  }
  return undefined;
}

/** Decimal fraction digits as nanoseconds: "5" = 500000000, beyond nine digits truncated. */
function fractionNs(digits: string | undefined): bigint {
  if (!digits) return 0n;
  return BigInt(digits.slice(0, 9).padEnd(9, '0'));
}

function decimal(v: string | undefined, max: number): number | undefined {
  if (v === undefined || !/^\s*\d{1,10}\s*$/.test(v)) return undefined;
  const n = Number(v);
  return n <= max ? n : undefined;
}

/** Milliseconds (possibly fractional) as nanoseconds, and back. */
export function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
}

export function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6;
}
