// Resolves an s3 entry's `secret:<name>` references. Errors name the entry, the field and the secret
// (and where it was looked for), never a value.
import { isSecretRef, resolveSecret, SecretError } from '../config/secrets.js';
import { SettingsError } from './errors.js';
import { fieldPath, type Settings } from './parse.js';
import type { S3Entry } from './schema.js';

export interface EntryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The entry's credentials with secrets resolved; undefined for an anonymous (public) bucket. */
export function resolveEntryCredentials(
  settings: Settings,
  name: string,
  entry: S3Entry,
  env: NodeJS.ProcessEnv = process.env,
): EntryCredentials | undefined {
  if (entry.accessKeyId === undefined || entry.secretAccessKey === undefined) return undefined;
  return {
    accessKeyId: resolveField(settings, name, 'accessKeyId', entry.accessKeyId, env),
    secretAccessKey: resolveField(settings, name, 'secretAccessKey', entry.secretAccessKey, env),
  };
}

function resolveField(settings: Settings, name: string, field: string, value: string, env: NodeJS.ProcessEnv): string {
  if (!isSecretRef(value)) return value;
  try {
    return resolveSecret(value, env);
  } catch (err) {
    const pos = settings.positions.get(name);
    const at = pos?.fields[field] ?? pos?.key ?? { line: 0, col: 0 };
    // SecretError messages carry the secret's name and the places searched, by construction no value.
    const why = err instanceof SecretError ? err.message : 'cannot resolve the secret';
    throw new SettingsError('SETTINGS_SECRET', [{ file: settings.file, ...at, field: fieldPath(name, field), message: why }]);
  }
}
