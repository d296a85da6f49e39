// Builds local source trees for upload tests in a temp directory.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Writes files (path → content) under root; returns root. */
export async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<string> {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, ...rel.split('/'));
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, content);
  }
  return root;
}

/** The tree of the lifecycle tests: nested dirs, unicode and spaces in names, an empty file. */
export function sampleTree(): Record<string, string | Buffer> {
  return {
    'hello.txt': 'hello world\n',
    'empty.bin': '',
    'nested/deeper/data.csv': 'a,b\n1,2\n',
    'nested/with space/naïve – ünïcødé 🐱.txt': 'unicode!',
    'nested/random.bin': randomBytes(200_000),
  };
}
