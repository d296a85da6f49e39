// The one filesystem mounted at /datasets: its root lists one directory per entry, and each entry is a
// view (a Filesystem with its own inode numbers, root = 1). The root maps (view, local inode) to global
// inode numbers, so swapping an entry's view is one assignment: the kernel is told to forget the name,
// new lookups reach the new view, and inodes it already holds (open files, a shell's cwd) keep routing
// to the old view until the kernel forgets them.
import { FsError } from '../fuse/errors.js';
import type {
  Attr,
  AttrReply,
  DirEntry,
  Entry,
  Filesystem,
  KernelCacheInvalidator,
  OpenReply,
  RequestContext,
  SetattrChanges,
  StatFs,
} from '../fuse/filesystem.js';
import { ROOT_INO } from '../fuse/filesystem.js';

/** How long the kernel may cache root entries: we invalidate them on every change. */
const ROOT_ENTRY_TTL = 3600;

/**
 * A view as the root sees it. For the session to survive a restart of the serving process, a view names its
 * inodes by stable keys (a tree path, a bucket key: Filesystem.nodeKey) and finds an inode again by its key.
 */
export type View = Filesystem & {
  /** The local inode of a node named by nodeKey() in an earlier process; `resume`: OpenReply.resume of a handle on it. */
  resolveKey?(key: string, resume?: string): Promise<number>;
};

interface Slot {
  name: string;
  view: View;
  /** What the view serves (the reconciler's identity, e.g. dataset:<id>:<version>): nodes are found again in the same one. */
  identity: string;
  /** local inode → global inode, for the inodes of this view the kernel knows. */
  toGlobal: Map<number, number>;
}

interface Route {
  slot: Slot;
  local: number;
}

export interface RootFsOptions {
  uid?: number;
  gid?: number;
  statfs?: () => Promise<StatFs>;
}

export class RootFs implements Filesystem {
  private readonly slots = new Map<string, Slot>();
  private readonly routes = new Map<number, Route>();
  private nextIno = ROOT_INO + 1;
  private mtimeMs = Date.now();
  /** Set once mounted: drops the kernel's cached dentry for a root entry. */
  onEntryChanged?: (parent: number, name: string) => void;
  /** Set once mounted: what views' invalidations of their own nodes become, in global inode numbers. */
  kernelCache?: KernelCacheInvalidator;
  /**
   * After a takeover: a view an earlier process served under `name` that is no longer attached (the entry was
   * switched meanwhile), for the inodes the kernel still holds in it; undefined if it cannot be built again.
   */
  restoreView?: (name: string, identity: string) => Promise<View | undefined>;
  /** Node ids an earlier process handed out (id → key), found again on first use. */
  private readonly adopted = new Map<number, string>();
  private readonly finding = new Map<number, Promise<Route>>();
  /** Views built again for adopted nodes, by identity. */
  private readonly restoredSlots = new Map<string, Promise<Slot | undefined>>();
  /** Until the first settings apply after a takeover: adopted nodes and root lookups wait (holdUntil). */
  private attached: Promise<void> = Promise.resolve();

  constructor(private readonly opts: RootFsOptions = {}) {}

  // ---------------------------------------------------------------- namespace changes

  /** Adds an entry or replaces its view (atomically: one lookup sees either the old or the new view). */
  attach(name: string, view: View, identity = name): void {
    const slot: Slot = { name, view, identity, toGlobal: new Map() };
    this.slots.set(name, slot);
    // Only inodes the kernel was told of can be in its caches: others need no invalidation.
    view.kernelCache = {
      inode: (local) => {
        const g = slot.toGlobal.get(local);
        if (g !== undefined) this.kernelCache?.inode(g);
      },
      entry: (parent, entryName) => {
        const g = slot.toGlobal.get(parent);
        if (g !== undefined) this.kernelCache?.entry(g, entryName);
      },
    };
    this.changed(name);
  }

  detach(name: string): void {
    if (this.slots.delete(name)) this.changed(name);
  }

  names(): string[] {
    return [...this.slots.keys()];
  }

  viewOf(name: string): Filesystem | undefined {
    return this.slots.get(name)?.view;
  }

  private changed(name: string): void {
    this.mtimeMs = Date.now();
    this.onEntryChanged?.(ROOT_INO, name);
  }

  // ---------------------------------------------------------------- inode mapping

  private globalOf(slot: Slot, local: number): number {
    let g = slot.toGlobal.get(local);
    if (g === undefined) {
      g = this.nextIno++;
      slot.toGlobal.set(local, g);
      this.routes.set(g, { slot, local });
    }
    return g;
  }

