// Objects' POSIX attributes learnt by HEAD (src/fs/bucket/attribute-cache.ts), kept in the cache's SQLite index
// so that a remount does not HEAD every object of a bucket again. One small table, keyed by (location, key),
// holding the version the answer belongs to; writes are batched into one transaction per flush (a listing
// of 10k objects learns 10k answers at once), reads go to memory first, then to SQLite.
import type Database from 'better-sqlite3';

/** What is remembered of one object (structurally src/fs/bucket's AttributeRecord). */
export interface StoredAttributes {
  etag: string;
  size: number;
  lastModifiedSec?: number;
  metadata: Record<string, string>;
  contentType?: string;
}

/** Rows kept; past it the oldest written go (an answer not kept only costs one HEAD). */
const MAX_ROWS = 1_000_000;
const FLUSH_MS = 200;

interface Row {
  etag: string;
  size: number;
  last_modified: number | null;
  metadata: string;
  content_type: string | null;
}

export class AttributeIndex {
  /** Writes not yet in SQLite: a record, or null for a deletion. */
  private readonly pending = new Map<string, { location: string; key: string; record: StoredAttributes | null }>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly getStmt: Database.Statement;
  private readonly putStmt: Database.Statement;
  private readonly deleteStmt: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private readonly onError: (err: unknown) => void,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS object_attributes (
      location TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL,
      last_modified INTEGER, metadata TEXT NOT NULL, content_type TEXT, PRIMARY KEY (location, key))`);
    this.getStmt = db.prepare('SELECT etag, size, last_modified, metadata, content_type FROM object_attributes WHERE location = ? AND key = ?');
    this.putStmt = db.prepare('INSERT OR REPLACE INTO object_attributes VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.deleteStmt = db.prepare('DELETE FROM object_attributes WHERE location = ? AND key = ?');
  }

  get(location: string, key: string): StoredAttributes | undefined {
    if (this.closed) return undefined;
    const p = this.pending.get(id(location, key));
    if (p) return p.record ?? undefined;
    let row: Row | undefined;
    try {
      row = this.getStmt.get(location, key) as Row | undefined;
    } catch (err) {
      this.onError(err);
      return undefined;
    }
    if (!row) return undefined;
    let metadata: Record<string, string>;
    try {
      metadata = JSON.parse(row.metadata) as Record<string, string>;
    } catch {
      return undefined;
    }
    const r: StoredAttributes = { etag: row.etag, size: row.size, metadata };
    if (row.last_modified !== null) r.lastModifiedSec = row.last_modified;
    if (row.content_type !== null) r.contentType = row.content_type;
    return r;
  }

  put(location: string, key: string, record: StoredAttributes): void {
    this.pending.set(id(location, key), { location, key, record });
    this.schedule();
  }

  delete(location: string, key: string): void {
    this.pending.set(id(location, key), { location, key, record: null });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /** Writes what is pending in one transaction (also at close). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    try {
      this.db.transaction(() => {
        for (const { location, key, record: r } of batch) {
          if (r) this.putStmt.run(location, key, r.etag, r.size, r.lastModifiedSec ?? null, JSON.stringify(r.metadata), r.contentType ?? null);
          else this.deleteStmt.run(location, key);
        }
        const { n } = this.db.prepare('SELECT COUNT(*) AS n FROM object_attributes').get() as { n: number };
        if (n > MAX_ROWS) {
          this.db.prepare('DELETE FROM object_attributes WHERE rowid IN (SELECT rowid FROM object_attributes ORDER BY rowid LIMIT ?)').run(n - MAX_ROWS);
        }
      })();
    } catch (err) {
      this.onError(err); // lost answers cost a HEAD each, nothing more
    }
  }

  /** Writes what is pending; later calls find nothing and keep nothing (the database closes). */
  close(): void {
    this.flush();
    this.closed = true;
  }
}

function id(location: string, key: string): string {
  return `${location}\0${key}`;
}
