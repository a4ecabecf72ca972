#!/usr/bin/env node
// `npx node bridge-rtx/emulator/main.ts --port 8012`: runs the RTX server emulator until Ctrl-C.
import fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_HOST_PORT, DEFAULT_SDK_PORT, startRtxEmulator } from './emulator.ts';
import { importOrgXml } from './org-xml.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

const program = new Command()
  .name('qiao-rtx-emulator')
  .description('A Tencent RTX server stand-in: the port-8012 HTTP SDK, the RTX-host interface and a control API')
  .option('--port <n>', 'HTTP SDK port', port, DEFAULT_SDK_PORT)
  .option('--bind <address>', 'address the HTTP SDK listens on', '0.0.0.0')
  .option('--host-port <n>', 'RTX-host interface + control API port', port, DEFAULT_HOST_PORT)
  .option('--host-bind <address>', 'address the RTX-host interface and control API listen on', '127.0.0.1')
  .option('--forward-url <url>', 'where the application-filter feed POSTs each IM (the agent)')
  .option('--forward-token <token>', 'bearer token sent with each forwarded IM')
  .option('--host-token <token>', 'bearer token required by the RTX-host interface')
  .option('--control-token <token>', 'bearer token required by the control API')
  .option('--sdk-property <file>', 'SDKProperty.xml with the <sdkhttp><IPLimit> allow-list')
  .option('--org <file>', 'organisation XML (USERSYNC export) to load at start')
  .option('--enterprise <name>', 'enterprise name written into the organisation XML', 'RTX');

program.parse(process.argv);
const o = program.opts<{
  port: number;
  bind: string;
  hostPort: number;
  hostBind: string;
  forwardUrl?: string;
  forwardToken?: string;
  hostToken?: string;
  controlToken?: string;
  sdkProperty?: string;
  org?: string;
  enterprise: string;
}>();

try {
  const emu = await startRtxEmulator({
    port: o.port,
    bind: o.bind,
    hostPort: o.hostPort,
    hostBind: o.hostBind,
    forwardUrl: o.forwardUrl,
    forwardToken: o.forwardToken,
    hostToken: o.hostToken,
    controlToken: o.controlToken,
    sdkPropertyFile: o.sdkProperty,
    enterpriseName: o.enterprise,
  });
  if (o.org) {
    const r = importOrgXml(emu.state.org, fs.readFileSync(o.org), 'replace');
    console.log(`loaded ${r.users} users in ${r.departments} departments from ${o.org}`);
  }
  console.log(`RTX HTTP SDK      ${emu.url}  (SendNotify.cgi, SendIM.cgi, getstatus.php, …)`);
  console.log(`RTX-host interface ${emu.hostUrl}`);
  console.log(`control API        ${emu.controlUrl}`);
  console.log(`filter feed        ${o.forwardUrl ?? '(off: no --forward-url)'}`);
  const shutdown = () => {
    void emu.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} catch (err) {
  console.error(`rtx emulator: ${(err as Error).message}`);
  process.exit(1);
}
