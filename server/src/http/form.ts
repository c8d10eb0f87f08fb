import { isAscii } from 'node:buffer';
import { OAuthError } from '../domain/errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeComponent(text: string, where: string): string {
  // Most values (client ids, secrets, grant types) need no decoding at all.
  if (!text.includes('%') && !text.includes('+')) return text;
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    throw new OAuthError('invalid_request', `${where} is not valid percent-encoded UTF-8`);
  }
}

/**
 * Parses an application/x-www-form-urlencoded body strictly: the bytes and every percent-escape
 * must be UTF-8, and a parameter sent twice is an error (RFC 6749 §3.2).
 */
export function parseForm(body: Buffer): Map<string, string> {
  let text: string;
  if (isAscii(body)) text = body.toString('latin1');
  else {
    try {
      text = utf8.decode(body);
    } catch {
      throw new OAuthError('invalid_request', 'the request body is not valid UTF-8');
    }
  }
  const params = new Map<string, string>();
  if (text.length === 0) return params;
  // Most bodies (client ids, secrets, grant types) hold no escape anywhere: one look, no decoding.
  const plain = !text.includes('%') && !text.includes('+');
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    const name = plain ? rawName : decodeComponent(rawName, 'a parameter name');
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const value = plain ? rawValue : decodeComponent(rawValue, `parameter ${JSON.stringify(name.slice(0, 40))}`);
    if (params.has(name)) throw new OAuthError('invalid_request', `parameter ${JSON.stringify(name.slice(0, 40))} is repeated; send each parameter once`);
    params.set(name, value);
  }
  return params;
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const semi = header.indexOf(';');
  return (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
}

/** Reads HTTP Basic client credentials, each part form-urlencoded as RFC 6749 §2.3.1 says. */
export function parseBasic(header: string): { clientId: string; clientSecret: string } {
  const encoded = header.slice(6).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new OAuthError('invalid_client', 'the Basic authorization header is not valid base64');
  }
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    throw new OAuthError('invalid_client', 'the Basic authorization header is not valid UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new OAuthError('invalid_client', 'the Basic authorization header must hold client_id:client_secret');
  try {
    return {
      clientId: decodeComponent(decoded.slice(0, colon), 'the Basic client_id'),
      clientSecret: decodeComponent(decoded.slice(colon + 1), 'the Basic client_secret'),
    };
  } catch {
    throw new OAuthError('invalid_client', 'the Basic credentials are not valid form-urlencoded UTF-8');
  }
}
