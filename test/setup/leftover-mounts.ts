// After each test file: no mount made through mountForTest may outlive it, even when a test timed out.
import { afterAll } from 'vitest';
import { unmountLeftovers } from '../helpers/fuse-mount.js';

afterAll(async () => {
  const n = await unmountLeftovers();
  if (n > 0) console.warn(`unmounted ${n} mount(s) a test left behind`);
});
