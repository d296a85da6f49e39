import { describe, expect, it } from 'vitest';
import { Tree, TREE_ROOT } from '../../../src/fs/tree.js';

const f = (path: string, size = 1) => ({ path, size, mtimeMs: 1000 });

describe('Tree', () => {
  const t = Tree.build([f('b/z.txt', 5), f('a.txt', 3), f('b/c/d.bin', 7), f('b/a.txt'), f('é/ü 1.txt')]);

  it('derives directories from file paths and sorts children by name', () => {
    const names = (n: number) => Array.from(t.childrenOf(n), (c) => t.name(c));
    expect(names(TREE_ROOT)).toEqual(['a.txt', 'b', 'é']);
    expect(names(t.resolve('b'))).toEqual(['a.txt', 'c', 'z.txt']);
    expect(t.isDir(t.resolve('b/c'))).toBe(true);
    expect(t.isDir(t.resolve('b/c/d.bin'))).toBe(false);
    expect(t.size[t.resolve('b/c/d.bin')]).toBe(7);
    expect(t.resolve('é/ü 1.txt')).toBeGreaterThan(0);
    expect(t.fileIndex[t.resolve('b/c/d.bin')]).toBe(2);
    expect(t.pathOf(t.resolve('é/ü 1.txt'))).toBe('é/ü 1.txt');
  });

  it('looks names up exactly', () => {
    expect(t.lookup(TREE_ROOT, 'a.txt')).toBe(t.resolve('a.txt'));
    expect(t.lookup(TREE_ROOT, 'A.txt')).toBe(-1);
    expect(t.lookup(TREE_ROOT, 'missing')).toBe(-1);
    expect(t.lookup(t.resolve('a.txt'), 'x')).toBe(-1);
  });

  it('refuses paths that cannot form a tree', () => {
    expect(() => Tree.build([f('a'), f('a/b')])).toThrow(/both a file and a directory/);
    expect(() => Tree.build([f('a/b'), f('a')])).toThrow(/both a file and a directory/);
    expect(() => Tree.build([f('x'), f('x')])).toThrow(/duplicate/);
    expect(() => Tree.build([f('d/e/x'), f('d/y'), f('d/e/x')])).toThrow('duplicate path in manifest: "d/e/x"');
    expect(() => Tree.build([f('d/e/x'), f('d/e')])).toThrow('"d/e" is both a file and a directory');
    for (const bad of ['../x', 'a//b', '/abs', 'a/./b', '']) expect(() => Tree.build([f(bad)])).toThrow(/invalid path/);
    expect(() => Tree.build([f('a/n\0b')])).toThrow('invalid path in manifest: "a/n\\u0000b" (NUL character)');
    expect(() => Tree.build([f(`d/${'é'.repeat(128)}`)])).toThrow(/a name longer than 255 bytes/);
    expect(() => Tree.build([f(`d/${'é'.repeat(127)}a`)])).not.toThrow(); // 255 bytes exactly
  });

  it('builds an empty version', () => {
    const e = Tree.build([]);
    expect(e.nodeCount).toBe(1);
    expect(e.childrenOf(TREE_ROOT).length).toBe(0);
  });
});
