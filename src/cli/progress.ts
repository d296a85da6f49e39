// A one-line progress bar on stderr (bytes, rate, files) for long transfers; silent when stderr is not a
// terminal or with --json, so that scripts see only the result.
import type { TransferProgress } from '../catalog/put.js';
import { formatBytes } from './output.js';

export interface ProgressBar {
  update(p: TransferProgress): void;
  done(): void;
}

export function progressBar(label: string, stream: NodeJS.WritableStream & { isTTY?: boolean }, enabled: boolean): ProgressBar {
  if (!enabled || !stream.isTTY) return { update: () => undefined, done: () => undefined };
  const started = Date.now();
  let lastDraw = 0;
  let last: TransferProgress | undefined;
  const draw = () => {
    if (!last) return;
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    const frac = last.bytesTotal > 0 ? last.bytesDone / last.bytesTotal : last.filesDone / Math.max(1, last.filesTotal);
    const width = 24;
    const filled = Math.min(width, Math.round(frac * width));
    stream.write(
      `\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
        `${formatBytes(last.bytesDone)}/${formatBytes(last.bytesTotal)} ${formatBytes(last.bytesDone / secs)}/s ` +
        `${last.filesDone}/${last.filesTotal} files\x1b[K`,
    );
  };
  return {
    update(p) {
      last = p;
      const now = Date.now();
      if (now - lastDraw >= 100) {
        lastDraw = now;
        draw();
      }
    },
    done() {
      draw();
      if (last) stream.write('\n');
    },
  };
}
