// Reading the small YAML files users edit (settings.yaml, config.yaml) safely: with a size bound, and with
// YAML error messages reduced to words of our own choosing, since both files may hold plaintext secrets.
import { open } from 'node:fs/promises';

export class FileTooLargeError extends Error {
  override readonly name = 'FileTooLargeError';
  constructor(
    readonly file: string,
    readonly maxBytes: number,
  ) {
    super(`${file} is larger than ${sizeText(maxBytes)}`);
  }
}

function sizeText(bytes: number): string {
  if (bytes % (1 << 20) === 0) return `${bytes >> 20} MiB`;
  if (bytes % 1024 === 0) return `${bytes >> 10} KiB`;
  return `${bytes} bytes`;
}

/**
 * The file's text, refusing anything over `maxBytes`. A huge file would hold the daemon's one thread in the
 * YAML parser for seconds per megabyte (and a path such as /dev/zero forever), so no more than the bound
 * plus one byte is ever read.
 */
export async function readSmallFile(file: string, maxBytes: number): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > maxBytes) throw new FileTooLargeError(file, maxBytes);
    return buf.toString('utf8', 0, n);
  } finally {
    await fh.close();
  }
}

/**
 * A yaml error message without any of the source: its first line, without yaml's own position (we give
 * ours), and cut before anything it quotes — "Unresolved alias (…): <name>" and "Invalid escape sequence
 * \x…" echo text from the file, which may be a secret.
 */
export function yamlErrorText(message: string): string {
  return message
    .split('\n')[0]!
    .replace(/ at line \d+, column \d+:?$/, '')
    .replace(/(: | \\).*$/, '');
}
