// Debugging aid: wraps a Filesystem so that every call the engine makes, and how it ends, is appended to a
// file (`> id op args` / `< id op ok|ERR`). A request with no `<` line is the one the kernel is stuck on.
import { appendFileSync } from 'node:fs';

/** JSON with bigints (exact times) as numbers' text. */
const json = (x: unknown) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
export function tracedFs<T extends object>(fs: T, file: string): T {
  let seq = 0;
  return new Proxy(fs, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const id = seq++;
        const a = args.slice(1).map((x) => (Buffer.isBuffer(x) ? `buf${x.length}` : json(x))).join(' ');
        appendFileSync(file, `> ${id} ${String(prop)} ${a}\n`);
        const r = v.apply(target, args);
        if (r && typeof (r as Promise<unknown>).then === 'function') {
          (r as Promise<unknown>).then((x) => appendFileSync(file, `< ${id} ${String(prop)} ok ${json(x)?.slice(0, 100)}\n`), (e) => appendFileSync(file, `< ${id} ${String(prop)} ERR ${String(e)}\n`));
        }
        return r;
      };
    },
  });
}
