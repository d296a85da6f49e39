// An in-memory read-write filesystem for driving the FUSE engine in tests. Files may instead be
// "backed" by a local file, which the engine serves through its fast path (passthrough or C reads), or
// live in a local file that the engine writes through its fast write path (C threads, written()).
import { closeSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';
import { FsError } from '../../src/fuse/errors.js';
import type { Attr, DirEntry, Entry, Filesystem, OpenReply, RequestContext, SetattrChanges, StatFs } from '../../src/fuse/filesystem.js';
import { RENAME_NOREPLACE } from '../../src/fuse/protocol.js';

interface Node {
  ino: number;
  mode: number;
  mtimeMs: number;
  data?: Buffer;
  size: number;
  backingPath?: string;
  /** A read-write file whose bytes live in this local file. */
  localPath?: string;
  children?: Map<string, Node>;
  parent?: Node;
  readOnly?: boolean;
}

export interface MemFsOptions {
  ttl?: number;
  keepCache?: boolean;
  /** Make every backed file be served by read() instead of the fast path. */
  noFastPath?: boolean;
}

export class MemFs implements Filesystem {
  private readonly nodes = new Map<number, Node>();
  private nextIno = 2;
  readonly root: Node;
  readonly calls = new Map<string, number>();
  /** Every written() report: [ino, offset, length]. */
  readonly writtenReports: [number, number, number][] = [];
  forgotten = 0;
  /** Open descriptors of local files, by handle. */
  private readonly localFds = new Map<number, number>();
  private nextLocalFh = 1 << 20;

  constructor(private readonly opts: MemFsOptions = {}) {
    this.root = { ino: 1, mode: 0o040755, mtimeMs: Date.now(), size: 0, children: new Map() };
    this.nodes.set(1, this.root);
  }

  private get ttl(): number {
    return this.opts.ttl ?? 1;
  }

  // ------------------------------------------------------------ test setup helpers
  private dirAt(path: string, create: boolean): Node {
    let cur = this.root;
    for (const part of path.split('/').filter(Boolean)) {
      let next = cur.children!.get(part);
      if (!next) {
        if (!create) throw new Error(`no dir ${path}`);
        next = this.newNode(cur, part, 0o040755);
      }
      cur = next;
    }
    return cur;
  }

  private newNode(parent: Node, name: string, mode: number): Node {
    const n: Node = { ino: this.nextIno++, mode, mtimeMs: Date.now(), size: 0, parent };
    if ((mode & 0o170000) === 0o040000) n.children = new Map();
    else n.data = Buffer.alloc(0);
    parent.children!.set(name, n);
    this.nodes.set(n.ino, n);
    return n;
  }

  addFile(path: string, content: Buffer | string, opts: { readOnly?: boolean } = {}): number {
    const parts = path.split('/');
    const name = parts.pop()!;
    const dir = this.dirAt(parts.join('/'), true);
    const n = this.newNode(dir, name, opts.readOnly ? 0o100444 : 0o100644);
    n.data = Buffer.from(content);
    n.size = n.data.length;
    n.readOnly = opts.readOnly;
    return n.ino;
  }

  addBackedFile(path: string, backingPath: string): number {
    const parts = path.split('/');
    const name = parts.pop()!;
    const dir = this.dirAt(parts.join('/'), true);
    const n = this.newNode(dir, name, 0o100444);
    n.backingPath = backingPath;
    n.size = statSync(backingPath).size;
    n.readOnly = true;
    return n.ino;
  }

  /** A read-write file whose bytes live in `localPath` (which must exist): writes take the fast write path. */
  addLocalFile(path: string, localPath: string): number {
    const parts = path.split('/');
    const name = parts.pop()!;
    const n = this.newNode(this.dirAt(parts.join('/'), true), name, 0o100644);
    n.data = undefined;
    n.localPath = localPath;
    n.size = statSync(localPath).size;
    return n.ino;
  }

  mkdirp(path: string): void {
    this.dirAt(path, true);
  }

  private count(op: string): void {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
  }

  // ------------------------------------------------------------ Filesystem
  private node(ino: number): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FsError('ENOENT');
    return n;
  }

  private dir(ino: number): Node {
    const n = this.node(ino);
    if (!n.children) throw new FsError('ENOTDIR');
    return n;
  }

  private attr(n: Node): Attr {
    return { ino: n.ino, size: n.children ? 4096 : n.size, mode: n.mode, mtimeMs: n.mtimeMs, uid: 0, gid: 0 };
  }

  private entry(n: Node): Entry {
    return { attr: this.attr(n), entryTtl: this.ttl, attrTtl: this.ttl };
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    this.count('lookup');
    const n = this.dir(parent).children!.get(name);
    if (!n) throw new FsError('ENOENT');
    return this.entry(n);
  }

  forget(): void {
    this.forgotten++;
  }

  async getattr(_ctx: RequestContext, ino: number) {
    this.count('getattr');
    return { attr: this.attr(this.node(ino)), ttl: this.ttl };
  }

  async setattr(_ctx: RequestContext, ino: number, c: SetattrChanges) {
    const n = this.node(ino);
    if (n.readOnly) throw new FsError('EROFS');
    if (c.size !== undefined && n.localPath) {
      truncateSync(n.localPath, c.size);
      n.size = c.size;
    } else if (c.size !== undefined) {
      if (n.children) throw new FsError('EISDIR');
      const data = Buffer.alloc(c.size);
      n.data!.copy(data, 0, 0, Math.min(c.size, n.size));
      n.data = data;
      n.size = c.size;
    }
    if (c.mode !== undefined) n.mode = (n.mode & 0o170000) | (c.mode & 0o7777);
    if (c.mtimeMs !== undefined) n.mtimeMs = c.mtimeMs;
    return { attr: this.attr(n), ttl: this.ttl };
  }

  async open(_ctx: RequestContext, ino: number, flags: number): Promise<OpenReply> {
    this.count('open');
    const n = this.node(ino);
    if (n.children) throw new FsError('EISDIR');
    const writing = (flags & 3) !== 0;
    if (writing && n.readOnly) throw new FsError('EROFS');
    if (flags & 0o1000 /* O_TRUNC */ && writing) {
      if (n.localPath) truncateSync(n.localPath, 0);
      else n.data = Buffer.alloc(0);
      n.size = 0;
    }
    if (n.localPath && writing) {
      const fh = this.nextLocalFh++;
      const fd = openSync(n.localPath, 'r+');
      this.localFds.set(fh, fd);
      return { fh, writeFd: fd };
    }
    const reply: OpenReply = { fh: ino, keepCache: this.opts.keepCache ?? false };
    if (n.backingPath && !this.opts.noFastPath) reply.backingPath = n.backingPath;
    return reply;
  }

  async read(_ctx: RequestContext, ino: number, _fh: number, offset: number, size: number): Promise<Buffer> {
    this.count('read');
    const n = this.node(ino);
    const local = n.backingPath ?? n.localPath;
    if (local) {
      const { open } = await import('node:fs/promises');
      const fh = await open(local, 'r');
      try {
        const buf = Buffer.allocUnsafe(size);
        const { bytesRead } = await fh.read(buf, 0, size, offset);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    }
    return n.data!.subarray(offset, Math.min(offset + size, n.size));
  }

  async write(_ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer): Promise<number> {
    this.count('write');
    const n = this.node(ino);
    if (n.readOnly) throw new FsError('EROFS');
    const fd = this.localFds.get(fh);
    if (fd !== undefined) {
      writeSync(fd, data, 0, data.length, offset);
      this.written(ino, fh, offset, data.length);
      return data.length;
    }
    const end = offset + data.length;
    if (end > n.data!.length) {
      const grown = Buffer.alloc(Math.max(end, n.data!.length * 2));
      n.data!.copy(grown, 0, 0, n.size);
      n.data = grown;
    }
    data.copy(n.data!, offset);
    n.size = Math.max(n.size, end);
    n.mtimeMs = Date.now();
    return data.length;
  }

  written(ino: number, _fh: number, offset: number, length: number): void {
    this.writtenReports.push([ino, offset, length]);
    const n = this.node(ino);
    n.size = Math.max(n.size, offset + length);
    n.mtimeMs = Date.now();
  }

  async release(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    const fd = this.localFds.get(fh);
    if (fd === undefined) return;
    this.localFds.delete(fh);
    closeSync(fd);
  }

  async readdir(_ctx: RequestContext, ino: number, _fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    this.count(plus ? 'readdirplus' : 'readdir');
    const d = this.dir(ino);
    const all: DirEntry[] = [
      { name: '.', ino: d.ino, mode: d.mode, nextOffset: 1 },
      { name: '..', ino: d.parent?.ino ?? 1, mode: 0o040755, nextOffset: 2 },
    ];
    let i = 2;
    for (const [name, n] of d.children!) {
      i++;
      all.push({ name, ino: n.ino, mode: n.mode, nextOffset: i, ...(plus ? { entry: this.entry(n) } : {}) });
    }
    return all.slice(offset);
  }

  async statfs(): Promise<StatFs> {
    return { blocks: 1 << 20, bfree: 1 << 19, bavail: 1 << 19, files: this.nodes.size, ffree: 1 << 20, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  async create(_ctx: RequestContext, parent: number, name: string, mode: number): Promise<{ entry: Entry; open: OpenReply }> {
    const d = this.dir(parent);
    if (d.children!.has(name)) throw new FsError('EEXIST');
    const n = this.newNode(d, name, 0o100000 | (mode & 0o7777));
    return { entry: this.entry(n), open: { fh: n.ino } };
  }

  async mkdir(_ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry> {
    const d = this.dir(parent);
    if (d.children!.has(name)) throw new FsError('EEXIST');
    return this.entry(this.newNode(d, name, 0o040000 | (mode & 0o7777)));
  }

  async unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    const d = this.dir(parent);
    const n = d.children!.get(name);
    if (!n) throw new FsError('ENOENT');
    if (n.children) throw new FsError('EISDIR');
    d.children!.delete(name);
  }

  async rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    const d = this.dir(parent);
    const n = d.children!.get(name);
    if (!n) throw new FsError('ENOENT');
    if (!n.children) throw new FsError('ENOTDIR');
    if (n.children.size > 0) throw new FsError('ENOTEMPTY');
    d.children!.delete(name);
  }

  async rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const n = from.children!.get(name);
    if (!n) throw new FsError('ENOENT');
    const existing = to.children!.get(newName);
    if (existing && flags & RENAME_NOREPLACE) throw new FsError('EEXIST');
    if (existing?.children && existing.children.size > 0) throw new FsError('ENOTEMPTY');
    from.children!.delete(name);
    to.children!.set(newName, n);
    n.parent = to;
  }
}
