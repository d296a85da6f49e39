// The config file's error, apart from its parser and schemas so that what only classifies errors (the CLI's
// exit codes) loads neither.
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** Invalid: the file; Missing: a path named by --config or GRADIENT_CONFIG; BadInput: a value given to a command. */
    readonly code: 'Invalid' | 'Unreadable' | 'Missing' | 'UnknownProvider' | 'Duplicate' | 'BadInput',
    message: string,
  ) {
    super(message);
  }
}
