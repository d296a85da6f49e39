// Sibling prefetch: a reader that opens a directory's files in listing order (a training loop over a
// directory, `cat dir/*`, a copy; often several threads at once, so slightly out of order) waits for one GET
// per file at each open. Once opens follow that order, the next small siblings are fetched whole into the
// cache ahead of the reader, within a window of files and bytes past the furthest file opened; an open
// elsewhere in the directory (a shuffled epoch) breaks the pattern and stops it. Views say what their
// directories hold in which order; the cache decides whether a file can be fetched now.

/**
 * What a request to fetch a file ahead of its reader did: started; nothing to do (`present`: cached or on
 * its way; `skipped`: not a file the cache fetches whole); or `busy`: no idle fetch capacity now.
 */
export type PrefetchResult = 'started' | 'present' | 'skipped' | 'busy';
/** A file of a directory, by its position in listing order. */
export interface Sibling {
  size: number;
  /** Starts fetching the file whole into the cache, if it can (see PrefetchResult). */
  prefetch(): PrefetchResult;
}

export interface SiblingPrefetchOptions {
  /** Files fetched ahead of the furthest file opened. */
  aheadFiles: number;
  /** Bytes of those files. */
  aheadBytes: number;
  /** In-order opens before prefetching starts: two close opens in a shuffled order are chance. */
  minRun: number;
  /** How far (in positions) an open may land from the furthest one and still continue the pattern. */
  tolerance: number;
  /** Directories whose pattern is followed (least recently opened forgotten first). */
  maxDirs: number;
}

export const SIBLING_PREFETCH_DEFAULTS: SiblingPrefetchOptions = {
  // 32 files / 8 MiB: at ~1000 small files/s and a few ms per GET, the reader's next dozen files are in
  // flight or cached; 16 reader threads in order still find theirs ready.
  aheadFiles: 32,
  aheadBytes: 8 * 1024 * 1024,
  minRun: 3,
  // About the number of reader threads: 16 in order land within 16 of the furthest; in a shuffle, two
  // opens in a row that close happen once in ~10^5 positions of a 10k-file directory.
  tolerance: 16,
  maxDirs: 16,
};

interface Pattern {
  /** The furthest position opened in this run. */
  front: number;
  /** In-order opens so far. */
  run: number;
  /** Positions before this have been prefetched, or did not need it. */
  next: number;
  /** Files this pattern started fetching past the front, in position order. */
  ahead: { position: number; size: number }[];
}

export class SiblingPrefetch<Dir> {
  private readonly dirs = new Map<Dir, Pattern>();
  private readonly opts: SiblingPrefetchOptions;

  constructor(opts: Partial<SiblingPrefetchOptions> = {}) {
    this.opts = { ...SIBLING_PREFETCH_DEFAULTS, ...opts };
  }

  /**
   * The file at `position` of `dir` (listing order) was opened. `at(i)` is the directory's file at position
   * i: undefined past the end or for a subdirectory.
   */
  opened(dir: Dir, position: number, count: number, at: (i: number) => Sibling | undefined): void {
    const o = this.opts;
    let p = this.dirs.get(dir);
    this.dirs.delete(dir); // most recently opened last
    if (p && position >= p.front - o.tolerance && position <= p.front + o.tolerance) {
      p.run++;
      p.front = Math.max(p.front, position);
    } else {
      p = { front: position, run: 1, next: position + 1, ahead: [] };
    }
    this.dirs.set(dir, p);
    if (this.dirs.size > o.maxDirs) this.dirs.delete(this.dirs.keys().next().value as Dir);
    if (p.run < o.minRun) return;
    // What the reader has passed leaves the window; the rest is fetched or on its way.
    while (p.ahead.length > 0 && p.ahead[0]!.position <= p.front) p.ahead.shift();
    let bytes = 0;
    for (const a of p.ahead) bytes += a.size;
    const end = Math.min(count, p.front + 1 + o.aheadFiles);
    // Where the window is full or the cache busy, the next open carries on from here.
    for (p.next = Math.max(p.next, p.front + 1); p.next < end; p.next++) {
      const s = at(p.next);
      if (!s) continue;
      if (bytes + s.size > o.aheadBytes) return;
      const started = s.prefetch();
      if (started === 'busy') return;
      if (started === 'started') {
        p.ahead.push({ position: p.next, size: s.size });
        bytes += s.size;
      }
    }
  }
}
