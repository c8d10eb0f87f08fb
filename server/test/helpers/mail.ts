import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { recordSecret } from './secrets.js';

const SINK = fileURLToPath(new URL('./smtp-sink.js', import.meta.url));

export interface ReceivedMail {
  from: string | null;
  to: string[];
  header_from: string | null;
  subject: string;
  text: string;
}

/** A real SMTP server process on loopback (the npm package smtp-server) that collects what it receives. */
export class MailSink {
  readonly messages: ReceivedMail[] = [];
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  static start(): Promise<MailSink> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [SINK, 'serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buffer = '';
      let sink: MailSink | undefined;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('the SMTP server did not start in time'));
      }, 15_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (!sink) reject(new Error(`the SMTP server exited with ${code}`));
      });
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk;
        let nl = buffer.indexOf('\n');
        while (nl >= 0) {
          const line = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          if (!sink) {
            clearTimeout(timer);
            sink = new MailSink(child, line.port);
            resolve(sink);
          } else {
            // Mailed links carry single-use secrets: the log check must never find them.
            for (const m of String(line.text).matchAll(/(?:token=|\/invitations\/)([A-Za-z0-9_-]{20,})/g)) recordSecret(m[1]);
            sink.messages.push(line);
          }
          nl = buffer.indexOf('\n');
        }
      });
    });
  }

  /** The first message to `to` (after `skip` earlier ones) whose subject matches, polled until a deadline. */
  async waitFor(to: string, subject: RegExp, { skip = 0, timeoutMs = 15_000 } = {}): Promise<ReceivedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.filter((m) => m.to.includes(to) && subject.test(m.subject))[skip];
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `no mail to ${to} matching ${subject} within ${timeoutMs} ms; received: ${JSON.stringify(this.messages.map((m) => [m.to, m.subject]))}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  count(to: string, subject: RegExp): number {
    return this.messages.filter((m) => m.to.includes(to) && subject.test(m.subject)).length;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

/** The first link in a mail's text. */
export function linkIn(mail: ReceivedMail): string {
  const link = /https?:\/\/\S+/.exec(mail.text)?.[0];
  if (!link) throw new Error(`no link in the mail "${mail.subject}"`);
  return link;
}
