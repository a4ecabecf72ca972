import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { feedHeaders } from '../emulator/filter-feed.ts';
import { HOST_API_PREFIX } from '../emulator/host-api.ts';
import { child, children, parseXml } from '../emulator/xml.ts';

// The host scripts run only on Windows next to an RTX server; here they are checked for what can be checked
// without one: well-formed, ES3-only JScript, and the same wire contract as the emulator.

const dir = path.dirname(fileURLToPath(import.meta.url));
const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');

describe('rtx-host scripts', () => {
  const wsf = parseXml(read('rtx-filter-forwarder.wsf'));
  const job = child(wsf, 'job')!;
  const script = child(job, 'script')!.text;

  it('the .wsf is a well-formed WSH package that imports RTXSAPILib constants', () => {
    assert.equal(wsf.name, 'package');
    assert.equal(child(job, 'script')!.attributes.language, 'JScript');
    assert.equal(child(job, 'reference')!.attributes.object, 'RTXSAPIRootObj.RTXSAPIRootObj');
    assert.deepEqual(children(child(job, 'runtime')!, 'named').map((n) => n.attributes.name), ['config']);
  });

  it('its JScript parses and sticks to what the Windows Script Host (ES3) understands', () => {
    assert.doesNotThrow(() => new Function(script));
    for (const [what, re] of [
      ['arrow functions', /=>/],
      ['let/const', /\b(let|const)\s/],
      ['template literals', /`/],
      ['JSON', /\bJSON\./],
      ['Array.prototype.forEach/map/filter', /\.(forEach|map|filter|reduce)\(/],
      ['String.prototype.trim', /\.trim\(\)/],
      ['Date.now', /Date\.now\(/],
    ] as const) {
      assert.doesNotMatch(script, re, `uses ${what}`);
    }
  });

  it('registers an AA_COPY filter on Tencent.RTX.IM for every sender and receiver', () => {
    assert.match(script, /app\.AppAction = AA_COPY;/);
    assert.doesNotMatch(script, /AA_DISTILL;/);
    assert.match(script, /FilterRequestType = REQUEST_TYPE/);
    assert.match(script, /var REQUEST_TYPE = "Tencent\.RTX\.IM";/);
    for (const f of ['FilterSender = "anyone"', 'FilterReceiver = "anyone"', 'FilterReceiverState = "anystate"', 'FilterResponseType = "none"', 'FilterKey = ""']) {
      assert.ok(script.includes(f), f);
    }
    assert.match(script, /WScript\.ConnectObject\(app, "RTX_"\)/);
    assert.match(script, /function RTX_OnRecvMessage\(message\)/);
  });

  it('sends the same headers as the emulator feed', () => {
    const sent = [...script.matchAll(/setRequestHeader\("([^"]+)"/g)].map((m) => m[1]!.toLowerCase()).sort();
    const emulator = Object.keys(feedHeaders({ seq: 1, sender: 'a', receivers: ['b'], content: '', imMessageId: '' }, 'token')).sort();
    assert.deepEqual(sent, emulator);
  });

  it('the PowerShell API serves the same paths as the emulator and the sample config is complete', () => {
    const ps1 = read('rtx-host-api.ps1');
    for (const p of ['/health', '/org.xml', '/presence']) assert.ok(ps1.includes(`'${HOST_API_PREFIX}${p}'`), p);
    assert.match(ps1, /Invoke-RtxCall2 'USERSYNC' 0x0002/);
    assert.match(ps1, /Invoke-RtxCall2 'SYSTOOLS' 0x2001/);
    const cfg = parseXml(read('rtx-host.config.xml'));
    assert.equal(cfg.name, 'rtxhost');
    for (const el of ['rtx', 'filter', 'agent', 'spool', 'api', 'log']) assert.ok(child(cfg, el), el);
    assert.equal(child(cfg, 'api')!.attributes.port, '18012');
  });
});
