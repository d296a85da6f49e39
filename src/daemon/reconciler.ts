// Turns "what settings ask for" into "what is mounted", one entry at a time, through an injected target
// (the filesystem namespace). An entry whose new configuration fails to resolve (unknown dataset, version or
// tag, missing secret) keeps serving what it served before: one bad entry never takes down a good mount.
// Applies are serialized; a burst of edits coalesces into one apply of the newest settings.
import { SettingsError } from '../settings/errors.js';
import { sameEntry } from '../settings/diff.js';
import { locate, type Settings } from '../settings/parse.js';
import type { SettingsEntry } from '../settings/schema.js';

/** A public dataset entry (mnist, coco, …): not from settings.yaml, but mounted the same way. */
export interface PublicEntry {
  type: 'public';
  dataset: string;
}

export type MountEntry = SettingsEntry | PublicEntry;

export interface Resolution<P> {
  /** What the ref resolved to, for status: `dst123abc:fo5rp4m`, `s3://bucket/prefix`, `embedded:mnist`. */
  resolved: string;
  /** Equal identity = same bytes served: no swap needed (e.g. `latest` still names the same version). */
  identity: string;
  /** What the view needs: a manifest and ids, or store options with resolved credentials. */
  payload: P;
}

export interface ResolvedMount<P> extends Resolution<P> {
  name: string;
  entry: MountEntry;
}

/** Implemented by the wiring over src/fs: one call per entry, each may fail on its own. */
export interface MountTarget<P> {
  mount(name: string, mount: ResolvedMount<P>): Promise<void> | void;
  /** Atomically replace the view of a mounted entry: open files keep their old version. */
  swap(name: string, mount: ResolvedMount<P>): Promise<void> | void;
  unmount(name: string): Promise<void> | void;
}

export interface ResolveContext {
  /** The settings the entry came from (absent for public datasets): for error positions and secrets. */
  settings: Settings | undefined;
  /** True on SIGHUP / `gradient mount --refresh`: tags and `latest` must be looked up again. */
  refresh: boolean;
}

export type EntryResolver<P> = (name: string, entry: MountEntry, ctx: ResolveContext) => Promise<Resolution<P>>;

/** A resolution failure that can say which field was at fault (e.g. `version` for an unknown tag). */
export class EntryError extends Error {
  override readonly name = 'EntryError';
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export type EntryState = 'ok' | 'stale' | 'error';

export interface EntryStatus {
  name: string;
  type: MountEntry['type'];
  /** The ref as configured: `dst123abc:latest`, `s3://bucket/prefix`, `public:mnist`. */
  ref: string;
  /** What is being served right now (null when nothing is). */
  resolved: string | null;
  /** ok = serving the configured ref; stale = the new config failed, the previous one is still served; error = nothing served. */
  state: EntryState;
  lastError: string | null;
  lastErrorAt: string | null;
  /** When the currently served resolution was mounted. */
  since: string | null;
}

export interface ApplyResult {
  mounted: string[];
  swapped: string[];
  unmounted: string[];
  failed: string[];
  unchanged: string[];
}

/**
 * What an entry serves, without the payload: the target builds its view from the payload and the payload is
 * not kept (a dataset's is its whole parsed manifest, a million objects for a million files; the view holds
 * a compact copy).
 */
interface Served {
  resolved: string;
  identity: string;
}

interface Slot {
  desired: MountEntry;
  served: Served | undefined;
  servedSince: Date | undefined;
  failed: { message: string; at: Date } | undefined;
  /** Desired no more, but unmount failed: retried on the next apply. */
  removing: boolean;
}

export function refOf(entry: MountEntry): string {
  switch (entry.type) {
    case 'dataset':
      return `${entry.id}:${entry.version}`;
    case 's3':
      return entry.url + (entry.versionId ? `?versionId=${entry.versionId}` : entry.etag ? `#etag=${entry.etag}` : '');
    case 'public':
      return `public:${entry.dataset}`;
  }
}

/** Entries whose target can move without an edit: tags and `latest` (and s3 credentials behind secret refs). */
function canMove(entry: MountEntry): boolean {
  return entry.type !== 'public';
}

function sameDesired(a: MountEntry, b: MountEntry): boolean {
  if (a.type === 'public' || b.type === 'public') return a.type === b.type && (a as PublicEntry).dataset === (b as PublicEntry).dataset;
  return sameEntry(a, b);
}

export interface ReconcilerOptions<P> {
  target: MountTarget<P>;
  resolve: EntryResolver<P>;
  now?: () => Date;
}

export class Reconciler<P> {
  private readonly slots = new Map<string, Slot>();
  private order: string[] = [];
  private running: Promise<ApplyResult> | undefined;
  private pending: { desired: ReadonlyMap<string, MountEntry>; settings: Settings | undefined; refresh: boolean } | undefined;
  private pendingWaiters: Array<{ resolve: (r: ApplyResult) => void; reject: (e: unknown) => void }> = [];
  private lastDesired: { desired: ReadonlyMap<string, MountEntry>; settings: Settings | undefined } | undefined;
  private readonly now: () => Date;

