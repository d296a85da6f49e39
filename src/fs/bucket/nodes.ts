// A bucket view's inodes: one node per key the kernel has been told of, by inode number and by key. A node
// keeps its inode while its key changes (rename), and outlives its name (unlink) until the kernel forgets it.
import { ROOT_INO } from '../../fuse/filesystem.js';
import type { StagedFile } from '../../upload/index.js';
import type { Child, ObjectMeta } from './metadata.js';

export interface BucketNode {
  readonly ino: number;
  /** Store-relative key without a trailing '/'; '' for the view's root. */
  key: string;
  kind: 'file' | 'dir';
  meta?: ObjectMeta;
  /** When meta was last confirmed (ms). */
  metaAt: number;
  /**
   * Its name is gone (unlinked, or replaced by a rename) while the kernel may still hold it open: it keeps
   * its last attributes, and `orphan` holds its staged bytes if it was being written, as on a local disk.
   */
  unlinked?: boolean;
  orphan?: StagedFile;
  /** A symlink's target, read for the object version with this ETag. */
  link?: { etag: string; target: string };
}

export class NodeTable {
  private readonly byIno = new Map<number, BucketNode>();
  private readonly byKey = new Map<string, BucketNode>();
  private nextIno = ROOT_INO + 1;

  constructor() {
    const root: BucketNode = { ino: ROOT_INO, key: '', kind: 'dir', metaAt: 0 };
    this.byIno.set(ROOT_INO, root);
    this.byKey.set('', root);
  }

  get(ino: number): BucketNode | undefined {
    return this.byIno.get(ino);
  }

  withKey(key: string): BucketNode | undefined {
    return this.byKey.get(key);
  }

  /** The node for a key, created or refreshed from what the bucket (or our staging) says it is. */
  upsert(key: string, child: Child): BucketNode {
    let n = this.byKey.get(key);
    if (!n || n.kind !== child.kind) {
      n = { ino: this.nextIno++, key, kind: child.kind, metaAt: 0 };
      this.byIno.set(n.ino, n);
      this.byKey.set(key, n);
    }
    if (child.kind === 'file') {
      n.meta = { size: child.size, etag: child.etag, mtimeMs: child.mtimeMs };
      n.metaAt = Date.now();
    }
    return n;
  }

  /** A name goes away: the kernel may still hold the inode open (fstat, reads and writes go on). */
  unlink(key: string, orphan: StagedFile | undefined): void {
    const n = this.byKey.get(key);
    if (!n) return;
    this.byKey.delete(key);
    n.unlinked = true;
    if (orphan) n.orphan = orphan;
  }

  /** A directory is gone; the kernel learns it from its next lookup. */
  removeDir(key: string): void {
    this.byKey.delete(key);
  }

  /** A file moved to a new key: same inode, metadata to be confirmed. What was at `to` is unlinked first. */
  move(from: string, to: string, replacedOrphan: StagedFile | undefined): void {
    const n = this.byKey.get(from);
    this.byKey.delete(from);
    const replaced = this.byKey.get(to);
    if (replaced && replaced !== n) this.unlink(to, replacedOrphan);
    if (n) {
      n.key = to;
      n.metaAt = 0;
      this.byKey.set(to, n);
    }
  }

  /** The kernel let go of the inode. */
  forget(ino: number): void {
    const n = this.byIno.get(ino);
    if (!n || ino === ROOT_INO) return;
    this.byIno.delete(ino);
    if (this.byKey.get(n.key) === n) this.byKey.delete(n.key);
  }
}
