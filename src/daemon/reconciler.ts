// Turns "what settings ask for" into "what is mounted", one entry at a time, through an injected target
// (the filesystem namespace). An entry whose new configuration fails to resolve (unknown dataset, version or
// tag, missing secret) keeps serving what it served before: one bad entry never takes down a good mount.
// Each entry has a lane of its own: its work is serialized and a burst of edits coalesces into one run of the
// newest settings, while other entries go ahead. A bucket that takes seconds to fail never holds up the
// version switch of a dataset beside it.
import { SettingsError } from '../settings/errors.js';
import { sameEntry } from '../settings/diff.js';
import { fieldPath, locate, type Settings } from '../settings/parse.js';
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

/**
 * Why an entry failed, with its position in the settings file it came from, and without: once that file has
 * been replaced by a bad one, its positions point at the wrong lines of what is on disk.
 */
interface Failure {
  located: string;
  plain: string;
  at: Date;
}

interface Slot {
  desired: MountEntry;
  served: Served | undefined;
  servedSince: Date | undefined;
  failed: Failure | undefined;
  /** Desired no more, but unmount failed: retried on the next apply. */
  removing: boolean;
}

type Outcome = keyof ApplyResult;

/** One entry's requested state: `entry` undefined = remove it. */
interface Job {
  entry: MountEntry | undefined;
  settings: Settings | undefined;
  refresh: boolean;
  /** Every apply that waits for this entry: each gets the outcome. */
  results: ApplyResult[];
  done: Deferred;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** An entry's work in progress, and the one job waiting behind it (newer requests merge into it). */
interface Lane {
  next: Job | undefined;
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

const emptyResult = (): ApplyResult => ({ mounted: [], swapped: [], unmounted: [], failed: [], unchanged: [] });

export interface ReconcilerOptions<P> {
  target: MountTarget<P>;
  resolve: EntryResolver<P>;
  now?: () => Date;
}

export class Reconciler<P> {
  private readonly slots = new Map<string, Slot>();
  private readonly lanes = new Map<string, Lane>();
  private order: string[] = [];
  private lastDesired: { desired: ReadonlyMap<string, MountEntry>; settings: Settings | undefined } | undefined;
  private readonly now: () => Date;

