// Starts one throwaway Ceph RGW on 127.0.0.1 for the whole test run and stops it afterwards,
// unless S3_ENDPOINT is already set (a server someone else runs) or GRADIENT_TEST_S3=off (unit tests only).
import { exportRgwEnv, startRgw } from './helpers/rgw.js';

export default async function setup(): Promise<(() => void) | undefined> {
  if (process.env.S3_ENDPOINT || process.env.GRADIENT_TEST_S3 === 'off') return undefined;
  const rgw = await startRgw({ name: 'test', memstoreBytes: '16G' });
  exportRgwEnv(rgw);
  return rgw.stop;
}
