import { credentialsFromEnv, isMain, serveCallbacks, YouduClient, type AppCredentials, type CallbackServer } from '../../client/src/index.ts';

/**
 * An SMS gateway receiver for the built-in app sysSmsAssistant. People send SMS from the Qiao client; Qiao
 * calls this gateway back with `{ msgType: "sms", fromUser, sms: { mobiles, content } }`; the gateway hands
 * each number to its SMS provider and answers which ones it took (`encrypt: { success, fail }`). Replies
 * that come back by SMS are delivered to the person in Qiao with `/cgi/msg/send` (msgType sms).
 */
export interface SmsProvider {
  send(mobile: string, text: string): Promise<boolean>;
}

/** A provider that accepts mainland mobile numbers and keeps what it "sent" (stand-in for a real one). */
export function memoryProvider(): SmsProvider & { sent: Array<{ mobile: string; text: string }> } {
  const sent: Array<{ mobile: string; text: string }> = [];
  return {
    sent,
    async send(mobile, text) {
      if (!/^1\d{10}$/.test(mobile)) return false;
      sent.push({ mobile, text });
      return true;
    },
  };
}

export interface SmsGateway {
  url: string;
  /** Delivers an SMS reply from `from` to the person `toUser` in Qiao. */
  deliverReply(from: string, content: string, toUser: string): Promise<void>;
  close(): Promise<void>;
}

export async function startSmsGateway(app: AppCredentials & { callbackToken: string }, provider: SmsProvider, opts: { port?: number } = {}): Promise<SmsGateway> {
  const youdu = new YouduClient(app);
  const server: CallbackServer = await serveCallbacks(
    { appId: app.appId, encodingAesKey: app.encodingAesKey, token: app.callbackToken },
    async (m) => {
      if (m.msgType !== 'sms') return { errcode: 0 };
      const success: string[] = [];
      const fail: string[] = [];
      for (const mobile of m.sms.mobiles as string[]) ((await provider.send(mobile, `${m.sms.content}【${m.fromUser}】`)) ? success : fail).push(mobile);
      return { errcode: 0, encrypt: { success, fail } };
    },
    { port: opts.port },
  );
  return {
    url: server.url,
    deliverReply: (from, content, toUser) => youdu.sendMessage({ toUser: [toUser] }, 'sms', { from, content }),
    close: () => server.close(),
  };
}

if (isMain(import.meta.url)) {
  // node sms-gateway/src/sms-gateway.ts   (YOUDU_* env of sysSmsAssistant incl. YOUDU_CALLBACK_TOKEN, PORT)
  const provider = memoryProvider();
  const gw = await startSmsGateway(credentialsFromEnv(), provider, { port: Number(process.env.PORT ?? 8083) });
  console.log(`SMS gateway receiver on ${gw.url}: set it as sysSmsAssistant's callback URL`);
}
