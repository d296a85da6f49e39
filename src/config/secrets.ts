// `secret:<name>` references, resolved Kubernetes-style from a directory of one file per secret, else from the
// environment (GRADIENT_SECRET_<NAME>). The directories, in order: $GRADIENT_SECRETS_DIR alone if set; as
// root /var/run/secrets/gradient; for any other user their own ($XDG_CONFIG_HOME/gradient/secrets), then
// /var/run/secrets/gradient (where a container's mounted secrets are, readable by the notebook's user).
// A resolved value is never put in an error message: only the secret's name and where we looked.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { userConfigDir } from './paths.js';

export const DEFAULT_SECRETS_DIR = '/var/run/secrets/gradient';
const SECRET_PREFIX = 'secret:';
const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export class SecretError extends Error {
  override readonly name = 'SecretError';
}

export function isSecretRef(value: string): boolean {
  return value.startsWith(SECRET_PREFIX);
}

/** Where secrets are looked for, in order (see above). */
export function secretsDirs(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string[] {
  if (env.GRADIENT_SECRETS_DIR) return [env.GRADIENT_SECRETS_DIR];
  if (uid === 0) return [DEFAULT_SECRETS_DIR];
  return [path.join(userConfigDir(env), 'secrets'), DEFAULT_SECRETS_DIR];
}

/** Where a new secret is saved (`storageProviders create`): the first directory looked in. */
export function secretsDir(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  return secretsDirs(env, uid)[0]!;
}

/** Environment variable consulted for a secret: `my-key.v2` → GRADIENT_SECRET_MY_KEY_V2. */
export function secretEnvName(name: string): string {
  return `GRADIENT_SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Returns the value itself, or the secret it references (`secret:<name>`), trailing newline trimmed. */
export function resolveSecret(value: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!isSecretRef(value)) return value;
  const name = value.slice(SECRET_PREFIX.length);
  if (!SECRET_NAME.test(name)) {
    throw new SecretError(`invalid secret name "${name}": use letters, digits, '.', '_' and '-'`);
  }
  const dirs = secretsDirs(env);
  for (const dir of dirs) {
    let fromFile: string;
    try {
      fromFile = readFileSync(path.join(dir, name), 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new SecretError(`cannot read secret "${name}" from ${dir}: ${code ?? String(err)}`);
    }
    // An empty key would only surface later as a baffling "credentials rejected" from the bucket.
    if (fromFile === '') throw new SecretError(`secret "${name}" is empty: ${path.join(dir, name)} holds nothing`);
    return fromFile;
  }
  const fromEnv = env[secretEnvName(name)];
  if (fromEnv !== undefined) return fromEnv;
  const files = dirs.map((d) => path.join(d, name)).join(' or ');
  throw new SecretError(`secret "${name}" not found: no file ${files} (GRADIENT_SECRETS_DIR) and no ${secretEnvName(name)} in the environment`);
}
