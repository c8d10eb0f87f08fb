import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  elapsedMs: number;
}

export interface RawRequest {
  method: string;
  /** The request target exactly as sent (path and query), bytes and all. */
  target: string | Buffer;
  /** Header lines in order; a name may repeat. Values are sent as raw bytes. */
  headers?: [string, string | Buffer][];
  body?: Buffer;
  /** How the body is framed: a correct Content-Length (default), chunked, or no framing header at all. */
  framing?: 'length' | 'chunked' | 'none';
  timeoutMs?: number;
}

function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * Sends one HTTP/1.1 request over a fresh TCP connection, byte for byte as given (fetch and
 * node:http would validate or normalise headers, methods and targets), and reads the answer
 * until the server closes. Rejects when nothing complete arrives within the timeout: a hang.
 */
export function rawRequest(base: string, req: RawRequest): Promise<RawResponse> {
  const url = new URL(base);
  const started = performance.now();
  const timeoutMs = req.timeoutMs ?? 5_000;
  const body = req.body ?? Buffer.alloc(0);
  const framing = req.framing ?? 'length';
  const lines: Buffer[] = [Buffer.concat([Buffer.from(`${req.method} `, 'latin1'), Buffer.from(req.target as string | Buffer), Buffer.from(' HTTP/1.1\r\n')])];
  lines.push(Buffer.from(`Host: ${url.host}\r\nConnection: close\r\n`));
  for (const [name, value] of req.headers ?? [])
    lines.push(Buffer.concat([Buffer.from(`${name}: `, 'latin1'), Buffer.from(value as string | Buffer), Buffer.from('\r\n')]));
  if (framing === 'length' && (body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(req.method))) lines.push(Buffer.from(`Content-Length: ${body.length}\r\n`));
  if (framing === 'chunked') lines.push(Buffer.from('Transfer-Encoding: chunked\r\n'));
  lines.push(Buffer.from('\r\n'));
  if (framing === 'chunked') {
    if (body.length > 0) lines.push(Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n'));
    lines.push(Buffer.from('0\r\n\r\n'));
  } else lines.push(body);
  const bytes = Buffer.concat(lines);

  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const data = Buffer.concat(chunks);
      const headEnd = data.indexOf('\r\n\r\n');
      if (headEnd === -1) {
        reject(err ?? new Error(`no complete HTTP answer (${data.length} bytes): ${data.toString('latin1').slice(0, 200)}`));
        return;
      }
      const [statusLine = '', ...headerLines] = data.subarray(0, headEnd).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      let payload: Buffer = data.subarray(headEnd + 4);
      if (headers['transfer-encoding']?.toLowerCase() === 'chunked') payload = decodeChunked(payload);
      else if (headers['content-length'] !== undefined) payload = payload.subarray(0, Number(headers['content-length']));
      const text = payload.toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status, headers, body: payload, text, json, elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms: a hang`)), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A server may answer and close before reading the whole body (413): keep what arrived.
    socket.on('error', (err) => finish(err));
    socket.write(bytes);
  });
}

/** Bytes a header value may carry and still reach the application (RFC 9110 field-value: VCHAR, SP, HTAB, obs-text). */
export function fieldValue(bytes: Uint8Array): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const b = out[i] as number;
    if (b !== 0x09 && (b < 0x20 || b === 0x7f)) out[i] = 0x20 + (b % 0x5e);
  }
  // Leading and trailing whitespace is stripped by the parser anyway.
  return out;
}
