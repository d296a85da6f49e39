// Which entries an edit added, removed, changed or left alone: pure, compares configuration only.
import type { SettingsEntry } from './schema.js';

export interface SettingsDiff {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
}

type Entries = ReadonlyMap<string, SettingsEntry>;

export function diffSettings(oldEntries: Entries | undefined, newEntries: Entries): SettingsDiff {
  const diff: SettingsDiff = { added: [], removed: [], changed: [], unchanged: [] };
  const before = oldEntries ?? new Map<string, SettingsEntry>();
  for (const [name, entry] of newEntries) {
    const prev = before.get(name);
    if (prev === undefined) diff.added.push(name);
    else if (sameEntry(prev, entry)) diff.unchanged.push(name);
    else diff.changed.push(name);
  }
  for (const name of before.keys()) if (!newEntries.has(name)) diff.removed.push(name);
  return diff;
}

export function sameEntry(a: SettingsEntry, b: SettingsEntry): boolean {
  return canonical(a) === canonical(b);
}

/** JSON with sorted keys and undefined fields dropped, so that field order in the file does not matter. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([x], [y]) => (x < y ? -1 : 1)))
      : v,
  );
}
