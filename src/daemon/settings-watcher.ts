// Watches settings.yaml and hands out each new valid version of it. Watches the *directory*, not the
// file: editors that save by writing a temp file and renaming it over the original replace the inode, and a
// watch on the old inode would go silent. Bursts of events (truncate + write, unlink + add) are debounced
// into one load. A bad edit is reported and the last good settings stay in force until the file is fixed.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { isSettingsError, SettingsError } from '../settings/errors.js';
import { loadSettings, type Settings } from '../settings/parse.js';

export interface SettingsWatcherOptions {
  file: string;
  /** Quiet time after the last event before the file is read. */
  debounceMs?: number;
  /** How often to look for the settings directory while it does not exist. */
  dirPollMs?: number;
  /** A valid edit (also the first load). */
  onSettings: (settings: Settings) => void;
  /** A bad edit, a deleted file, or an unreadable one: the last good settings remain current. */
  onError: (error: SettingsError) => void;
}

const DEFAULTS = { debounceMs: 100, dirPollMs: 1000 };

export class SettingsWatcher {
  private readonly file: string;
  private readonly dir: string;
  private readonly base: string;
  private readonly debounceMs: number;
  private readonly dirPollMs: number;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dirPoll: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private reloadAgain = false;
  private closed = false;
  private good: Settings | undefined;
  private fileSeen = false;
  private error: SettingsError | undefined;

  constructor(private readonly opts: SettingsWatcherOptions) {
    this.file = path.resolve(opts.file);
    this.dir = path.dirname(this.file);
    this.base = path.basename(this.file);
    this.debounceMs = opts.debounceMs ?? DEFAULTS.debounceMs;
    this.dirPollMs = opts.dirPollMs ?? DEFAULTS.dirPollMs;
  }

  /** The settings in force: the last ones that parsed and validated. */
  get current(): Settings | undefined {
    return this.good;
  }

  /** The error from the latest load, cleared by the next good one. */
  get lastError(): SettingsError | undefined {
    return this.error;
  }

  /**
   * Loads the file once and starts watching. A file that does not exist yet counts as empty settings
   * (a fresh notebook has none: public datasets still mount); a file that exists but is bad is reported.
   */
  async start(): Promise<void> {
    if (existsSync(this.file)) {
      await this.reload();
    } else {
      this.accept({ file: this.file, entries: new Map(), positions: new Map() });
    }
    await this.watchDir();
  }

  /** Reads the file now (also used by SIGHUP / refresh); concurrent calls coalesce. */
  async reload(): Promise<void> {
    if (this.loading) {
      this.reloadAgain = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.reloadAgain = false;
        await this.loadOnce();
      } while (this.reloadAgain && !this.closed);
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.dirPoll);
    await this.watcher?.close();
    await this.loading;
  }

  private async loadOnce(): Promise<void> {
    // Never had a file: still "no entries", not an error (a refresh must not turn a fresh notebook red).
    // Once a file was seen, its disappearance is an error and the last good settings stay.
    const exists = existsSync(this.file);
    if (!exists && !this.fileSeen) return;
    if (exists) this.fileSeen = true;
    try {
      const settings = await loadSettings(this.file);
      if (!this.closed) this.accept(settings);
    } catch (err) {
      if (this.closed) return;
      const e = isSettingsError(err)
        ? err
        : new SettingsError('SETTINGS_READ', [{ file: this.file, line: 0, col: 0, field: '', message: 'cannot load the file' }]);
      this.error = e;
      this.opts.onError(e);
    }
  }

  private accept(settings: Settings): void {
    this.good = settings;
    this.error = undefined;
    this.opts.onSettings(settings);
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), this.debounceMs);
  }

  /**
   * The file itself, or `..data`: Kubernetes ConfigMap/Secret volumes expose `settings.yaml` as a symlink
   * into `..data`, and update it by swapping the `..data` symlink, so the file's own name never sees an event.
   */
  private relevant(p: string): boolean {
    const name = path.basename(p);
    return name === this.base || name === '..data';
  }

  private async watchDir(): Promise<void> {
    if (this.closed) return;
    if (!existsSync(this.dir)) {
      // chokidar cannot watch a directory that is not there yet (e.g. no .gradient/ in a fresh notebook).
      this.dirPoll = setInterval(() => {
        if (!existsSync(this.dir)) return;
        clearInterval(this.dirPoll);
        void this.watchDir().then(() => this.schedule());
      }, this.dirPollMs);
      this.dirPoll.unref();
      return;
    }
    const watcher = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      // Our own debounce handles unlink+add bursts; chokidar's atomic mode would delay events further.
      atomic: false,
      ignored: (p: string) => p !== this.dir && !this.relevant(p),
    });
    this.watcher = watcher;
    watcher.on('all', (_event, p) => {
      if (this.relevant(p)) this.schedule();
    });
    watcher.on('error', () => this.schedule());
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  }
}
