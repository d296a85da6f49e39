// Typed settings errors. Every issue names the file, the line and column, and the field, in the form
// `settings.yaml:7:5: quarterly-reports.version: required`. No message ever contains a value from the file:
// a YAML error's source excerpt could hold a plaintext secret, so only positions and field paths are used.

export type SettingsErrorCode = 'SETTINGS_READ' | 'SETTINGS_SYNTAX' | 'SETTINGS_INVALID' | 'SETTINGS_SECRET';

export interface SettingsIssue {
  file: string;
  /** 1-based; 0 when unknown (e.g. the file cannot be read). */
  line: number;
  col: number;
  /** Dotted field path, e.g. `quarterly-reports.version`; empty for the document itself. */
  field: string;
  message: string;
}

export function formatIssue(issue: SettingsIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  constructor(
    readonly code: SettingsErrorCode,
    readonly issues: readonly SettingsIssue[],
  ) {
    super(issues.map(formatIssue).join('\n'));
  }
}

export function isSettingsError(err: unknown, code?: SettingsErrorCode): err is SettingsError {
  return err instanceof SettingsError && (code === undefined || err.code === code);
}
