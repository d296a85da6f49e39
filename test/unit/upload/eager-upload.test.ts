// Eager multipart uploads against a fake store that records parts: what is sent early, the bounds on parts
// in flight, and giving up when bytes already sent change.
import { describe, expect, it } from 'vitest';
import { EAGER_PART_BYTES, EagerUpload, type PartSource } from '../../../src/upload/eager-upload.js';
import { DaemonMemory } from '../../../src/memory/index.js';
import type { MultipartUpload, ObjectInfo, ObjectStore } from '../../../src/storage/object-store.js';

const PART = EAGER_PART_BYTES;

function fakeStore() {
  const state = { inFlight: 0, maxInFlight: 0, aborted: [] as string[], completed: new Map<string, number[]>() };
  const release: Array<() => void> = [];
  const store = {
    location: 's3://fake/',
    async startMultipart(key: string): Promise<MultipartUpload> {
      const parts = new Map<number, number>();
      return {
        async uploadPart(n: number, body: Buffer) {
          state.inFlight++;
          state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
          await new Promise<void>((r) => release.push(r));
          state.inFlight--;
          parts.set(n, body.length);
        },
        async complete(): Promise<ObjectInfo> {
          const sizes = [...parts].sort(([a], [b]) => a - b).map(([, size]) => size);
          state.completed.set(key, sizes);
          return { key, size: sizes.reduce((a, b) => a + b, 0), etag: 'e', lastModified: new Date() };
        },
        async abort() {
          state.aborted.push(key);
        },
      };
    },
  } as unknown as ObjectStore & Required<Pick<ObjectStore, 'startMultipart'>>;
  /** Lets every part waiting in the fake store finish, until none is left. */
  const drain = async (): Promise<void> => {
    for (let i = 0; i < 1000; i++) {
      await new Promise((r) => setImmediate(r));
      const waiting = release.splice(0);
      if (waiting.length === 0 && i > 5) return;
      waiting.forEach((r) => r());
    }
  };
  return { store, state, drain };
}

const bytes: PartSource = {
  read: async (_offset, length) => Buffer.alloc(length),
  readAligned: async (_offset, into) => into.length,
};

describe('eager multipart upload', () => {
  it('sends full parts as they are written, at most 4 per file and 8 in all, and only the tail at finish', async () => {
    const { store, state, drain } = fakeStore();
    const memory = new DaemonMemory(); // one process: its 8 slots are shared by the three files
    const uploads = ['a', 'b', 'c'].map((key) => new EagerUpload(store, key, bytes, memory));
    const size = 6 * PART + 123;
    for (const u of uploads) u.changed(0, size);
    await new Promise((r) => setImmediate(r));
    expect(state.inFlight).toBe(8);
    const done = Promise.all(uploads.map((u) => u.finish(size)));
    await drain();
    const infos = await done;
    expect(state.maxInFlight).toBe(8);
    for (const [i, key] of ['a', 'b', 'c'].entries()) {
      expect(infos[i]?.size).toBe(size);
      expect(state.completed.get(key)).toEqual([PART, PART, PART, PART, PART, PART, 123]);
    }
    expect(state.aborted).toEqual([]);
  });

  it('gives up when bytes already sent change: the parts are aborted and finish leaves the upload to the caller', async () => {
    const { store, state, drain } = fakeStore();
    const u = new EagerUpload(store, 'k', bytes, new DaemonMemory());
    u.changed(0, 2 * PART);
    u.changed(10, 2 * PART); // a rewrite inside the first part, already on its way
    const done = u.finish(2 * PART);
    await drain();
    expect(await done).toBeUndefined();
    expect(state.aborted).toEqual(['k']);
    expect(state.completed.size).toBe(0);
  });

  it('a file smaller than one part never starts a multipart upload', async () => {
    const { store, state } = fakeStore();
    const u = new EagerUpload(store, 'small', bytes, new DaemonMemory());
    u.changed(0, PART - 1);
    expect(await u.finish(PART - 1)).toBeUndefined();
    expect(state.maxInFlight).toBe(0);
    expect(state.aborted).toEqual([]);
  });
});
