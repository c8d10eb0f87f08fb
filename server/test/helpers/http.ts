import http, { type IncomingHttpHeaders } from 'node:http';

export interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  body: any;
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * One HTTP request with exactly the headers given (node:http adds only Host and Connection;
 * Content-Length is set here when there is a body), so tests control what the server sees.
 */
export function request(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Res> {
  const target = new URL(base);
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const allHeaders: Record<string, string> = { ...headers };
  if (payload !== undefined) allHeaders['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, method, path, headers: allHeaders }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parseBody(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}
