// A local HTTP file server on 127.0.0.1 (ephemeral port) for download tests: supports
// "Range: bytes=N-" and can be told to cut a response short or to ignore ranges.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServerOptions {
  /** For the first request of each path: send this many body bytes, then drop the connection. */
  cutFirstAfter?: number;
  /** Answer Range requests with the whole file (200), like a server without range support. */
  ignoreRange?: boolean;
}

export interface TestServer {
  baseUrl: string;
  requests: { path: string; range: string | null; status: number }[];
  close(): Promise<void>;
}

export async function startFileServer(files: Record<string, Uint8Array>, opts: ServerOptions = {}): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const seen = new Set<string>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/^\//, ''));
    const range = req.headers.range ?? null;
    const body = files[path];
    const log = (status: number) => requests.push({ path, range, status });
    if (!body) {
      log(404);
      res.writeHead(404).end('not found');
      return;
    }
    const first = !seen.has(path);
    seen.add(path);
    let start = 0;
    const m = range && !opts.ignoreRange ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        log(416);
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      log(206);
      res.writeHead(206, {
        'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'Content-Length': String(body.length - start),
      });
    } else {
      log(200);
      res.writeHead(200, { 'Content-Length': String(body.length) });
    }
    const rest = body.subarray(start);
    if (first && opts.cutFirstAfter !== undefined) {
      res.write(rest.subarray(0, opts.cutFirstAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(rest);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
