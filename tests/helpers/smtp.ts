/**
 * A real SMTP peer for the tests (smtp-server on loopback) that keeps every message it accepts,
 * parsed, and a PDF text extractor to read the invoices they carry.
 */
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  user: string | undefined;
  mail: ParsedMail;
  queueId: string;
}

export interface SmtpPeer {
  port: number;
  /** With credentials, as SMTP_URL takes it. */
  url: string;
  received: ReceivedMail[];
  stop: () => Promise<void>;
}

export const SMTP_USER = 'fees';
export const SMTP_PASS = 'test-secret';

/** Listens on `port` (0: any free one); accepts only SMTP_USER / SMTP_PASS. */
export async function startSmtpPeer(port = 0, received: ReceivedMail[] = []): Promise<SmtpPeer> {
  let queued = 0;
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, done) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASS) return done(null, { user: auth.username });
      return done(new Error('invalid credentials'));
    },
    onData(stream, session, done) {
      simpleParser(stream).then(
        (mail) => {
          const queueId = `Q${++queued}`;
          received.push({ user: session.user as string | undefined, mail, queueId });
          done(null, `queued as ${queueId}`);
        },
        (err) => done(err),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `smtp://${SMTP_USER}:${SMTP_PASS}@127.0.0.1:${actual}`,
    received,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The text of a PDF, as pdf.js (through pdf-parse) extracts it. */
export function pdfText(pdf: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [path.join(__dirname, 'pdf-text.mjs')], (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
    child.stdin!.end(pdf);
  });
}
