/**
 * Sends invoice emails with nodemailer: over SMTP when SMTP_URL is set, otherwise into a local
 * outbox of .eml files (what `npm start` uses, so a newcomer can open the mail it would send).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Config } from '../core/config';

export interface InvoiceEmail {
  from: string;
  to: string;
  subject: string;
  text: string;
  /** Our own Message-ID, the same on every attempt, so a resend after a crash can be recognised. */
  messageId: string;
  /** The PDF first (its name names the outbox file), then any e-invoice. */
  attachments: { filename: string; content: Buffer; contentType: 'application/pdf' | 'application/xml' }[];
}

export interface SentEmail {
  messageId: string;
  /** The SMTP server's answer (usually with its queue id), or where the outbox file went. */
  response: string;
}

export interface Mailer {
  /** Where mail goes, without credentials, for the start-up report: "emailed via smtp://host:587". */
  readonly target: string;
  send(mail: InvoiceEmail): Promise<SentEmail>;
  close(): void;
}

function message(mail: InvoiceEmail) {
  return {
    from: mail.from,
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    messageId: mail.messageId,
    attachments: mail.attachments,
  };
}

/** The name in INVOICE_FROM ("Fees API <invoices@example.com>" → "Fees API"), or the address. */
export function issuerName(from: string): string {
  return /^\s*"?([^"<]+?)"?\s*</.exec(from)?.[1] ?? from;
}

/** The address in a From header ("Fees API <invoices@example.com>" → invoices@example.com). */
export const mailAddress = (from: string) => /<([^<>]*)>\s*$/.exec(from)?.[1] ?? from.trim();

export function mailDomain(from: string): string {
  return /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? 'localhost';
}

export const outboxDir = (config: Config) => path.join(config.dataDir, 'outbox');

export function createMailer(config: Config): Mailer {
  if (config.smtp.url) {
    const url = new URL(config.smtp.url);
    const transport = nodemailer.createTransport({
      url: config.smtp.url,
      connectionTimeout: config.smtp.timeoutMs,
      greetingTimeout: config.smtp.timeoutMs,
      socketTimeout: config.smtp.timeoutMs,
      dnsTimeout: config.smtp.timeoutMs,
    });
    return {
      target: `emailed via ${url.protocol}//${url.host}`,
      async send(mail) {
        const info = await transport.sendMail(message(mail));
        return { messageId: info.messageId, response: info.response };
      },
      close: () => transport.close(),
    };
  }

  const dir = outboxDir(config);
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    target: `written as .eml files to ${dir}`,
    async send(mail) {
      const info = await transport.sendMail(message(mail));
      await mkdir(dir, { recursive: true });
      // Written under a temporary name and renamed: a reader never sees half a message.
      const file = path.join(dir, `${mail.attachments[0].filename.replace(/\.pdf$/, '')}.eml`);
      await writeFile(`${file}.tmp`, info.message as Buffer);
      await rename(`${file}.tmp`, file);
      return { messageId: info.messageId, response: `written to ${file}` };
    },
    close: () => undefined,
  };
}
