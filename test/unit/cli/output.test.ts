import { describe, expect, it } from 'vitest';
import { CatalogError } from '../../../src/catalog/errors.js';
import { exitCodeFor } from '../../../src/cli/exit-codes.js';
import { formatBytes, table } from '../../../src/cli/output.js';
import { StorageError } from '../../../src/storage/errors.js';

describe('CLI output', () => {
  it('draws Gradient-style pipe tables', () => {
    expect(table([['Name', 'Size'], ['hello.txt', '12']])).toBe('| Name      | Size |\n|-----------|------|\n| hello.txt | 12   |');
    expect(table([['ID', 'x']], false)).toBe('| ID | x |');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });
  it('maps errors to documented exit codes', () => {
    expect(exitCodeFor(new CatalogError('BadRef', ''))).toBe(2);
    expect(exitCodeFor(new CatalogError('NotFound', ''))).toBe(3);
    expect(exitCodeFor(new CatalogError('Committed', ''))).toBe(4);
    expect(exitCodeFor(new StorageError('BadCredentials', ''))).toBe(5);
    expect(exitCodeFor(new StorageError('Unreachable', ''))).toBe(6);
    expect(exitCodeFor(new Error('x'))).toBe(1);
  });
});
