// FUSE kernel protocol constants (include/uapi/linux/fuse.h), for the parts decoded in TypeScript.

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
} as const;

export const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k]));

export const Notify = {
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  DELETE: 6,
  /** Requests read but not answered go back to the kernel's queue, unique | FUSE_UNIQUE_RESEND (kernel 6.9+). */
  RESEND: 7,
} as const;

/** fuse_open_out.open_flags */
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;
export const FOPEN_NOFLUSH = 1 << 5;
export const FOPEN_PASSTHROUGH = 1 << 7;

/** fuse_setattr_in.valid */
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;
export const FATTR_CTIME = 1 << 10;

/** fuse_getattr_in.getattr_flags */
export const FUSE_GETATTR_FH = 1 << 0;
/** fuse_fsync_in.fsync_flags */
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
/** fuse_release_in.release_flags */
export const FUSE_RELEASE_FLUSH = 1 << 0;
/** RENAME2 flags */
export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
/** fuse_notify_inval_entry_out.flags */
export const FUSE_EXPIRE_ONLY = 1 << 0;

/** INIT flags we look at after negotiation (bits 32+ come from flags2). */
export const InitFlag = {
  DO_READDIRPLUS: 2 ** 13,
  PASSTHROUGH: 2 ** 37,
} as const;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
export const DIRENT_BASE_SIZE = 24;
export const STATFS_OUT_SIZE = 80;
