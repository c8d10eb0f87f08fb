export const NAME_MAX = 100;
export const DESCRIPTION_MAX = 500;

// C0 and C1 control characters, DEL, and the Unicode line/paragraph separators.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Returns the problem with a display name, or undefined when it is fine. */
export function nameProblem(value: unknown, field = 'name', max = NAME_MAX): string | undefined {
  if (typeof value !== 'string') return `${field} must be a string`;
  const trimmed = value.trim();
  if (trimmed.length === 0) return `${field} must not be empty`;
  if ([...trimmed].length > max) return `${field} must be at most ${max} characters`;
  if (CONTROL.test(trimmed)) return `${field} must not contain control characters`;
  return undefined;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/; // RFC 6749 §3.3 scope-token, bounded

export function scopeProblem(scopes: unknown): string | undefined {
  if (!Array.isArray(scopes)) return 'scopes must be an array of strings';
  if (scopes.length > 50) return 'scopes must have at most 50 entries';
  for (const scope of scopes) {
    if (typeof scope !== 'string' || !SCOPE_TOKEN.test(scope)) {
      return `scope ${JSON.stringify(scope)} is not valid: use 1 to 64 printable ASCII characters without spaces, quotes or backslashes`;
    }
  }
  if (new Set(scopes).size !== scopes.length) return 'scopes must not repeat';
  return undefined;
}
