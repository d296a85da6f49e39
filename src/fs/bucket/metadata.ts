// What a bucket (under a prefix) looks like as a tree, cached for a short TTL: directories come from one
// delimited listing each (common prefixes and `dir/` markers), never from a HEAD per file, so `ls -l` of a
// large directory costs one paged LIST. A name looked up outside a fresh listing costs one HEAD and one
// LIST of `name/` in parallel; misses are remembered (bounded) so that probing for absent files — Python's
// import machinery, shells' PATH lookups — does not turn into a request storm. Changes made by other
// clients show up once the TTL has passed; our own changes are applied to the caches at once.
//
// POSIX attributes live in user metadata, which listings do not carry: with `posixMetadata` on, a listed or
// looked-up file whose version was not seen before costs a HEAD (32 in flight for a listing), remembered by
// version (attribute-cache.ts); a directory's come from a HEAD of its `dir/` marker, kept for the TTL.
import { LRUCache } from 'lru-cache';
import { isStorageError } from '../../storage/errors.js';
import type { ObjectInfo, ObjectStore } from '../../storage/object-store.js';
import { AttributeCache, type AttributeStore, type KnownAttributes } from './attribute-cache.js';
import { decodePosix } from './posix-metadata.js';

export interface ObjectMeta {
  size: number;
  /** ETag without quotes: pins the bytes a read may return (sent as If-Match). */
  etag: string;
  mtimeMs: number;
}

export type Child = { kind: 'dir' } | ({ kind: 'file' } & ObjectMeta);

export interface MetadataOptions {
  /** How long listings, lookups and misses are trusted. */
  ttlMs: number;
  /** Directory listings kept, counted in entries (a listing of n children weighs n + 1). */
  maxListedEntries?: number;
  /** Looked-up names (found or missing) kept. */
  maxNames?: number;
  /** Called with keys not shown: names that cannot be file names, files hidden by a directory (for a warning). */
  onSkippedKey?: (key: string, why: string) => void;
  /** The clock TTLs run on (tests); default performance.now(). */
  clock?: { now(): number };
  /** HEAD listed and looked-up objects (and directory markers) whose user metadata is not known (default true). */
  posixMetadata?: boolean;
  /** Where attributes learnt by HEAD outlive the process. */
  attributeStore?: AttributeStore;
}

/** A directory's attributes: its `dir/` marker's metadata, if it has a marker. */
export interface DirAttributes extends KnownAttributes {
  marker: boolean;
}

