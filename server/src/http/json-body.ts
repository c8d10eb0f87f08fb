import { ApiError } from '../domain/errors.js';

/** A path id: a positive integer, else a 400 naming the parameter. */
export function pathId(raw: string, what: string): number {
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw ApiError.validation(`invalid-${what}`, `${what} must be a positive integer`);
  const id = Number(raw);
  if (!Number.isSafeInteger(id)) throw ApiError.validation(`invalid-${what}`, `${what} is out of range`);
  return id;
}

/** The request body as an object with only the allowed fields, else a 400 saying what is wrong. */
export function jsonObject(body: unknown, allowed: readonly string[], required: readonly string[] = []): Record<string, unknown> {
  if (body === undefined || body === null) {
    if (required.length === 0) return {};
    throw ApiError.validation('missing-body', `send a JSON object with ${required.join(', ')}`);
  }
  if (typeof body !== 'object' || Array.isArray(body)) throw ApiError.validation('invalid-body', 'the request body must be a JSON object');
  const object = body as Record<string, unknown>;
  const unknown = Object.keys(object).find((k) => !allowed.includes(k));
  if (unknown !== undefined) {
    throw ApiError.validation('unknown-field', `unknown field ${JSON.stringify(unknown.slice(0, 50))}; allowed: ${allowed.join(', ')}`);
  }
  const missing = required.find((k) => object[k] === undefined);
  if (missing !== undefined) throw ApiError.validation(`missing-${missing}`, `${missing} is required`);
  return object;
}