  private async route(ino: number, resume?: string): Promise<Route> {
    const r = this.routes.get(ino);
    if (r) return r;
    if (!this.adopted.has(ino)) throw new FsError(ino === ROOT_INO ? 'EISDIR' : 'ENOENT');
    let finding = this.finding.get(ino);
    if (!finding) {
      finding = this.findAdopted(ino, this.adopted.get(ino)!, resume).finally(() => this.finding.delete(ino));
      this.finding.set(ino, finding);
    }
    return finding;
  }

  // ---------------------------------------------------------------- session survival

  /** A node's key: its entry, the identity of the view and the view's own key; undefined if the view has none. */
  nodeKey(ino: number): string | undefined {
    const r = this.routes.get(ino);
    const key = r?.slot.view.nodeKey?.(r.local);
    return r && key !== undefined ? JSON.stringify([r.slot.name, r.slot.identity, key]) : undefined;
  }

  /**
   * A process taking a session over serves at once, before its settings are applied: lookups of entries and
   * requests for nodes the kernel holds wait until `attached` settles, rather than fail for a view not attached
   * yet; so does the root's listing. Its attributes answer meanwhile (a settings watch may stat the mountpoint).
   */
  holdUntil(attached: Promise<void>): void {
    this.attached = attached;
  }

  adoptNodes(nodes: Map<number, string>): void {
    for (const [ino, key] of nodes) {
      this.adopted.set(ino, key);
      this.nextIno = Math.max(this.nextIno, ino + 1);
    }
  }

  /** Entry names the kernel may hold dentries for: today's and those of adopted nodes (to invalidate after a takeover). */
  knownNames(): string[] {
    const names = new Set(this.slots.keys());
    for (const key of this.adopted.values()) {
      const [name] = parseKey(key) ?? [];
      if (name !== undefined) names.add(name);
    }
    return [...names];
  }

  async reopen(ctx: RequestContext, ino: number, flags: number, resume: string | undefined): Promise<OpenReply> {
    const r = await this.route(ino, resume);
    if (r.slot.view.reopen) return r.slot.view.reopen(ctx, r.local, flags, resume);
    if (!r.slot.view.open) throw new FsError('ENOSYS');
    return r.slot.view.open(ctx, r.local, flags);
  }

