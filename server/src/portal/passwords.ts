import { ApiError } from '../domain/errors.js';

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

// argon2id (the library's default algorithm) with OWASP's second configuration: 19 MiB, 2 passes.
export const ARGON2_OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

// The most common passwords of 12 characters or more in public breach lists; shorter ones are
// already refused by the length rule.
const COMMON = new Set([
  '123456789012',
  '1234567890123',
  '12345678901234',
  '123456789123',
  '111111111111',
  '000000000000',
  '123123123123',
  '123412341234',
  '121212121212',
  '987654321098',
  'password1234',
  'password12345',
  'password123456',
  'passwordpassword',
  'password1234567',
  'qwertyuiopasdfgh',
  'qwertyuiop12',
  'qwertyuiop123',
  'qwerty123456',
  'qwertyqwerty',
  '1qaz2wsx3edc',
  '1q2w3e4r5t6y',
  'q1w2e3r4t5y6',
  'asdfghjkl123',
  'zxcvbnm12345',
  'iloveyou1234',
  'iloveyouiloveyou',
  'abcdefghijkl',
  'abcd1234abcd',
  'abc123abc123',
  'aaaaaaaaaaaa',
  'welcome12345',
  'welcome123456',
  'letmein12345',
  'administrator',
  'administrator1',
  'changeme1234',
  'monkey123456',
  'football1234',
  'baseball1234',
  'superman1234',
  'trustno1trustno1',
  'sunshine1234',
  'princess1234',
  'starwars1234',
  'dragon123456',
  'passw0rd1234',
  'p@ssw0rd1234',
  'p@ssword1234',
  'correcthorsebatterystaple',
  'masterpassword',
  'mypassword123',
  'secretpassword',
  'thisismypassword',
  'letmeinletmein',
]);

/** The problem with a new password, in words, or undefined when it is acceptable. */
export function passwordProblem(password: unknown, email?: string): string | undefined {
  if (typeof password !== 'string') return 'password must be a string';
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `password must be at least ${PASSWORD_MIN} characters`;
  if (length > PASSWORD_MAX) return `password must be at most ${PASSWORD_MAX} characters`;
  const lower = password.toLowerCase();
  if (COMMON.has(lower) || new Set(lower).size <= 2) return 'this password is too common; choose one that is harder to guess';
  if (email && lower.includes(email.split('@')[0]!.toLowerCase()) && email.split('@')[0]!.length >= 4) {
    return 'the password must not contain your email address';
  }
  return undefined;
}

export function checkNewPassword(password: unknown, email?: string, field = 'password'): string {
  const problem = passwordProblem(password, email);
  if (problem) throw ApiError.validation(`invalid-${field}`, field === 'password' ? problem : problem.replace(/^password/, 'the new password'));
  return password as string;
}
