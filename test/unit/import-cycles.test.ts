// The code in src/ depends in one direction only (docs/ARCHITECTURE.md): no import cycle between files, nor
// between directories (src/cli → src/daemon → src/config, never back). A type-only import counts: it is
// still a dependency. `madge --circular` would see only cycles between files; the ones we had were between
// directories, so this walks the imports itself (TypeScript's own scanner, which skips comments).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

/** Every .ts file under src/ (relative path) → the src files it imports. */
function fileImports(): Map<string, Set<string>> {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  return new Map(
    files.map((file) => {
      const specs = ts.preProcessFile(readFileSync(path.join(SRC, file), 'utf8'), true, true).importedFiles.map((i) => i.fileName);
      const local = specs.filter((s) => s.startsWith('.')).map((s) => path.join(path.dirname(file), s).replace(/\.js$/, '.ts'));
      return [file, new Set(local)];
    }),
  );
}

/** One closing path per cycle a depth-first walk meets ("a → b → a"); [] when the graph has none. */
function cycles(graph: Map<string, Set<string>>): string[] {
  const found: string[] = [];
  const done = new Set<string>();
  const walk = (node: string, stack: string[]): void => {
    if (stack.includes(node)) return void found.push([...stack.slice(stack.indexOf(node)), node].join(' → '));
    if (done.has(node)) return;
    for (const next of graph.get(node) ?? []) walk(next, [...stack, node]);
    done.add(node);
  };
  for (const node of graph.keys()) walk(node, []);
  return found;
}

describe('imports in src/', () => {
  const files = fileImports();

  it('form no cycle between files', () => {
    expect(cycles(files)).toEqual([]);
  });

  it('form no cycle between directories', () => {
    const dirs = new Map<string, Set<string>>();
    for (const [file, deps] of files) {
      const from = path.dirname(file);
      if (!dirs.has(from)) dirs.set(from, new Set());
      for (const dep of deps) if (path.dirname(dep) !== from) dirs.get(from)!.add(path.dirname(dep));
    }
    expect(cycles(dirs)).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const graph = new Map([['cli', new Set(['daemon'])], ['daemon', new Set(['config', 'cli'])], ['config', new Set<string>()]]);
    expect(cycles(graph)).toEqual(['cli → daemon → cli']);
  });
});
