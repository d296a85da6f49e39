// settings.yaml → validated entries, keeping where each entry and field is in the file so that
// every error (here, and later when an entry fails to resolve) can name file:line:col and field.
import { isMap, isScalar, LineCounter, parseDocument, type Node, type Pair } from 'yaml';
import type { z } from 'zod';
import { FileTooLargeError, readSmallFile, yamlErrorText } from '../config/yaml-file.js';
import { SettingsError, type SettingsIssue } from './errors.js';
import { invalidNameReason } from './names.js';
import { datasetEntrySchema, ENTRY_TYPES, s3EntrySchema, toS3Entry, type SettingsEntry } from './schema.js';

export interface Position {
  line: number;
  col: number;
}

export interface EntryPositions {
  /** Where the entry's key (its name) is. */
  key: Position;
  /** Where each field's value is. */
  fields: Readonly<Record<string, Position>>;
}

export interface Settings {
  /** The file as named to the parser: used in every message. */
  file: string;
  /** Entries in file order; the key is the directory name. */
  entries: ReadonlyMap<string, SettingsEntry>;
  positions: ReadonlyMap<string, EntryPositions>;
}

/** Field path for messages: names are shown as they are unless they would garble the message. */
export function fieldPath(name: string, field?: string): string {
  const shown = /^[^\s\0"]{1,80}$/.test(name) ? name : JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
  return field ? `${shown}.${field}` : shown;
}

/** `file:line:col: name.field` for an entry (or one of its fields) of parsed settings. */
export function locate(settings: Settings, name: string, field?: string): string {
  const pos = settings.positions.get(name);
  const at = (field && pos?.fields[field]) || pos?.key;
  const where = at ? `${settings.file}:${at.line}:${at.col}` : settings.file;
  return `${where}: ${fieldPath(name, field)}`;
}

/** A settings file holds a few entries (~50 bytes each); past this it is not one, and parsing would stall. */
export const MAX_SETTINGS_BYTES = 256 * 1024;

export async function loadSettings(file: string): Promise<Settings> {
  let text: string;
  try {
    text = await readSmallFile(file, MAX_SETTINGS_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    const why =
      err instanceof FileTooLargeError
        ? `the file is larger than ${MAX_SETTINGS_BYTES / 1024} KiB: is it the right file?`
        : code === 'ENOENT'
          ? 'file not found'
          : `cannot read the file (${code})`;
    throw new SettingsError('SETTINGS_READ', [{ file, line: 0, col: 0, field: '', message: why }]);
  }
  return parseSettings(text, file);
}

export function parseSettings(text: string, file: string): Settings {
  const lineCounter = new LineCounter();
  // prettyErrors off: the pretty form appends the offending source line, which could hold a plaintext secret.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const posOf = (offset: number | undefined): Position => {
    if (offset === undefined) return { line: 1, col: 1 };
    const p = lineCounter.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const nodePos = (node: unknown): Position | undefined => {
    const range = (node as Node | null | undefined)?.range;
    return range ? posOf(range[0]) : undefined;
  };

  if (doc.errors.length > 0) {
    throw new SettingsError(
      'SETTINGS_SYNTAX',
      doc.errors.map((e) => ({ file, ...posOf(e.pos[0]), field: '', message: `YAML: ${yamlErrorText(e.message)}` })),
    );
  }

  const entries = new Map<string, SettingsEntry>();
  const positions = new Map<string, EntryPositions>();
  const contents = doc.contents;
  // An empty file (or one with only comments) is valid: no entries.
  if (contents === null || (isScalar(contents) && (contents.value === null || contents.value === undefined))) {
    return { file, entries, positions };
  }
  if (!isMap(contents)) {
    throw new SettingsError('SETTINGS_INVALID', [
      { file, ...(nodePos(contents) ?? { line: 1, col: 1 }), field: '', message: 'expected a mapping of entry names to entries' },
    ]);
  }

  const issues: SettingsIssue[] = [];
  for (const pair of contents.items as Pair<unknown, unknown>[]) {
    const keyPos = nodePos(pair.key) ?? { line: 1, col: 1 };
    const rawName = isScalar(pair.key) ? pair.key.value : undefined;
    if (typeof rawName !== 'string' && typeof rawName !== 'number') {
      issues.push({ file, ...keyPos, field: '', message: 'an entry name must be a plain string' });
      continue;
    }
    const name = String(rawName);
    const bad = invalidNameReason(name);
    if (bad) {
      issues.push({ file, ...keyPos, field: fieldPath(name), message: `invalid entry name: ${bad}` });
      continue;
    }
    const fields: Record<string, Position> = {};
    const fieldKeys: Record<string, Position> = {};
    if (isMap(pair.value)) {
      for (const fp of pair.value.items as Pair<unknown, unknown>[]) {
        const k = isScalar(fp.key) ? String(fp.key.value) : undefined;
        if (k === undefined) continue;
        fieldKeys[k] = nodePos(fp.key) ?? keyPos;
        fields[k] = nodePos(fp.value) ?? fieldKeys[k];
      }
    }
    positions.set(name, { key: keyPos, fields });

    let plain: unknown;
    try {
      plain = isMap(pair.value) ? toPlain(pair.value, doc) : null;
    } catch (err) {
      // An alias that is undefined, or expands too far (a "billion laughs" file): yaml throws here.
      issues.push({ file, ...keyPos, field: fieldPath(name), message: `YAML: ${yamlErrorText((err as Error).message)}` });
      continue;
    }
    if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
      issues.push({ file, ...keyPos, field: fieldPath(name), message: `expected a mapping with a type field (${ENTRY_TYPES.join(' or ')})` });
      continue;
    }
    const obj = plain as Record<string, unknown>;
    const at = (field: string | undefined, asKey = false): Position =>
      (field !== undefined && (asKey ? fieldKeys[field] : fields[field])) || keyPos;

    if (obj.type === undefined) {
      issues.push({ file, ...keyPos, field: fieldPath(name, 'type'), message: `required (${ENTRY_TYPES.join(' or ')})` });
      continue;
    }
    const schema = obj.type === 'dataset' ? datasetEntrySchema : obj.type === 's3' ? s3EntrySchema : undefined;
    if (!schema) {
      issues.push({ file, ...at('type'), field: fieldPath(name, 'type'), message: `must be ${ENTRY_TYPES.map((t) => `"${t}"`).join(' or ')}` });
      continue;
    }
    const result = schema.safeParse(obj, { reportInput: true });
    if (!result.success) {
      for (const issue of result.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) {
            // The key is named unless it could be a value pasted in the wrong place (a secret is longer).
            const shown = /^[A-Za-z0-9_-]{1,32}$/.test(key) ? key : '(a field)';
            issues.push({ file, ...at(key, true), field: fieldPath(name, shown), message: `unknown field for type ${String(obj.type)}` });
          }
          continue;
        }
        const field = issue.path.length > 0 ? String(issue.path[0]) : undefined;
        issues.push({ file, ...at(field), field: fieldPath(name, field), message: issueMessage(issue) });
      }
      continue;
    }
    entries.set(name, result.data.type === 's3' ? toS3Entry(result.data as z.output<typeof s3EntrySchema>) : result.data);
  }
  if (issues.length > 0) throw new SettingsError('SETTINGS_INVALID', issues);
  return { file, entries, positions };
}

function toPlain(node: unknown, doc: ReturnType<typeof parseDocument>): unknown {
  if (node === null || node === undefined) return null;
  return (node as { toJS(doc: unknown): unknown }).toJS(doc);
}

type ZodIssue = z.core.$ZodIssue;

/** Our wording for zod issues: never includes the received value (it may be a secret). */
function issueMessage(issue: ZodIssue): string {
  if (issue.code === 'invalid_type') {
    if (!('input' in issue) || issue.input === undefined) return 'required';
    const got =
      issue.input === null ? 'nothing' : Array.isArray(issue.input) ? 'a list' : typeof issue.input === 'object' ? 'a mapping' : `a ${typeof issue.input}`;
    const hint = issue.expected === 'string' && typeof issue.input === 'number' ? ' (quote it)' : '';
    return `expected ${article(issue.expected)}, got ${got}${hint}`;
  }
  if (issue.code === 'invalid_value') {
    return `must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
  }
  return issue.message;
}

function article(expected: string): string {
  return expected === 'boolean' ? 'true or false' : /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}