/** Joins a directory key ('' = the root) and a child name. */
export function childKey(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** The parent directory key and the last name of a key. */
export function splitKey(key: string): { dir: string; name: string } {
  const i = key.lastIndexOf('/');
  return i < 0 ? { dir: '', name: key } : { dir: key.slice(0, i), name: key.slice(i + 1) };
}

/** Why a key segment cannot be shown as a file name, or undefined if it can. */
export function badName(name: string): string | undefined {
  if (name === '') return 'empty path segment';
  if (name === '.' || name === '..') return `"${name}" path segment`;
  if (name.includes('\0')) return 'NUL character';
  if (Buffer.byteLength(name) > 255) return 'name longer than 255 bytes';
  return undefined;
}

export function metaOf(info: ObjectInfo): ObjectMeta {
  return { size: info.size, etag: info.etag, mtimeMs: info.lastModified.getTime() };
}

/** The user metadata and content type an object answer carries. */
export function attributesOf(info: ObjectInfo): KnownAttributes {
  const a: KnownAttributes = { metadata: info.metadata ?? {} };
  if (info.contentType !== undefined) a.contentType = info.contentType;
  return a;
}

const MISSING = { kind: 'missing' } as const;
/** HEADs in flight while a listing's attributes are fetched. */
const HEADS_IN_FLIGHT = 32;
/**
 * Unknown entries of a listing HEADed before the listing is judged. Listings carry no user metadata, so a
 * directory of plain objects (written by tools that keep no POSIX attributes: most data buckets) would cost
 * a HEAD per entry: `ls -l` of 10k objects took 6–9 s instead of 0.6–0.9. Tools that keep them (s3fs, rclone,
 * our own mounts) write them on every object, so if none of a directory's first entries has any, the others
 * show the defaults (for the TTL, not remembered) without a HEAD each.
 */
const PLAIN_SAMPLE = 16;
const NO_MARKER: DirAttributes = { marker: false, metadata: {} };
/**
 * A directory listed before with at most this many entries is listed again (one request per 1000 names) when
 * a name in it is looked up after its listing expired, instead of probing that name (two requests). Reading a
 * directory's files one by one would otherwise cost a HEAD + LIST per file once the TTL ran out mid-pass.
 */
const RELIST_MAX_ENTRIES = 10_000;
/** Why an object `a` is not shown when keys `a/...` exist too: a name is either a file or a directory. */
const HIDDEN_BY_DIR = 'a directory of the same name hides it';
/**
 * A listing read in the last tenth of its TTL is listed again in the background, so that a directory read
 * continuously never has its readers wait for a re-list when the TTL runs out: 16 threads reading a 10k-file
 * directory all waited ~0.2 s (10 LIST pages) every TTL.
 */
const REFRESH_AHEAD = 0.1;

/** A directory's listing in listing order (S3 key order), with each name's position. */
export interface ListingOrder {
  names: readonly string[];
  position: ReadonlyMap<string, number>;
  children: ReadonlyMap<string, Child>;
}

export class BucketMetadata {
  private readonly listings: LRUCache<string, Map<string, Child>>;
  /** key → child, or MISSING for a known miss. */
  private readonly names: LRUCache<string, Child | typeof MISSING>;
  private readonly listing = new Map<string, Promise<Map<string, Child>>>();
  private readonly probing = new Map<string, Promise<Child | undefined>>();
  /** Directories listed before → how many entries they had (kept past the TTL: it sizes a re-list). */
  private readonly listedBefore = new LRUCache<string, number>({ max: 10_000 });
  /** Listing orders, made on first use for a listing (sibling prefetch), gone with the listing. */
  private readonly orders = new WeakMap<Map<string, Child>, ListingOrder>();
  /**
   * Directories being listed, and whether we changed one of their names meanwhile: that listing may predate
   * the change, so it is handed to those waiting for it but not kept.
   */
  private readonly changedWhileListing = new Map<string, { changed: boolean }>();
  private readonly ttlMs: number;
  /** Files' user metadata and content type by version. */
  readonly attributes: AttributeCache;
  /** Directories' attributes (from their markers), for the TTL. */
  private readonly dirs: LRUCache<string, DirAttributes>;
  private readonly heading = new Map<string, Promise<unknown>>();
  /**
   * Directories the last listing judged plain (no attributes on a sample of their objects): a file of one looked
   * up alone after the TTL shows the defaults, as in the listing, instead of costing a HEAD. Judged again at
   * every listing.
   */
  private readonly plainDirs = new LRUCache<string, true>({ max: 10_000 });

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: MetadataOptions,
  ) {
    const ttl = Math.max(1, opts.ttlMs);
    this.ttlMs = ttl;
    const perf = opts.clock ? { perf: opts.clock, ttlResolution: 0 } : {};
    this.listings = new LRUCache({ maxSize: opts.maxListedEntries ?? 1_000_000, sizeCalculation: (m) => m.size + 1, ttl, ...perf });
    this.names = new LRUCache({ max: opts.maxNames ?? 100_000, ttl, ...perf });
    this.dirs = new LRUCache({ max: opts.maxNames ?? 100_000, ttl, ...perf });
    this.attributes = new AttributeCache({
      ttlMs: ttl,
      ...(opts.attributeStore ? { persist: { store: opts.attributeStore, location: store.location } } : {}),
    });
  }

  get posixMetadata(): boolean {
    return this.opts.posixMetadata ?? true;
  }

  /** The children of a directory: from a fresh listing, else one paged delimited LIST (single-flight). */
  async list(dir: string): Promise<Map<string, Child>> {
    return this.fresh(dir) ?? this.startListing(dir);
  }

  /** A fresh listing, if there is one; near the end of its TTL it is listed again in the background. */
  private fresh(dir: string): Map<string, Child> | undefined {
    const cached = this.listings.get(dir);
    if (cached && !this.listing.has(dir) && this.listings.getRemainingTTL(dir) < this.ttlMs * REFRESH_AHEAD) {
      // A failure is not an error here: the listing expires as usual and the next reader lists (and fails) itself.
      this.startListing(dir).catch(() => undefined);
    }
    return cached;
  }

  private startListing(dir: string): Promise<Map<string, Child>> {
    let p = this.listing.get(dir);
    if (!p) {
      const state = { changed: false };
      this.changedWhileListing.set(dir, state);
      p = this.fetchListing(dir, state).finally(() => {
        this.listing.delete(dir);
        this.changedWhileListing.delete(dir);
      });
      this.listing.set(dir, p);
    }
    return p;
  }

  private async fetchListing(dir: string, state: { changed: boolean }): Promise<Map<string, Child>> {
    const prefix = dir === '' ? '' : `${dir}/`;
    const children = new Map<string, Child>();
    for await (const page of this.store.list(prefix, { delimiter: '/' })) {
      for (const o of page.objects) {
        const name = o.key.slice(prefix.length);
        if (name === '') continue; // this directory's own `dir/` marker
        if (this.skip(o.key, name)) continue;
        if (children.get(name)?.kind !== 'dir') children.set(name, { kind: 'file', ...metaOf(o) });
        else this.opts.onSkippedKey?.(o.key, HIDDEN_BY_DIR);
      }
      for (const p of page.prefixes) {
        const name = p.slice(prefix.length, -1);
        if (this.skip(p, name)) continue;
        // A directory shadows a file of the same name (`a` and `a/b` both exist): `a` is the directory.
        if (children.get(name)?.kind === 'file') this.opts.onSkippedKey?.(p.slice(0, -1), HIDDEN_BY_DIR);
        children.set(name, { kind: 'dir' });
      }
    }
    if (!state.changed) this.listings.set(dir, children);
    this.listedBefore.set(dir, children.size);
    return children;
  }

  private skip(key: string, name: string): boolean {
    const why = badName(name);
    if (why) this.opts.onSkippedKey?.(key, why);
    return why !== undefined;
  }

  /**
   * A directory's names in listing order, from a fresh listing only (never a request): what sibling prefetch
   * follows. Later changes of ours to the listing are not reflected (a removed name has no child).
   */
  listingOrder(dir: string): ListingOrder | undefined {
    const children = this.listings.get(dir);
    if (!children) return undefined;
    let order = this.orders.get(children);
    if (!order) {
      const names = [...children.keys()];
      order = { names, position: new Map(names.map((n, i) => [n, i])), children };
      this.orders.set(children, order);
    }
    return order;
  }

  /** One name in a directory: undefined when it does not exist. */
  async lookup(dir: string, name: string): Promise<Child | undefined> {
    const listed = this.fresh(dir);
    if (listed) return listed.get(name);
    const key = childKey(dir, name);
    const known = this.names.get(key);
    if (known !== undefined) return known.kind === 'missing' ? undefined : known;
    const before = this.listedBefore.get(dir);
    if (before !== undefined && before <= RELIST_MAX_ENTRIES) return (await this.list(dir)).get(name);
    let p = this.probing.get(key);
    if (!p) {
      p = this.probe(key).finally(() => this.probing.delete(key));
      this.probing.set(key, p);
    }
    return p;
  }

  /** HEAD key and LIST key/ together: a directory (implicit or with a marker) wins over an object. */
  private async probe(key: string): Promise<Child | undefined> {
    const [head, isDir] = await Promise.all([
      this.store.head(key).catch((err: unknown) => {
        if (isStorageError(err, 'NotFound')) return undefined;
        throw err;
      }),
      this.hasChildren(key),
    ]);
    if (head) this.attributes.set(key, metaOf(head), attributesOf(head), 'head');
    const child: Child | undefined = isDir ? { kind: 'dir' } : head ? { kind: 'file', ...metaOf(head) } : undefined;
    if (isDir && head) this.opts.onSkippedKey?.(key, HIDDEN_BY_DIR);
    this.names.set(key, child ?? MISSING);
    return child;
  }

  /** True if any key starts with `dir/` (its marker included). */
  async hasChildren(dir: string): Promise<boolean> {
    for await (const page of this.store.list(`${dir}/`, { maxKeys: 1 })) {
      return page.objects.length > 0 || page.prefixes.length > 0;
    }
    return false;
  }

  /** Drops what is known of a key (e.g. its ETag changed under a reader): the next lookup asks the bucket. */
  invalidate(key: string): void {
    const { dir } = splitKey(key);
    this.names.delete(key);
    this.dirs.delete(key);
    this.listings.delete(dir);
    this.changed(dir);
  }

  /** True if nothing but its own marker is under `dir/`: asks the bucket, never the cache (rmdir). */
  async isEmptyDir(dir: string): Promise<boolean> {
    for await (const page of this.store.list(`${dir}/`, { delimiter: '/', maxKeys: 2 })) {
      return page.prefixes.length === 0 && page.objects.every((o) => o.key === `${dir}/`);
    }
    return true;
  }

  // -------------------------------------------------- attributes (user metadata)

  /**
   * Makes sure a file's attributes are known, by a HEAD if needed (`force`: even with posixMetadata off, for a
   * change that must keep them). Returns the file as the HEAD found it (it may have changed since listed), or
   * undefined if it is gone.
   */
  async ensureFile(key: string, child: Child & { kind: 'file' }, force = false, byDirectory = true): Promise<(Child & { kind: 'file' }) | undefined> {
    if (this.attributes.get(key, child) || (!force && !this.posixMetadata)) return child;
    if (!force && byDirectory && this.plainDirs.has(splitKey(key).dir) && !this.attributes.versionChanged(key, child)) {
      this.attributes.set(key, child, { metadata: {} }, 'assumed');
      return child;
    }
    const info = await this.headOnce(key);
    if (!info) {
      this.removed(key);
      return undefined;
    }
    this.attributes.set(key, metaOf(info), attributesOf(info), 'head');
    const fresh = { kind: 'file' as const, ...metaOf(info) };
    if (fresh.etag !== child.etag || fresh.size !== child.size) this.putFile(key, fresh);
    return fresh;
  }

  /** A directory's attributes if known (its marker's metadata, or none). */
  dirAttributes(key: string): DirAttributes | undefined {
    return key === '' ? NO_MARKER : this.dirs.get(key);
  }

  /** Makes sure a directory's attributes are known (a HEAD of its marker); `force` as for ensureFile. */
  async ensureDir(key: string, force = false): Promise<DirAttributes> {
    const known = this.dirAttributes(key);
    if (known) return known;
    if (!force && !this.posixMetadata) return NO_MARKER;
    const info = await this.headOnce(`${key}/`);
    const d: DirAttributes = info ? { marker: true, ...attributesOf(info) } : NO_MARKER;
    this.dirs.set(key, d);
    return d;
  }

  setDirAttributes(key: string, d: DirAttributes): void {
    this.dirs.set(key, d);
  }

  /** Fetches the attributes a listing lacks: a HEAD per file or directory not known, HEADS_IN_FLIGHT at once. */
  async fill(dir: string, children: Map<string, Child>): Promise<void> {
    if (!this.posixMetadata) return;
    const todo: [string, Child][] = [];
    for (const [name, c] of children) {
      const key = childKey(dir, name);
      if (c.kind === 'dir' ? !this.dirs.has(key) : !this.attributes.get(key, c)) todo.push([key, c]);
    }
    // Objects that changed since we saw them are asked in any case: a change is what sets attributes.
    const changed: [string, Child][] = [];
    const unseen: [string, Child][] = [];
    for (const e of todo) (e[1].kind === 'file' && this.attributes.versionChanged(e[0], e[1]) ? changed : unseen).push(e);
    const sample = unseen.slice(0, PLAIN_SAMPLE);
    await this.ensureAll([...changed, ...sample]);
    const rest = unseen.slice(sample.length);
    if (rest.length === 0) return;
    if (sample.some(([key, c]) => this.hasPosixAttributes(key, c))) {
      this.plainDirs.delete(dir);
      await this.ensureAll(rest);
      return;
    }
    this.plainDirs.set(dir, true);
    for (const [key, c] of rest) {
      if (c.kind === 'dir') this.dirs.set(key, NO_MARKER);
      else this.attributes.set(key, c, { metadata: {} }, 'assumed');
    }
  }

  private async ensureAll(entries: [string, Child][]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const [key, c] = entries[next++]!;
        if (c.kind === 'dir') await this.ensureDir(key);
        else await this.ensureFile(key, c, false, false); // a sample or a changed object: asked, whatever the directory
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEADS_IN_FLIGHT, entries.length) }, worker));
  }

  /** Whether what a HEAD found for this entry carries POSIX attributes (mode, owner or times). */
  private hasPosixAttributes(key: string, c: Child): boolean {
    const metadata = c.kind === 'dir' ? this.dirs.get(key)?.metadata : this.attributes.get(key, c)?.metadata;
    return Object.keys(decodePosix(metadata)).length > 0;
  }

  /** One HEAD per key at a time; undefined when there is no such object. */
  private headOnce(key: string): Promise<ObjectInfo | undefined> {
    let p = this.heading.get(key) as Promise<ObjectInfo | undefined> | undefined;
    if (!p) {
      p = this.store
        .head(key)
        .catch((err: unknown) => {
          if (isStorageError(err, 'NotFound')) return undefined;
          throw err;
        })
        .finally(() => this.heading.delete(key));
      this.heading.set(key, p);
    }
    return p;
  }

  // -------------------------------------------------- our own changes, visible at once

  putFile(key: string, meta: ObjectMeta): void {
    this.set(key, { kind: 'file', ...meta });
  }

  putDir(key: string): void {
    this.set(key, { kind: 'dir' });
  }

  /**
   * A directory we just created where nothing was (no key under `key/`): its listing is known to be empty, so
   * the names created in it next (`cp -r`, `mkdir -p a/b`) are answered here instead of one HEAD + LIST each.
   */
  createdDir(key: string): void {
    this.putDir(key);
    this.listings.set(key, new Map());
    this.changed(key);
  }

  removed(key: string): void {
    const { dir, name } = splitKey(key);
    this.attributes.delete(key);
    this.dirs.delete(key);
    this.names.set(key, MISSING);
    this.listings.get(dir, { updateAgeOnGet: false })?.delete(name);
    this.listings.delete(key); // a removed directory's own listing
    this.changed(dir);
    this.changed(key);
  }

  private set(key: string, child: Child): void {
    const { dir, name } = splitKey(key);
    this.names.set(key, child);
    this.listings.get(dir, { updateAgeOnGet: false })?.set(name, child);
    this.changed(dir);
  }

  /** A name in `dir` changed: a listing of it in flight may predate that, so it will not be kept. */
  private changed(dir: string): void {
    const state = this.changedWhileListing.get(dir);
    if (state) state.changed = true;
  }
}
