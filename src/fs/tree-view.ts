// A read-only view of an immutable tree of files: a committed dataset version, or the embedded MNIST
// sample. Metadata comes from the tree alone (no storage request for ls/stat/find); bytes come from a
// FileContent (the cache for team datasets, memory for embedded data). Because nothing here ever
// changes, entries and attributes get long TTLs and the kernel page cache is kept across opens.
import { constants as fsConstants } from 'node:fs';
import { FsError } from '../fuse/errors.js';
import type { Attr, AttrReply, DirEntry, Entry, Filesystem, OpenReply, RequestContext } from '../fuse/filesystem.js';
import { toFsError } from './errno.js';
import { SiblingPrefetch, type PrefetchResult } from './sibling-prefetch.js';
import { TREE_ROOT, type Tree } from './tree.js';

/** An open file's bytes. */
export interface OpenedContent {
  /** For a FUSE reply, used at once: the bytes may be a view of a buffer reused after this event-loop turn. */
  read(offset: number, length: number): Promise<Buffer>;
  /** A local file holding exactly these bytes, once there is one: the engine's fast path. */
  backingPath(): string | undefined;
  close(): void;
}

export interface FileContent {
  /** Opens the file that the tree built from input entry `fileIndex`. */
  open(fileIndex: number): Promise<OpenedContent>;
  /** Fetches the file ahead of its reader, if it can now (sibling prefetch). */
  prefetch?(fileIndex: number): PrefetchResult;
}

export interface TreeViewOptions {
  /** Seconds the kernel may keep entries and attributes: immutable data, so long. Default one day. */
  ttl?: number;
  uid?: number;
  gid?: number;
  /** Where failures to read a file's bytes are logged. */
  log?: { warn(obj: object, msg: string): void };
}

const DAY = 24 * 3600;
const READDIR_BATCH = 1024;

export class TreeView implements Filesystem {
  private readonly handles = new Map<number, OpenedContent>();
  /** Directories read file after file in name order get their next small files fetched ahead. */
  private readonly siblings = new SiblingPrefetch<number>();
  private nextFh = 1;
  private readonly ttl: number;

  constructor(
    private readonly tree: Tree,
    private readonly content: FileContent,
    private readonly opts: TreeViewOptions = {},
  ) {
    this.ttl = opts.ttl ?? DAY;
  }

  /** Local inode numbers: tree node + 1 (the root is inode 1). */
  private node(ino: number): number {
    const node = ino - 1;
    if (!Number.isInteger(node) || node < 0 || node >= this.tree.nodeCount) throw new FsError('ENOENT');
    return node;
  }

  private attr(node: number): Attr {
    const dir = this.tree.isDir(node);
    return {
      ino: node + 1,
      size: dir ? 4096 : this.tree.size[node]!,
      mode: dir ? 0o040555 : 0o100444,
      nlink: dir ? 2 : 1,
      uid: this.opts.uid ?? 0,
      gid: this.opts.gid ?? 0,
      mtimeMs: this.tree.mtimeMs[node]!,
    };
  }

  private entry(node: number): Entry {
    return { attr: this.attr(node), entryTtl: this.ttl, attrTtl: this.ttl };
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    const dir = this.node(parent);
    if (!this.tree.isDir(dir)) throw new FsError('ENOTDIR');
    const child = this.tree.lookup(dir, name);
    if (child < 0) throw new FsError('ENOENT');
    return this.entry(child);
  }

  async getattr(_ctx: RequestContext, ino: number): Promise<AttrReply> {
    return { attr: this.attr(this.node(ino)), ttl: this.ttl };
  }

  async open(_ctx: RequestContext, ino: number, flags: number): Promise<OpenReply> {
    const node = this.node(ino);
    if (this.tree.isDir(node)) throw new FsError('EISDIR');
    if ((flags & 3) !== fsConstants.O_RDONLY || flags & fsConstants.O_TRUNC) throw new FsError('EROFS');
    let opened: OpenedContent;
    try {
      opened = await this.content.open(this.tree.fileIndex[node]!);
    } catch (err) {
      throw this.failure(err, node);
    }
    this.prefetchSiblings(node);
    const fh = this.nextFh++;
    this.handles.set(fh, opened);
    const reply: OpenReply = { fh, keepCache: true };
    const backing = opened.backingPath();
    if (backing) reply.backingPath = backing;
    return reply;
  }

  private prefetchSiblings(node: number): void {
    const content = this.content;
    if (!content.prefetch) return;
    const tree = this.tree;
    const dir = tree.parent[node]!;
    this.siblings.opened(dir, tree.positionOf(node), tree.childCountOf(dir), (i) => {
      const child = tree.childAt(dir, i);
      const file = tree.fileIndex[child]!;
      return file < 0 ? undefined : { size: tree.size[child]!, prefetch: () => content.prefetch!(file) };
    });
  }

  async read(_ctx: RequestContext, ino: number, fh: number, offset: number, size: number): Promise<Buffer> {
    const h = this.handles.get(fh);
    if (!h) throw new FsError('EBADF');
    try {
      return await h.read(offset, size);
    } catch (err) {
      throw this.failure(err, this.node(ino));
    }
  }

  /** A file's bytes could not be had: the tree says the file exists, so a missing object is EIO too. */
  private failure(err: unknown, node: number): FsError {
    return toFsError(err, { key: this.tree.pathOf(node), what: 'reading a file failed', notFound: 'EIO', log: this.opts.log });
  }

  async release(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    this.handles.get(fh)?.close();
    this.handles.delete(fh);
  }

  async opendir(_ctx: RequestContext, ino: number): Promise<OpenReply> {
    if (!this.tree.isDir(this.node(ino))) throw new FsError('ENOTDIR');
    return { fh: 0, cacheDir: true };
  }

  async readdir(_ctx: RequestContext, ino: number, _fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    const dir = this.node(ino);
    if (!this.tree.isDir(dir)) throw new FsError('ENOTDIR');
    const out: DirEntry[] = [];
    if (offset === 0) out.push({ name: '.', ino, mode: 0o040555, nextOffset: 1 });
    if (offset <= 1) out.push({ name: '..', ino: this.tree.parent[dir]! + 1, mode: 0o040555, nextOffset: 2 });
    const children = this.tree.childrenOf(dir);
    const start = Math.max(0, offset - 2);
    const end = Math.min(children.length, start + READDIR_BATCH);
    for (let i = start; i < end; i++) {
      const child = children[i]!;
      const d: DirEntry = {
        name: this.tree.name(child),
        ino: child + 1,
        mode: this.tree.isDir(child) ? 0o040555 : 0o100444,
        nextOffset: i + 3,
      };
      if (plus) d.entry = this.entry(child);
      out.push(d);
    }
    return out;
  }

  // ---------------------------------------------------------------- stable node keys (session survival)

  /** A node's key is its path in the tree ('' for the root): the same in every process serving this version. */
  nodeKey(ino: number): string {
    return this.tree.pathOf(this.node(ino));
  }

  async resolveKey(key: string): Promise<number> {
    let node = TREE_ROOT;
    for (const name of key === '' ? [] : key.split('/')) {
      if (!this.tree.isDir(node)) throw new FsError('ENOTDIR');
      node = this.tree.lookup(node, name);
      if (node < 0) throw new FsError('ENOENT');
    }
    return node + 1;
  }

  /** Open handles (for status and for tests). */
  get openHandles(): number {
    return this.handles.size;
  }

}
