#!/usr/bin/env node
/**
 * The RTX agent as a program, run beside the RTX server:
 *
 *   npx node bridge-rtx/agent/main.ts --qiao ws://qiao.example.com:7035 --code QIAO-XXXX-XXXX-XXXX \
 *     --rtx-sdk http://127.0.0.1:8012 --rtx-host http://127.0.0.1:18012/rtxhost/v1 --rtx-host-token … \
 *     --feed-port 7610 --feed-token … --relay-account qiao-relay --relay-password …
 *
 * The code is needed once: the credential it is exchanged for is kept in --state-dir. SIGINT/SIGTERM stop it
 * cleanly; SIGKILL loses nothing that was acknowledged (the journals are fsynced).
 */
import { Command } from 'commander';
import { startAgent } from './agent.ts';

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

const program = new Command()
  .name('qiao-rtx-agent')
  .description('Links a Tencent RTX server to Qiao (runs beside the RTX server)')
  .requiredOption('--qiao <url>', 'the bridge plugin link, ws://host:7035')
  .option('--code <code>', 'connection code from the admin console (first start only)')
  .option('--name <name>', 'how this agent shows in the admin console', 'rtx-agent')
  .option('--state-dir <dir>', 'journals, credential and RTX passwords', './rtx-agent-state')
  .option('--rtx-sdk <url>', "RTX's HTTP SDK", 'http://127.0.0.1:8012')
  .option('--rtx-host <url>', 'the RTX-host interface', 'http://127.0.0.1:18012/rtxhost/v1')
  .option('--rtx-host-token <token>', 'bearer token of the RTX-host interface (or RTX_HOST_TOKEN)')
  .option('--sdk-local-address <ip>', 'source address for SDK calls (the one SDKProperty.xml allows)')
  .option('--feed-port <port>', 'port the filter forwarder posts to', (v) => Number(v), 7610)
  .option('--feed-bind <ip>', 'address of the feed port', '0.0.0.0')
  .option('--feed-token <token>', 'bearer token the forwarder sends (or RTX_FEED_TOKEN)')
  .option('--sdk-proxy-port <port>', 'offer SendNotify.cgi & co. to OA systems on this port', (v) => Number(v))
  .option('--sdk-proxy-bind <ip>', 'address of the SDK pages', '0.0.0.0')
  .option('--sdk-proxy-allow <ips>', 'callers allowed besides loopback, comma-separated', list, [])
  .option('--relay-account <uid>', 'RTX account that relays for people without a stored RTX password')
  .option('--relay-password <pwd>', 'its password (or RTX_RELAY_PASSWORD)')
  .option('--presence-interval <seconds>', 'presence polling interval', (v) => Number(v));

program.parse();
const opts = program.opts<{
  qiao: string;
  code?: string;
  name: string;
  stateDir: string;
  rtxSdk: string;
  rtxHost: string;
  rtxHostToken?: string;
  sdkLocalAddress?: string;
  feedPort: number;
  feedBind: string;
  feedToken?: string;
  sdkProxyPort?: number;
  sdkProxyBind: string;
  sdkProxyAllow: string[];
  relayAccount?: string;
  relayPassword?: string;
  presenceInterval?: number;
}>();

const relayPassword = opts.relayPassword ?? process.env.RTX_RELAY_PASSWORD;
const agent = await startAgent({
  qiaoUrl: opts.qiao,
  code: opts.code,
  name: opts.name,
  stateDir: opts.stateDir,
  rtxSdkUrl: opts.rtxSdk,
  rtxHostUrl: opts.rtxHost,
  rtxHostToken: opts.rtxHostToken ?? process.env.RTX_HOST_TOKEN,
  sdkLocalAddress: opts.sdkLocalAddress,
  feed: { port: opts.feedPort, bind: opts.feedBind, token: opts.feedToken ?? process.env.RTX_FEED_TOKEN },
  sdkProxy: opts.sdkProxyPort !== undefined ? { port: opts.sdkProxyPort, bind: opts.sdkProxyBind, allow: opts.sdkProxyAllow } : undefined,
  relay: opts.relayAccount ? { account: opts.relayAccount, password: relayPassword ?? '' } : undefined,
  presenceIntervalMs: opts.presenceInterval ? opts.presenceInterval * 1000 : undefined,
});
console.log(`[rtx-agent] feed at ${agent.feedUrl}${agent.sdkProxyUrl ? `, SDK pages at ${agent.sdkProxyUrl}` : ''}; linking to ${opts.qiao}`);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    agent.stop().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`[rtx-agent] stop failed: ${err.message}`);
        process.exit(1);
      },
    );
  });
}
