import type { LoggerOptions } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * Log lines for a person at a terminal, JSON for everything else (journald, container logs,
 * collectors). Pretty printing runs in pino's worker thread (a transport), off the event loop.
 */
export function logDestination(format: LogFormat, isTTY = process.stdout.isTTY === true): Pick<LoggerOptions, 'transport'> {
  const pretty = format === 'pretty' || (format === 'auto' && isTTY);
  if (!pretty) return {};
  return {
    transport: {
      target: 'pino-pretty',
      options: { colorize: isTTY, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname', singleLine: false },
    },
  };
}