  constructor(private readonly opts: ReconcilerOptions<P>) {
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Makes the mounts match `desired`. Resolves once this (or a newer, coalesced) apply is done.
   * Never rejects for an entry's failure: those are recorded per entry (see status()).
   */
  apply(desired: ReadonlyMap<string, MountEntry>, settings?: Settings, opts: { refresh?: boolean } = {}): Promise<ApplyResult> {
    const refresh = (opts.refresh ?? false) || (this.pending?.refresh ?? false);
    this.pending = { desired, settings, refresh };
    return new Promise((resolve, reject) => {
      this.pendingWaiters.push({ resolve, reject });
      this.pump();
    });
  }

  /** Re-resolves every movable entry of the last applied settings (SIGHUP, `gradient mount --refresh`). */
  refresh(): Promise<ApplyResult> {
    const last = this.pending ?? this.lastDesired;
    // Nothing applied yet: refreshing "nothing" must not be mistaken for "unmount everything".
    if (!last) return Promise.resolve({ mounted: [], swapped: [], unmounted: [], failed: [], unchanged: [] });
    return this.apply(last.desired, last.settings, { refresh: true });
  }

  /** Per-entry state for `gradient status`, in settings order, then entries still being removed. */
  status(): EntryStatus[] {
    const names = [...this.order, ...[...this.slots.keys()].filter((n) => !this.order.includes(n))];
    const out: EntryStatus[] = [];
    for (const name of names) {
      const slot = this.slots.get(name);
      if (!slot) continue;
      out.push({
        name,
        type: slot.desired.type,
        ref: refOf(slot.desired),
        resolved: slot.served?.resolved ?? null,
        state: slot.failed ? (slot.served ? 'stale' : 'error') : 'ok',
        lastError: slot.failed?.message ?? null,
        lastErrorAt: slot.failed?.at.toISOString() ?? null,
        since: slot.servedSince?.toISOString() ?? null,
      });
    }
    return out;
  }

  /** Unmounts everything (daemon stop). */
  async unmountAll(): Promise<void> {
    await this.apply(new Map(), undefined);
  }

  private pump(): void {
    if (this.running || !this.pending) return;
    const job = this.pending;
    const waiters = this.pendingWaiters;
    this.pending = undefined;
    this.pendingWaiters = [];
    this.running = this.run(job.desired, job.settings, job.refresh);
    this.running.then(
      (r) => waiters.forEach((w) => w.resolve(r)),
      (e: unknown) => waiters.forEach((w) => w.reject(e)),
    ).finally(() => {
      this.running = undefined;
      this.pump();
    });
  }

  private async run(desired: ReadonlyMap<string, MountEntry>, settings: Settings | undefined, refresh: boolean): Promise<ApplyResult> {
    this.lastDesired = { desired, settings };
    this.order = [...desired.keys()];
    const result: ApplyResult = { mounted: [], swapped: [], unmounted: [], failed: [], unchanged: [] };
    const removals = [...this.slots.keys()].filter((name) => !desired.has(name));
    const work = [
      ...removals.map((name) => this.remove(name, result)),
      ...[...desired].map(([name, entry]) => this.reconcileEntry(name, entry, settings, refresh, result)),
    ];
    await Promise.all(work);
    return result;
  }

  private async remove(name: string, result: ApplyResult): Promise<void> {
    const slot = this.slots.get(name)!;
    if (!slot.served) {
      this.slots.delete(name);
      return;
    }
    slot.removing = true;
    try {
      await this.opts.target.unmount(name);
      this.slots.delete(name);
      result.unmounted.push(name);
    } catch (err) {
      slot.failed = { message: `${name}: cannot unmount: ${errorText(err)}`, at: this.now() };
      result.failed.push(name);
    }
  }

  private async reconcileEntry(
    name: string,
    entry: MountEntry,
    settings: Settings | undefined,
    refresh: boolean,
    result: ApplyResult,
  ): Promise<void> {
    const existing = this.slots.get(name);
    const changed = !existing || !sameDesired(existing.desired, entry) || existing.removing;
    const retry = existing?.failed !== undefined;
    if (existing && !changed && !retry && !(refresh && canMove(entry))) {
      result.unchanged.push(name);
      return;
    }
    // The slot shows the previous ref and state until this resolution settles: status never pairs the new
    // ref with the old outcome.
    const slot: Slot = existing ?? { desired: entry, served: undefined, servedSince: undefined, failed: undefined, removing: false };
    const settle = (failed: Slot['failed']) => {
      slot.desired = entry;
      slot.removing = false;
      slot.failed = failed;
      this.slots.set(name, slot);
    };

    let resolution: Resolution<P>;
    try {
      resolution = await this.opts.resolve(name, entry, { settings, refresh });
    } catch (err) {
      settle({ message: describeFailure(err, name, settings), at: this.now() });
      result.failed.push(name);
      return;
    }
    const next: ResolvedMount<P> = { name, entry, ...resolution };
    try {
      if (!slot.served) {
        await this.opts.target.mount(name, next);
        result.mounted.push(name);
      } else if (slot.served.identity !== next.identity) {
        await this.opts.target.swap(name, next);
        result.swapped.push(name);
      } else {
        result.unchanged.push(name);
        slot.served = { resolved: next.resolved, identity: next.identity };
        settle(undefined);
        return;
      }
    } catch (err) {
      // An EntryError from the target (a bucket that refuses our credentials) points at its field too.
      const field = err instanceof EntryError ? err.field : undefined;
      const where = settings && entry.type !== 'public' && settings.entries.has(name) ? locate(settings, name, field) : name;
      settle({ message: `${where}: cannot mount: ${errorText(err)}`, at: this.now() });
      result.failed.push(name);
      return;
    }
    slot.served = { resolved: next.resolved, identity: next.identity };
    slot.servedSince = this.now();
    settle(undefined);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `settings.yaml:4:12: quarterly-reports.version: unknown tag "v9"` — positions come from the settings. */
function describeFailure(err: unknown, name: string, settings: Settings | undefined): string {
  if (err instanceof SettingsError) return err.message; // already positioned (e.g. a missing secret)
  const field = err instanceof EntryError ? err.field : undefined;
  const where = settings?.entries.has(name) ? locate(settings, name, field) : field ? `${name}.${field}` : name;
  return `${where}: ${errorText(err)}`;
}
