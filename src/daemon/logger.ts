// pino, JSON to stdout. Every argument of every log call goes through the redactor first, so that secrets
// are masked in the message, in merged objects and in errors alike. Pretty output only when pino-pretty is
// installed (it is not a dependency) and stdout is a terminal; services and containers get JSON.
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { redactor as defaultRedactor, type Redactor } from './redact.js';

export type { Logger } from 'pino';

export interface LoggerSetup {
  level?: string;
  /** Where to write; default stdout. */
  destination?: DestinationStream;
  /** Pretty-print when possible; default: when stdout is a TTY. */
  pretty?: boolean;
  redactor?: Redactor;
}

export function createLogger(setup: LoggerSetup = {}): Logger {
  const redactor = setup.redactor ?? defaultRedactor;
  const options: LoggerOptions = {
    level: setup.level ?? process.env.GRADIENT_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    hooks: {
      logMethod(args, method) {
        // pino nests a leading Error under `err`; keep that shape after turning it into a plain object.
        const scrubbed = args.map((a, i) => (i === 0 && a instanceof Error ? { err: redactor.scrub(a) } : redactor.scrub(a))) as Parameters<
          typeof method
        >;
        method.apply(this, scrubbed);
      },
    },
    serializers: {
      // Errors arrive already scrubbed into plain objects by the hook above.
      err: (e: unknown) => e,
    },
  };
  if (setup.destination) return pino(options, setup.destination);
  const pretty = setup.pretty ?? process.stdout.isTTY === true;
  if (pretty && hasPinoPretty()) return pino({ ...options, transport: { target: 'pino-pretty' } });
  return pino(options);
}

function hasPinoPretty(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
