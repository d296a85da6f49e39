// Ids in Gradient's shapes: datasets "ds" + 13, storage providers "spl" + 12, versions 7 characters,
// all lowercase base36 and random (no coordination needed between machines).
import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function random(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

export const newDatasetId = (): string => `ds${random(13)}`;
export const newVersionId = (): string => random(7);
export const newStorageProviderId = (): string => `spl${random(12)}`;

export const DATASET_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const VERSION_ID = /^[a-z0-9]{7}$/;
/** Tags: like git refs, short and path-free; "latest" is reserved. */
export const TAG_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
