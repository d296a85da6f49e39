// A transparent HTTP proxy in front of the real S3 server that can inject faults (503 SlowDown, 500,
// connection resets) and counts requests. Not an S3 fake: every request it lets through is answered by RGW.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * pass: forwarded; slowdown/error500: answered 503 SlowDown / 500 without reaching RGW; reset: connection
 * dropped before any answer; truncate: RGW's answer forwarded, but the connection is cut half-way through
 * the body; stall: RGW's answer held back for `stallMs` before it is forwarded; hang: the request is read
 * but never forwarded nor answered (RGW never sees it) until the proxy closes.
 */
export type Fault = 'pass' | 'slowdown' | 'error500' | 'reset' | 'truncate' | 'stall' | 'hang';

export interface FaultProxy {
  endpoint: string;
  /** Requests seen, as "METHOD path?query". */
  requests: string[];
  /** Decides the fate of each request; default: pass everything. */
  plan: (method: string, url: string, n: number) => Fault;
  /** How long a `stall` holds a response back (ms). */
  stallMs: number;
  close(): Promise<void>;
}

const SLOWDOWN =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const proxy: FaultProxy = {
    endpoint: '',
    requests: [],
    plan: () => 'pass',
    stallMs: 5000,
    close: async () => undefined,
  };
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const n = proxy.requests.push(`${req.method} ${req.url}`);
    const fault = proxy.plan(req.method ?? 'GET', req.url ?? '/', n);
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') {
      req.resume();
      return;
    }
    if (fault === 'slowdown' || fault === 'error500') {
      req.resume();
      req.on('end', () => {
        res.writeHead(fault === 'slowdown' ? 503 : 500, { 'content-type': 'application/xml' });
        res.end(fault === 'slowdown' ? SLOWDOWN : '<Error><Code>InternalError</Code></Error>');
      });
      return;
    }
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
      (upRes) => {
        const forward = () => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (fault !== 'truncate') {
            upRes.pipe(res);
            return;
          }
          const half = Math.floor(Number(upRes.headers['content-length'] ?? 0) / 2);
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= half) return;
            const part = chunk.subarray(0, half - sent);
            sent += part.length;
            res.write(part);
            if (sent >= half) res.socket?.destroy();
          });
          upRes.on('end', () => res.socket?.destroy());
        };
        if (fault === 'stall') {
          upRes.pause();
          setTimeout(forward, proxy.stallMs);
        } else {
          forward();
        }
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      agent.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
