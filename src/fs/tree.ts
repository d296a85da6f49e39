// An immutable directory tree built once from a list of file paths (a version's manifest), stored in
// flat typed arrays so that a million-file version costs tens of megabytes, not hundreds: node i has a
// name, a parent, a size and an mtime; a directory's children are contiguous and sorted by name, so a
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
  /** Node names ('' for the root). */
  readonly names: string[];
  readonly parent: Int32Array;
  readonly size: Float64Array;
  readonly mtimeMs: Float64Array;
  /** For directories: index of the first child in `children`, and the count; -1 for files. */
  private readonly firstChild: Int32Array;
  private readonly childCount: Int32Array;
  private readonly children: Int32Array;
  /** For files: the index of the input entry it came from; -1 for directories. */
  readonly fileIndex: Int32Array;

  private constructor(n: number, childSlots: number) {
    this.names = new Array<string>(n);
    this.parent = new Int32Array(n);
    this.size = new Float64Array(n);
    this.mtimeMs = new Float64Array(n);
    this.firstChild = new Int32Array(n).fill(-1);
    this.childCount = new Int32Array(n);
    this.children = new Int32Array(childSlots);
    this.fileIndex = new Int32Array(n).fill(-1);
  }

  get nodeCount(): number {
    return this.names.length;
  }

  isDir(node: number): boolean {
    return this.firstChild[node]! >= 0;
  }

  /**
   * Builds the tree. Paths are '/'-separated and relative; empty, '.' and '..' components are refused,
   * as are a path that is both a file and a directory, and duplicates.
   */
  static build(files: readonly TreeFileInput[], dirMtimeMs = 0): Tree {
    // Pass 1: assign node ids; directories are discovered from the file paths.
    const dirIds = new Map<string, number>([['', TREE_ROOT]]);
    const names: string[] = [''];
    const parents: number[] = [-1];
    const fileOf: number[] = [-1];
    const isDir: boolean[] = [true];
    const fileNode = new Map<string, number>();
    for (let i = 0; i < files.length; i++) {
      const path = files[i]!.path;
      const parts = path.split('/');
      let parentId = TREE_ROOT;
      let prefix = '';
      for (let p = 0; p < parts.length; p++) {
        const part = parts[p]!;
        if (part === '' || part === '.' || part === '..') throw new TreeError(`invalid path in manifest: "${path}"`);
        prefix = prefix ? `${prefix}/${part}` : part;
        const last = p === parts.length - 1;
        if (last) {
          if (dirIds.has(prefix)) throw new TreeError(`"${path}" is both a file and a directory`);
          if (fileNode.has(prefix)) throw new TreeError(`duplicate path in manifest: "${path}"`);
          fileNode.set(prefix, names.length);
          names.push(part);
          parents.push(parentId);
          fileOf.push(i);
          isDir.push(false);
        } else {
          let id = dirIds.get(prefix);
          if (id === undefined) {
            if (fileNode.has(prefix)) throw new TreeError(`"${prefix}" is both a file and a directory`);
            id = names.length;
            dirIds.set(prefix, id);
            names.push(part);
            parents.push(parentId);
            fileOf.push(-1);
            isDir.push(true);
          }
          parentId = id;
        }
      }
    }
    const n = names.length;
    const t = new Tree(n, Math.max(0, n - 1));
    // Pass 2: group children by parent (counting sort), then sort each group by name.
    const counts = new Int32Array(n);
    for (let i = 1; i < n; i++) counts[parents[i]!]!++;
    let slot = 0;
    for (let i = 0; i < n; i++) {
      if (isDir[i]) {
        t.firstChild[i] = slot;
        t.childCount[i] = counts[i]!;
        slot += counts[i]!;
      }
    }
    const fill = new Int32Array(n);
    for (let i = 1; i < n; i++) {
      const p = parents[i]!;
      t.children[t.firstChild[p]! + fill[p]!++] = i;
    }
    for (let i = 0; i < n; i++) {
      t.names[i] = names[i]!;
      t.parent[i] = i === 0 ? 0 : parents[i]!;
      t.fileIndex[i] = fileOf[i]!;
      const f = fileOf[i]! >= 0 ? files[fileOf[i]!]! : undefined;
      t.size[i] = f ? f.size : 0;
      t.mtimeMs[i] = f ? f.mtimeMs : dirMtimeMs;
    }
    for (let i = 0; i < n; i++) {
      const c = t.childCount[i]!;
      if (c > 1) {
        const start = t.firstChild[i]!;
        const group = Array.from(t.children.subarray(start, start + c)).sort((a, b) => compareNames(t.names[a]!, t.names[b]!));
        t.children.set(group, start);
      }
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
      const c = compareNames(this.names[node]!, name);
      if (c === 0) return node;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
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

/** Byte order of UTF-16 code units: any total order works, as long as build and lookup agree. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