  constructor(private readonly opts: ReconcilerOptions<P>) {
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Makes the mounts match `desired`. Resolves once every entry has reached this (or a newer, coalesced)
   * state; each entry is applied as soon as its own resolution settles, whatever the others do.
   * Never rejects for an entry's failure: those are recorded per entry (see status()).
   */
  apply(desired: ReadonlyMap<string, MountEntry>, settings?: Settings, opts: { refresh?: boolean } = {}): Promise<ApplyResult> {
    this.lastDesired = { desired, settings };
    this.order = [...desired.keys()];
    const result = emptyResult();
    const names = new Set([...desired.keys(), ...this.slots.keys(), ...this.lanes.keys()]);
    const waits = [...names].map((name) =>
      this.enqueue(name, { entry: desired.get(name), settings, refresh: opts.refresh ?? false }, result),
    );
    return Promise.all(waits).then(() => result);
  }

  /** Re-resolves every movable entry of the newest settings (SIGHUP, `gradient mount --refresh`). */
  refresh(): Promise<ApplyResult> {
    const last = this.lastDesired;
    // Nothing applied yet: refreshing "nothing" must not be mistaken for "unmount everything".
    if (!last) return Promise.resolve(emptyResult());
    return this.apply(last.desired, last.settings, { refresh: true });
  }

  /**
   * Per-entry state for `gradient status`, in settings order, then entries still being removed. Without
   * `positions` (the settings file on disk is not the one in force), errors name entry and field only.
   */
  status(opts: { positions?: boolean } = {}): EntryStatus[] {
    const positions = opts.positions ?? true;
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
        lastError: slot.failed ? (positions ? slot.failed.located : slot.failed.plain) : null,
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

  /** Runs the request now if the entry is idle, else merges it into the job waiting behind the current one. */
  private enqueue(name: string, req: Pick<Job, 'entry' | 'settings' | 'refresh'>, result: ApplyResult): Promise<void> {
    const lane = this.lanes.get(name);
    if (lane) {
      const next = (lane.next ??= { ...req, results: [], done: deferred() });
      next.entry = req.entry;
      next.settings = req.settings;
      next.refresh ||= req.refresh;
      next.results.push(result);
      return next.done.promise;
    }
    const job: Job = { ...req, results: [result], done: deferred() };
    const fresh: Lane = { next: undefined };
    this.lanes.set(name, fresh);
    void this.drive(name, fresh, job);
    return job.done.promise;
  }

  private async drive(name: string, lane: Lane, first: Job): Promise<void> {
    let job: Job | undefined = first;
    while (job) {
      const outcome = job.entry ? await this.reconcileEntry(name, job.entry, job.settings, job.refresh) : await this.remove(name);
      if (outcome) for (const r of job.results) r[outcome].push(name);
      job.done.resolve();
      job = lane.next;
      lane.next = undefined;
    }
    this.lanes.delete(name);
  }

  private async remove(name: string): Promise<Outcome | undefined> {
    const slot = this.slots.get(name);
    if (!slot) return undefined;
    if (!slot.served) {
      this.slots.delete(name);
      return undefined;
    }
    slot.removing = true;
    try {
      await this.opts.target.unmount(name);
      this.slots.delete(name);
      return 'unmounted';
    } catch (err) {
      const text = `${name}: cannot unmount: ${errorText(err)}`;
      slot.failed = { located: text, plain: text, at: this.now() };
      return 'failed';
    }
  }

  private async reconcileEntry(name: string, entry: MountEntry, settings: Settings | undefined, refresh: boolean): Promise<Outcome> {
    const existing = this.slots.get(name);
    const changed = !existing || !sameDesired(existing.desired, entry) || existing.removing;
    const retry = existing?.failed !== undefined;
    if (existing && !changed && !retry && !(refresh && canMove(entry))) return 'unchanged';
    // The slot shows the previous ref and state until this resolution settles: status never pairs the new
    // ref with the old outcome.
    const slot: Slot = existing ?? { desired: entry, served: undefined, servedSince: undefined, failed: undefined, removing: false };
    const settle = (failed: Failure | undefined) => {
      slot.desired = entry;
      slot.removing = false;
      slot.failed = failed;
      this.slots.set(name, slot);
    };

    let resolution: Resolution<P>;
    try {
      resolution = await this.opts.resolve(name, entry, { settings, refresh });
    } catch (err) {
      settle({ ...describeFailure(err, name, settings), at: this.now() });
      return 'failed';
    }
    const next: ResolvedMount<P> = { name, entry, ...resolution };
    let outcome: Outcome;
    try {
      if (!slot.served) {
        await this.opts.target.mount(name, next);
        outcome = 'mounted';
      } else if (slot.served.identity !== next.identity) {
        await this.opts.target.swap(name, next);
        outcome = 'swapped';
      } else {
        slot.served = { resolved: next.resolved, identity: next.identity };
        settle(undefined);
        return 'unchanged';
      }
    } catch (err) {
      // An EntryError from the target (a bucket that refuses our credentials) points at its field too.
      const field = err instanceof EntryError ? err.field : undefined;
      const where = settings && entry.type !== 'public' && settings.entries.has(name) ? locate(settings, name, field) : name;
      const what = `cannot mount: ${errorText(err)}`;
      settle({ located: `${where}: ${what}`, plain: `${fieldPath(name, field)}: ${what}`, at: this.now() });
      return 'failed';
    }
    slot.served = { resolved: next.resolved, identity: next.identity };
    slot.servedSince = this.now();
    settle(undefined);
    return outcome;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `settings.yaml:4:12: quarterly-reports.version: unknown tag "v9"` — positions come from the settings. */
function describeFailure(err: unknown, name: string, settings: Settings | undefined): Omit<Failure, 'at'> {
  if (err instanceof SettingsError) {
    // Already positioned (e.g. a missing secret).
    return { located: err.message, plain: err.issues.map((i) => (i.field ? `${i.field}: ${i.message}` : i.message)).join('\n') };
  }
  const field = err instanceof EntryError ? err.field : undefined;
  const plain = `${fieldPath(name, field)}: ${errorText(err)}`;
  return { located: settings?.entries.has(name) ? `${locate(settings, name, field)}: ${errorText(err)}` : plain, plain };
}
