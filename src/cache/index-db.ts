// The persistent index (SQLite, WAL): one row per entry with its identity, size, durable block runs, bytes
// on disk and last access, plus lifetime counters for `gradient cache stats`. Rows are written in batches by
// the cache's flusher, only after the data they describe was fsynced, so the index never claims bytes that a
// crash could have lost.
import Database from 'better-sqlite3';
import { AttributeIndex } from './attribute-index.js';
import { CacheError, isNoSpaceErrno } from './errors.js';

const SCHEMA_VERSION = 1;
const WAL_CHECKPOINT_PAGES = 128;
/** Headroom the cache keeps for the WAL between two measurements (checkpointed at 128 pages ≈ 512 KiB). */
export const WAL_MAX_BYTES = 1024 * 1024;

export interface EntryRow {
  id: string;
  /** Canonical identity (for `stats` and debugging only; lookups use id). */
  identity: string;
  size: number;
  blockSize: number;
  /** encodeRuns() of the durable blocks. */
  blocks: string;
  diskBytes: number;
  complete: boolean;
  lastAccess: number;
}

export type CounterName =
  | 'hits'
  | 'misses'
  | 'bytesFetched'
  | 'bytesFromCache'
  | 'bytesUncached'
  | 'evictions'
  | 'evictedBytes';

/** Every counter at zero: the starting point of a process, a fresh index, or an absent one. */
export function zeroCounters(): Record<CounterName, number> {
  return { hits: 0, misses: 0, bytesFetched: 0, bytesFromCache: 0, bytesUncached: 0, evictions: 0, evictedBytes: 0 };
}

interface RawRow {
  id: string;
  identity: string;
  size: number;
  block_size: number;
  blocks: string;
  disk_bytes: number;
  complete: number;
  last_access: number;
}

export class IndexDb {
  private readonly db: Database.Database;
  private readonly upsertStmt: Database.Statement;
  private readonly deleteStmt: Database.Statement;
  private readonly touchStmt: Database.Statement;
  private readonly counterStmt: Database.Statement;

  constructor(
    readonly file: string,
    opts: { readonly?: boolean } = {},
  ) {
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
      this.db = db;
      if (!opts.readonly) {
        this.db.pragma('journal_mode = WAL');
        // NORMAL in WAL mode: a process crash loses nothing; a power loss may lose the last batches, which
        // only makes the index under-report blocks (never over-report): they are refetched.
        this.db.pragma('synchronous = NORMAL');
        // Keep the WAL small and bounded: it counts toward the cache's size bound (see WAL_MAX_BYTES).
        this.db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
        this.db.pragma(`journal_size_limit = ${WAL_MAX_BYTES}`);
        this.migrate();
      }
    } catch (err) {
      db?.close(); // a half-opened database would keep its files (and the filesystem) busy
      throw wrapDbError(err, file);
    }
    this.upsertStmt = this.prepare(
      `INSERT INTO entries (id, identity, size, block_size, blocks, disk_bytes, complete, last_access)
       VALUES (@id, @identity, @size, @blockSize, @blocks, @diskBytes, @complete, @lastAccess)
       ON CONFLICT(id) DO UPDATE SET blocks = excluded.blocks, disk_bytes = excluded.disk_bytes,
         complete = excluded.complete, last_access = excluded.last_access`,
    );
    this.deleteStmt = this.prepare('DELETE FROM entries WHERE id = ?');
    this.touchStmt = this.prepare('UPDATE entries SET last_access = ? WHERE id = ?');
    this.counterStmt = this.prepare(
      'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value',
    );
  }

  private prepare(sql: string): Database.Statement {
    // Read-only handles (`gradient cache stats`) never write; a dummy keeps the fields non-optional.
    return this.db.readonly ? this.db.prepare('SELECT 1') : this.db.prepare(sql);
  }

  private migrate(): void {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS entries (
        id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        size INTEGER NOT NULL,
        block_size INTEGER NOT NULL,
        blocks TEXT NOT NULL,
        disk_bytes INTEGER NOT NULL,
        complete INTEGER NOT NULL,
        last_access INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS entries_last_access ON entries (last_access);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `);
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined;
    if (!row) {
      this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    } else if (Number(row.value) !== SCHEMA_VERSION) {
      throw new CacheError(
        'Io',
        `cache index ${this.file} has schema ${row.value}, this version reads ${SCHEMA_VERSION}: run \`gradient cache clear\``,
      );
    }
  }

  /** All entries, least recently used first. */
  loadEntries(): EntryRow[] {
    const rows = this.db.prepare('SELECT * FROM entries ORDER BY last_access ASC').all() as RawRow[];
    return rows.map((r) => ({
      id: r.id,
      identity: r.identity,
      size: r.size,
      blockSize: r.block_size,
      blocks: r.blocks,
      diskBytes: r.disk_bytes,
      complete: r.complete === 1,
      lastAccess: r.last_access,
    }));
  }

  /** One transaction: upserts, access-time updates, deletions and counter deltas of one flush. */
  commit(batch: {
    upserts?: readonly EntryRow[];
    touches?: ReadonlyArray<{ id: string; lastAccess: number }>;
    deletes?: readonly string[];
    counters?: Partial<Record<CounterName, number>>;
  }): void {
    try {
      this.db.transaction(() => {
        for (const id of batch.deletes ?? []) this.deleteStmt.run(id);
        for (const e of batch.upserts ?? []) this.upsertStmt.run({ ...e, complete: e.complete ? 1 : 0 });
        for (const t of batch.touches ?? []) this.touchStmt.run(t.lastAccess, t.id);
        for (const [name, value] of Object.entries(batch.counters ?? {})) {
          if (value) this.counterStmt.run(name, value);
        }
      })();
    } catch (err) {
      throw wrapDbError(err, this.file);
    }
  }

  counters(): Record<CounterName, number> {
    const out = zeroCounters();
    for (const r of this.db.prepare('SELECT name, value FROM counters').all() as Array<{ name: string; value: number }>) {
      if (r.name in out) out[r.name as CounterName] = r.value;
    }
    return out;
  }

  summary(): { entries: number; completeEntries: number; diskBytes: number } {
    const r = this.db
      .prepare('SELECT COUNT(*) AS n, COALESCE(SUM(complete), 0) AS c, COALESCE(SUM(disk_bytes), 0) AS b FROM entries')
      .get() as { n: number; c: number; b: number };
    return { entries: r.n, completeEntries: r.c, diskBytes: r.b };
  }

  /** The table of objects' POSIX attributes (attribute-index.ts), on this database. */
  attributeIndex(onError: (err: unknown) => void): AttributeIndex {
    return new AttributeIndex(this.db, onError);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function wrapDbError(err: unknown, file: string): Error {
  if (err instanceof CacheError) return err;
  const code = (err as { code?: string }).code;
  if (isNoSpaceErrno(err) || code === 'SQLITE_FULL') {
    return new CacheError('NoSpace', `cache index ${file}: the disk is full`, { cause: err });
  }
  return new CacheError('Io', `cache index ${file}: ${(err as Error).message}`, { cause: err });
}
