import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface Leak {
  file: string;
  line: number;
  /** The secret's first characters and length, so the report does not leak it again. */
  secret: string;
}

export interface LogCheck {
  secrets: number;
  files: number;
  lines: number;
  leaks: Leak[];
}

const key = (text: string, i: number) => text.charCodeAt(i) * 2 ** 32 + text.charCodeAt(i + 1) * 2 ** 16 + text.charCodeAt(i + 2);

/**
 * Looks for every secret of `<dir>/secrets.txt` in every `*.log` file of `dir`: each line of an
 * in-process server's log, and each JSON line of a spawned server's output (its other lines are
 * the CLI's own prints, such as the operator token shown once at first start, by design).
 * Secrets are indexed by their first three characters, so the scan is one pass over the logs.
 */
export function checkLogs(dir: string): LogCheck {
  let secretsText = '';
  try {
    secretsText = readFileSync(path.join(dir, 'secrets.txt'), 'utf8');
  } catch {
    // no secrets recorded
  }
  const secrets = [...new Set(secretsText.split('\n').filter((s) => s.length >= 3))];
  const byPrefix = new Map<number, string[]>();
  for (const secret of secrets) {
    // As it is, and as it would be inside a JSON string (pino escapes quotes and backslashes).
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1)])) {
      const k = key(form, 0);
      const list = byPrefix.get(k) ?? [];
      list.push(form);
      byPrefix.set(k, list);
    }
  }
  const result: LogCheck = { secrets: secrets.length, files: 0, lines: 0, leaks: [] };
  for (const name of readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort()) {
    result.files++;
    const jsonOnly = name.startsWith('process-');
    const lines = readFileSync(path.join(dir, name), 'utf8').split('\n');
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n] as string;
      if (line === '' || (jsonOnly && !line.startsWith('{'))) continue;
      result.lines++;
      for (let i = 0; i + 2 < line.length; i++) {
        const candidates = byPrefix.get(key(line, i));
        if (candidates === undefined) continue;
        for (const secret of candidates) {
          if (!line.startsWith(secret, i)) continue;
          const shown = `${secret.slice(0, 6)}… (${secret.length} chars)`;
          const last = result.leaks.at(-1);
          if (last?.file !== name || last.line !== n + 1 || last.secret !== shown) result.leaks.push({ file: name, line: n + 1, secret: shown });
        }
      }
    }
  }
  return result;
}
