// An immutable directory tree built once from a list of file paths (a version's manifest), stored in
// flat typed arrays and one buffer of names, so that a million-file version costs tens of megabytes, not
// hundreds, and nothing of it sits on the JS heap: node i has a name, a parent, a size and an mtime; a directory's children are contiguous and sorted by name, so a
// lookup is a binary search and a listing is a slice.

export const TREE_ROOT = 0;

export interface TreeFileInput {
  path: string;
  size: number;
  mtimeMs: number;
}

export class TreeError extends Error {
  override readonly name = 'TreeError';
}

export class Tree {
  /** Node names, UTF-8, back to back ('' for the root): node i's name is nameBytes[nameStart[i], nameStart[i + 1]). */
  private readonly nameBytes: Buffer;
  private readonly nameStart: Uint32Array;
  readonly parent: Int32Array;
  readonly size: Float64Array;
  readonly mtimeMs: Float64Array;
  /** For directories: index of the first child in `children`, and the count; -1 for files. */
  private readonly firstChild: Int32Array;
  private readonly childCount: Int32Array;
  private readonly children: Int32Array;
  /** For files: the index of the input entry it came from; -1 for directories. */
  readonly fileIndex: Int32Array;

  private constructor(names: readonly string[]) {
    const n = names.length;
    // Names live in one buffer, not as a million JS strings: the tree is the version's only long-lived copy
    // of its metadata and must stay off the JS heap, where small objects cost several times their size.
    this.nameStart = new Uint32Array(n + 1);
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      this.nameStart[i] = bytes;
      bytes += Buffer.byteLength(names[i]!);
    }
    this.nameStart[n] = bytes;
    this.nameBytes = Buffer.allocUnsafeSlow(bytes);
    for (let i = 0; i < n; i++) this.nameBytes.write(names[i]!, this.nameStart[i]!);
    this.parent = new Int32Array(n);
    this.size = new Float64Array(n);
    this.mtimeMs = new Float64Array(n);
    this.firstChild = new Int32Array(n).fill(-1);
    this.childCount = new Int32Array(n);
    this.children = new Int32Array(Math.max(0, n - 1));
    this.fileIndex = new Int32Array(n).fill(-1);
  }

  get nodeCount(): number {
    return this.parent.length;
  }

  name(node: number): string {
    return this.nameBytes.toString('utf8', this.nameStart[node]!, this.nameStart[node + 1]!);
  }

  isDir(node: number): boolean {
    return this.firstChild[node]! >= 0;
  }

  /** The node's '/'-separated path from the root. */
  pathOf(node: number): string {
    const parts: string[] = [];
    for (let x = node; x !== TREE_ROOT; x = this.parent[x]!) parts.push(this.name(x));
    return parts.reverse().join('/');
  }

  /**
   * Builds the tree. Paths are '/'-separated and relative; components that cannot be a file name (empty,
   * '.', '..', NUL, over 255 bytes) are refused, as are a path that is both a file and a directory, and
   * duplicates: a manifest written by another client is checked here, not trusted.
   */
  static build(files: readonly TreeFileInput[], dirMtimeMs = 0): Tree {
    // Pass 1: assign node ids; directories are discovered from the file paths. Each directory maps the
    // names of its subdirectories (files are not indexed: duplicates show up as equal neighbours once sorted).
    const names: string[] = [''];
    const parents: number[] = [-1];
    const fileOf: number[] = [-1];
    const subdirs = new Map<number, Map<string, number>>([[TREE_ROOT, new Map()]]);
    for (let i = 0; i < files.length; i++) {
      const path = files[i]!.path;
      const parts = path.split('/');
      let parentId = TREE_ROOT;
      for (let p = 0; p < parts.length; p++) {
        const part = parts[p]!;
        const bad = badComponent(part);
        if (bad) throw new TreeError(`invalid path in manifest: ${shownPath(path)} (${bad})`);
        if (p === parts.length - 1) {
          names.push(part);
          parents.push(parentId);
          fileOf.push(i);
        } else {
          const siblings = subdirs.get(parentId)!;
          let id = siblings.get(part);
          if (id === undefined) {
            id = names.length;
            siblings.set(part, id);
            subdirs.set(id, new Map());
            names.push(part);
            parents.push(parentId);
            fileOf.push(-1);
          }
          parentId = id;
        }
      }
    }
    const n = names.length;
    // Pass 2: group children by parent (counting sort), then sort each group by name.
    const firstChild = new Int32Array(n).fill(-1);
    const childCount = new Int32Array(n);
    for (let i = 1; i < n; i++) childCount[parents[i]!]!++;
    let slot = 0;
    for (let i = 0; i < n; i++) {
      if (fileOf[i]! < 0) {
        firstChild[i] = slot;
        slot += childCount[i]!;
      }
    }
    const children = new Int32Array(Math.max(0, n - 1));
    const fill = new Int32Array(n);
    for (let i = 1; i < n; i++) {
      const p = parents[i]!;
      children[firstChild[p]! + fill[p]!++] = i;
    }
    for (let i = 0; i < n; i++) {
      const c = childCount[i]!;
      if (c < 2) continue;
      const start = firstChild[i]!;
      const group = Array.from(children.subarray(start, start + c)).sort((a, b) => compareNames(names[a]!, names[b]!));
      for (let k = 1; k < c; k++) {
        const a = group[k - 1]!;
        const b = group[k]!;
        if (names[a] !== names[b]) continue;
        const pathOf = (node: number) => {
          const parts: string[] = [];
          for (let x = node; x !== TREE_ROOT; x = parents[x]!) parts.push(names[x]!);
          return parts.reverse().join('/');
        };
        if (fileOf[a]! >= 0 && fileOf[b]! >= 0) throw new TreeError(`duplicate path in manifest: "${pathOf(a)}"`);
        throw new TreeError(`"${pathOf(a)}" is both a file and a directory`);
      }
      children.set(group, start);
    }
    const t = new Tree(names);
    t.firstChild.set(firstChild);
    t.childCount.set(childCount);
    t.children.set(children);
    for (let i = 0; i < n; i++) {
      t.parent[i] = i === 0 ? 0 : parents[i]!;
      t.fileIndex[i] = fileOf[i]!;
      const f = fileOf[i]! >= 0 ? files[fileOf[i]!]! : undefined;
      t.size[i] = f ? f.size : 0;
      t.mtimeMs[i] = f ? f.mtimeMs : dirMtimeMs;
    }
    return t;
  }

  /** The child of `dir` called `name`, or -1. */
  lookup(dir: number, name: string): number {
    let lo = this.firstChild[dir]!;
    if (lo < 0) return -1;
    let hi = lo + this.childCount[dir]! - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const node = this.children[mid]!;
      const c = compareNames(this.name(node), name);
      if (c === 0) return node;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** A node's position among its parent's children (name order). */
  positionOf(node: number): number {
    const dir = this.parent[node]!;
    const first = this.firstChild[dir]!;
    let lo = first;
    let hi = first + this.childCount[dir]! - 1;
    const name = this.name(node);
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareNames(this.name(this.children[mid]!), name);
      if (c === 0) return mid - first;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The child at `position` of a directory (name order). */
  childAt(dir: number, position: number): number {
    return this.children[this.firstChild[dir]! + position]!;
  }

  /** Children of a directory, in name order. */
  childrenOf(dir: number): Int32Array {
    const start = this.firstChild[dir]!;
    return start < 0 ? new Int32Array(0) : this.children.subarray(start, start + this.childCount[dir]!);
  }

  childCountOf(dir: number): number {
    return this.childCount[dir]!;
  }

  /** The node at a '/'-separated path, or -1. */
  resolve(path: string): number {
    let node = TREE_ROOT;
    for (const part of path.split('/')) {
      if (!part) continue;
      node = this.lookup(node, part);
      if (node < 0) return -1;
    }
    return node;
  }
}

/** Why a path component cannot be a file name (the rules of src/catalog/paths.ts), or undefined. */
function badComponent(part: string): string | undefined {
  if (part === '') return 'empty component';
  if (part === '.' || part === '..') return `"${part}" component`;
  if (part.includes('\0')) return 'NUL character';
  // 85 UTF-16 units are at most 255 UTF-8 bytes: only longer names need counting.
  if (part.length > 85 && Buffer.byteLength(part) > 255) return 'a name longer than 255 bytes';
  return undefined;
}

/** A path for a message: quoted with control characters escaped, and bounded (it may be anything). */
function shownPath(path: string): string {
  return JSON.stringify(path.length > 120 ? `${path.slice(0, 120)}…` : path);
}

/** Byte order of UTF-16 code units: any total order works, as long as build and lookup agree. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
