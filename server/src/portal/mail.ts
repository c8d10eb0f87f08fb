import { createRequire } from 'node:module';
import type { Transporter } from 'nodemailer';

/** An email the portal sends: verification, password reset, invitation, notices. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

/** Whether a message left for its recipient; without a mail server nothing is sent. */
export type MailOutcome = 'sent' | 'not-sent';

/** How the portal sends email. */
export interface Mailer {
  /** Whether messages can be delivered at all (a mail server is configured). */
  readonly delivers: boolean;
  send(message: MailMessage): Promise<MailOutcome>;
}

/**
 * Without a mail server: notes in the log that an email was not sent, without its text, since
 * mailed links hold single-use secrets and secrets never go to logs.
 */
export class LogMailer implements Mailer {
  readonly delivers = false;
  /** Where notes go; the app points it at its logger. */
  log: (fields: object, message: string) => void = () => {};

  async send(message: MailMessage): Promise<MailOutcome> {
    this.log({ to: message.to, subject: message.subject }, 'email not sent: no mail server is configured (PORTCULLIS_SMTP_URL)');
    return 'not-sent';
  }
}

/** Sends over SMTP with nodemailer (PORTCULLIS_SMTP_URL, e.g. smtps://user:pass@mail.example.com:465). */
export class SmtpMailer implements Mailer {
  readonly delivers = true;
  private readonly transport: Transporter;
  /** Where failures are noted; the app points it at its logger. */
  log: (fields: object, message: string) => void = () => {};

  constructor(
    url: string,
    private readonly from: string,
  ) {
    // nodemailer is loaded only when a mail server is configured: a server without one never carries it.
    const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof import('nodemailer');
    this.transport = nodemailer.createTransport(url);
  }

  /** A failed delivery is logged and answered as not sent: the caller tells the person, never a 500. */
  async send(message: MailMessage): Promise<MailOutcome> {
    try {
      await this.transport.sendMail({ from: this.from, to: message.to, subject: message.subject, text: message.text });
      return 'sent';
    } catch (err) {
      this.log(
        { to: message.to, subject: message.subject, err: { message: (err as Error).message, code: (err as { code?: string }).code } },
        'email could not be sent',
      );
      return 'not-sent';
    }
  }

  close(): void {
    this.transport.close();
  }
}
