// What the daemon benchmarks share around the product: an RGW of their own, and a user's home for the CLI.
import path from 'node:path';
import { runCli } from '../test/helpers/cli.js';
import { exportRgwEnv, startRgw } from '../test/helpers/rgw.js';

/** Starts an RGW for the benchmark unless S3_ENDPOINT names one already; resolves with how to stop it. */
export async function benchRgw(name: string, memstoreBytes: string): Promise<() => void> {
  if (process.env.S3_ENDPOINT) return () => undefined;
  const rgw = await startRgw({ name, memstoreBytes });
  exportRgwEnv(rgw);
  return rgw.stop;
}

/** A user's environment with `home` as HOME (nothing inherited but PATH), and `gradient` run in it, failing loudly. */
export function cliHome(home: string): { env: NodeJS.ProcessEnv; gradient: (...args: string[]) => Promise<string> } {
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    PATH: process.env.PATH,
    GRADIENT_SECRETS_DIR: path.join(home, 'secrets'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const gradient = async (...args: string[]): Promise<string> => {
    const r = await runCli(args, env);
    if (r.code !== 0) throw new Error(`gradient ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  return { env, gradient };
}
