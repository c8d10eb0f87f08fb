/** An email to send; the portal sends invitations. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

/** How the portal sends email. The default writes each message to the log; plug in SMTP or an API here. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

/**
 * Notes in the log that an email would have been sent, without its text: an invitation's text
 * holds the link's secret token, and secrets never go to logs. The inviter sees the link in the
 * portal and passes it on.
 */
export class LogMailer implements Mailer {
  /** Where messages go; the app points it at its logger. */
  log: (fields: object, message: string) => void = () => {};

  async send(message: MailMessage): Promise<void> {
    this.log({ to: message.to, subject: message.subject }, 'email not sent: no mail server is configured');
  }
}
