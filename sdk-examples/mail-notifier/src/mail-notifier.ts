import { credentialsFromEnv, isMain, YouduClient, type AppCredentials } from '../../client/src/index.ts';

/**
 * A mail system telling people about new mail through the built-in app sysExmailAssistant: a new-mail
 * notice (subject, sender, a link that opens the mail) and unread-count reminders. Recipients are named
 * by their Qiao account or, when the mail system knows only addresses, by e-mail (`toEmail`).
 */
export interface NewMail {
  to: { account?: string; email?: string };
  from: { account?: string; email?: string };
  subject: string;
  link?: string;
  time?: Date;
}

export class MailNotifier {
  readonly #youdu: YouduClient;
  constructor(app: AppCredentials) {
    this.#youdu = new YouduClient(app);
  }

  async newMail(m: NewMail): Promise<void> {
    await this.#youdu.post('/cgi/msg/send', {
      ...(m.to.account ? { toUser: m.to.account } : { toEmail: m.to.email }),
      msgType: 'mail',
      mail: {
        action: 'new',
        subject: m.subject,
        fromUser: m.from.account ?? '',
        fromEmail: m.from.email ?? '',
        time: Math.floor((m.time ?? new Date()).getTime() / 1000),
        link: m.link ?? '',
      },
    });
  }

  async unread(account: string, unreadCount: number): Promise<void> {
    await this.#youdu.post('/cgi/msg/send', { toUser: account, msgType: 'mail', mail: { action: 'unread', unreadCount } });
  }
}

if (isMain(import.meta.url)) {
  // node mail-notifier/src/mail-notifier.ts <to-email> <from-email> <subject> [link]   (YOUDU_* env of sysExmailAssistant)
  const [to, from, subject, link] = process.argv.slice(2);
  await new MailNotifier(credentialsFromEnv()).newMail({ to: { email: to }, from: { email: from }, subject, link });
  console.log('sent');
}
