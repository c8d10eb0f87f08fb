// A real SMTP server for tests, run as its own process (`node smtp-sink.js serve`): listens on
// loopback, prints {"port":N} once, then one JSON line per message received (envelope, subject,
// text). Without the argument it does nothing, since the test runner also loads every helper.
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

if (process.argv[2] === 'serve') serve();

function serve(): void {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail) => {
          const line = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
            to: session.envelope.rcptTo.map((r) => r.address),
            header_from: mail.from?.text ?? null,
            subject: mail.subject ?? '',
            text: mail.text ?? '',
          };
          process.stdout.write(`${JSON.stringify(line)}\n`);
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });

  server.listen(0, '127.0.0.1', () => {
    const address = server.server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