  /**
   * Finds an adopted node in the view that served it: today's view of the entry if it serves the same thing, else
   * that view built again. A node that cannot be found (its entry is gone, or it was renamed or deleted
   * meanwhile) is ESTALE, as a file handle of NFS is.
   */
  private async findAdopted(ino: number, key: string, resume: string | undefined): Promise<Route> {
    await this.attached;
    const parsed = parseKey(key);
    const slot = parsed && (await this.slotFor(parsed[0], parsed[1]));
    if (!parsed || !slot?.view.resolveKey) throw new FsError('ESTALE', `node ${ino} (${key}) cannot be found again`);
    let local: number;
    try {
      local = await slot.view.resolveKey(parsed[2], resume);
    } catch (err) {
      if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) throw new FsError('ESTALE', `${key} is gone`);
      throw err;
    }
    const route = { slot, local };
    this.adopted.delete(ino);
    this.routes.set(ino, route);
    if (!slot.toGlobal.has(local)) slot.toGlobal.set(local, ino);
    return route;
  }

  private async slotFor(name: string, identity: string): Promise<Slot | undefined> {
    const current = this.slots.get(name);
    if (current?.identity === identity) return current;
    let restored = this.restoredSlots.get(identity);
    if (!restored) {
      restored = (async () => {
        const view = await this.restoreView?.(name, identity).catch(() => undefined);
        return view && { name, view, identity, toGlobal: new Map<number, number>() };
      })();
      this.restoredSlots.set(identity, restored);
    }
    return restored;
  }

  private globalAttr(slot: Slot, a: Attr): Attr {
    return { ...a, ino: this.globalOf(slot, a.ino) };
  }

  private globalEntry(slot: Slot, e: Entry): Entry {
    return { ...e, attr: this.globalAttr(slot, e.attr) };
  }

  forget(ino: number): void {
    if (this.adopted.delete(ino)) return;
    const r = this.routes.get(ino);
    if (!r) return;
    this.routes.delete(ino);
    // After a takeover two ids may name one node (an adopted one, and one a fresh lookup handed out first).
    if (r.slot.toGlobal.get(r.local) !== ino) return;
    r.slot.toGlobal.delete(r.local);
    r.slot.view.forget?.(r.local);
  }

  private rootAttr(): Attr {
    return { ino: ROOT_INO, size: 4096, mode: 0o040755, nlink: 2 + this.slots.size, uid: this.opts.uid ?? 0, gid: this.opts.gid ?? 0, mtimeMs: this.mtimeMs };
  }

  private async slotEntry(ctx: RequestContext, slot: Slot): Promise<Entry> {
    const { attr } = await slot.view.getattr(ctx, ROOT_INO);
    return { attr: this.globalAttr(slot, attr), entryTtl: ROOT_ENTRY_TTL, attrTtl: ROOT_ENTRY_TTL };
  }

  // ---------------------------------------------------------------- Filesystem

  async lookup(ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    if (parent === ROOT_INO) {
      await this.attached;
      const slot = this.slots.get(name);
      if (!slot) throw new FsError('ENOENT');
      return this.slotEntry(ctx, slot);
    }
    const r = await this.route(parent);
    return this.globalEntry(r.slot, await r.slot.view.lookup(ctx, r.local, name));
  }

  async getattr(ctx: RequestContext, ino: number, fh?: number): Promise<AttrReply> {
    if (ino === ROOT_INO) return { attr: this.rootAttr(), ttl: 1 };
    const r = await this.route(ino);
    const res = await r.slot.view.getattr(ctx, r.local, fh);
    return { attr: this.globalAttr(r.slot, res.attr), ttl: res.ttl };
  }

  async setattr(ctx: RequestContext, ino: number, changes: SetattrChanges): Promise<AttrReply> {
    const r = await this.route(ino);
    if (!r.slot.view.setattr) throw new FsError('EROFS');
    const res = await r.slot.view.setattr(ctx, r.local, changes);
    return { attr: this.globalAttr(r.slot, res.attr), ttl: res.ttl };
  }

  async readlink(ctx: RequestContext, ino: number): Promise<string> {
    const r = await this.route(ino);
    if (!r.slot.view.readlink) throw new FsError('EINVAL');
    return r.slot.view.readlink(ctx, r.local);
  }

  async open(ctx: RequestContext, ino: number, flags: number): Promise<OpenReply> {
    const r = await this.route(ino);
    if (!r.slot.view.open) throw new FsError('ENOSYS');
    return r.slot.view.open(ctx, r.local, flags);
  }

  async read(ctx: RequestContext, ino: number, fh: number, offset: number, size: number): Promise<Buffer> {
    const r = await this.route(ino);
    if (!r.slot.view.read) throw new FsError('EIO');
    return r.slot.view.read(ctx, r.local, fh, offset, size);
  }

  async write(ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer): Promise<number> {
    const r = await this.route(ino);
    if (!r.slot.view.write) throw new FsError('EROFS');
    return r.slot.view.write(ctx, r.local, fh, offset, data);
  }

  written(ino: number, fh: number, offset: number, length: number): void {
    const r = this.routes.get(ino);
    r?.slot.view.written?.(r.local, fh, offset, length);
  }

  async flush(ctx: RequestContext, ino: number, fh: number): Promise<void> {
    const r = await this.route(ino);
    await r.slot.view.flush?.(ctx, r.local, fh);
  }

  async release(ctx: RequestContext, ino: number, fh: number, flags: number): Promise<void> {
    const r = this.routes.get(ino);
    await r?.slot.view.release?.(ctx, r.local, fh, flags);
  }

  async fsync(ctx: RequestContext, ino: number, fh: number, datasync: boolean): Promise<void> {
    const r = await this.route(ino);
    await r.slot.view.fsync?.(ctx, r.local, fh, datasync);
  }

  async opendir(ctx: RequestContext, ino: number, flags: number): Promise<OpenReply> {
    if (ino === ROOT_INO) return { fh: 0 };
    const r = await this.route(ino);
    return r.slot.view.opendir ? r.slot.view.opendir(ctx, r.local, flags) : { fh: 0 };
  }

  async readdir(ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    if (ino !== ROOT_INO) {
      const r = await this.route(ino);
      const entries = await r.slot.view.readdir(ctx, r.local, fh, offset, plus);
      return entries.map((d) => {
        // '..' of a view's root is the mount root.
        if (d.name === '..' && r.local === ROOT_INO) return { ...d, ino: ROOT_INO };
        const g: DirEntry = { ...d, ino: this.globalOf(r.slot, d.ino) };
        if (d.entry && d.name !== '.' && d.name !== '..') g.entry = this.globalEntry(r.slot, d.entry);
        else delete g.entry;
        return g;
      });
    }
    await this.attached;
    const out: DirEntry[] = [];
    if (offset === 0) out.push({ name: '.', ino: ROOT_INO, mode: 0o040755, nextOffset: 1 });
    if (offset <= 1) out.push({ name: '..', ino: ROOT_INO, mode: 0o040755, nextOffset: 2 });
    const slots = [...this.slots.values()];
    for (let i = Math.max(0, offset - 2); i < slots.length; i++) {
      const slot = slots[i]!;
      const d: DirEntry = { name: slot.name, ino: this.globalOf(slot, ROOT_INO), mode: 0o040755, nextOffset: i + 3 };
      if (plus) {
        try {
          d.entry = await this.slotEntry(ctx, slot);
        } catch {
          continue; // a view that cannot answer is left out of this listing rather than failing it
        }
      }
      out.push(d);
    }
    return out;
  }

  async releasedir(ctx: RequestContext, ino: number, fh: number): Promise<void> {
    const r = this.routes.get(ino);
    await r?.slot.view.releasedir?.(ctx, r.local, fh);
  }

  async statfs(ctx: RequestContext, ino: number): Promise<StatFs> {
    const r = ino === ROOT_INO ? undefined : this.routes.get(ino);
    if (r?.slot.view.statfs) return r.slot.view.statfs(ctx, r.local);
    if (this.opts.statfs) return this.opts.statfs();
    return { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  async create(ctx: RequestContext, parent: number, name: string, mode: number, flags: number): Promise<{ entry: Entry; open: OpenReply }> {
    const r = await this.writableParent(parent);
    const res = await r.slot.view.create!(ctx, r.local, name, mode, flags);
    return { entry: this.globalEntry(r.slot, res.entry), open: res.open };
  }

  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry> {
    const r = await this.writableParent(parent, 'mkdir');
    return this.globalEntry(r.slot, await r.slot.view.mkdir!(ctx, r.local, name, mode));
  }

  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<Entry> {
    const r = await this.writableParent(parent, 'symlink');
    return this.globalEntry(r.slot, await r.slot.view.symlink!(ctx, r.local, name, target));
  }

  async mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): Promise<Entry> {
    const r = await this.writableParent(parent, 'mknod');
    return this.globalEntry(r.slot, await r.slot.view.mknod!(ctx, r.local, name, mode, rdev));
  }

  async link(ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<Entry> {
    const to = await this.writableParent(newParent, 'link');
    const from = await this.route(ino);
    if (from.slot !== to.slot) throw new FsError('EXDEV');
    return this.globalEntry(to.slot, await to.slot.view.link!(ctx, from.local, to.local, newName));
  }

  async unlink(ctx: RequestContext, parent: number, name: string): Promise<void> {
    const r = await this.writableParent(parent, 'unlink');
    await r.slot.view.unlink!(ctx, r.local, name);
  }

  async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    const r = await this.writableParent(parent, 'rmdir');
    await r.slot.view.rmdir!(ctx, r.local, name);
  }

  async rename(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    const from = await this.writableParent(parent, 'rename');
    const to = await this.writableParent(newParent, 'rename');
    if (from.slot !== to.slot) throw new FsError('EXDEV'); // each entry is its own store
    await from.slot.view.rename!(ctx, from.local, name, to.local, newName, flags);
  }

  /** The root itself is managed through settings.yaml: no files or directories can be made in it. */
  private async writableParent(
    parent: number,
    op: 'create' | 'mkdir' | 'unlink' | 'rmdir' | 'rename' | 'symlink' | 'mknod' | 'link' = 'create',
  ): Promise<Route> {
    if (parent === ROOT_INO) throw new FsError(op === 'unlink' || op === 'rmdir' || op === 'rename' ? 'EPERM' : 'EROFS');
    const r = await this.route(parent);
    // A view that cannot make such nodes at all answers as a local filesystem without them (EPERM).
    if (!r.slot.view[op]) throw new FsError(op === 'symlink' || op === 'mknod' || op === 'link' ? 'EPERM' : 'EROFS');
    return r;
  }
}

/** [entry name, view identity, the view's key] of RootFs.nodeKey, or undefined. */
function parseKey(key: string): [string, string, string] | undefined {
  try {
    const k = JSON.parse(key) as unknown;
    return Array.isArray(k) && k.length === 3 && k.every((x) => typeof x === 'string') ? (k as [string, string, string]) : undefined;
  } catch {
    return undefined;
  }
}
