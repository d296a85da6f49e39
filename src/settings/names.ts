// Entry names become directory names under the mount root, so they must be one valid path component.
const MAX_NAME_BYTES = 255; // NAME_MAX on Linux

/** Returns why `name` cannot be a directory name, or undefined if it can. */
export function invalidNameReason(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name === '.' || name === '..') return `"${name}" is not a valid directory name`;
  if (name.includes('/')) return 'a name cannot contain "/"';
  if (name.includes('\0')) return 'a name cannot contain a NUL character';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_BYTES) return `the name is ${bytes} bytes long; the limit is ${MAX_NAME_BYTES}`;
  return undefined;
}

export function isValidEntryName(name: string): boolean {
  return invalidNameReason(name) === undefined;
}
