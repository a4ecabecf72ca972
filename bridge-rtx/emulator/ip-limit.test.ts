import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import iconv from 'iconv-lite';
import { startRtxEmulator, type RtxEmulator } from './emulator.ts';
import { IP_LIMITED_TEXT } from './rtx-fault.ts';
import { ipAllowed, parseSdkProperty } from './sdk-property.ts';
import { SUCCESS_TEXT } from './sdk-routes.ts';
import { control, sdk } from './test-support.ts';

// 127.0.0.2 is on the loopback interface but is not "the RTX server itself", so it stands in for a LAN host.
const LAN_HOST = '127.0.0.2';

function sdkProperty(enabled: boolean, ips: string[]): string {
  return [
    '<?xml version="1.0" encoding="gb2312"?>',
    '<Property>',
    '  <!-- 允许调用 SDK 的机器 -->',
    '  <APIClient><IPLimit Enabled="1"><IP>127.0.0.1</IP><IP>127.0.0.2</IP></IPLimit></APIClient>',
    `  <sdkhttp><IPLimit Enabled="${enabled ? 1 : 0}">${ips.map((ip) => `<IP>${ip}</IP>`).join('')}</IPLimit></sdkhttp>`,
    '</Property>',
  ].join('\r\n');
}

describe('rtx emulator: SDKProperty.xml IP limit', () => {
  let dir: string;
  let file: string;
  let emu: RtxEmulator;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtx-sdkprop-'));
    file = path.join(dir, 'SDKProperty.xml');
    fs.writeFileSync(file, iconv.encode(sdkProperty(true, ['192.168.10.100']), 'gbk'));
    emu = await startRtxEmulator({ port: 0, hostPort: 0, sdkPropertyFile: file });
    await control(emu, 'POST', '/users', { uid: 'lisi' });
  });
  afterEach(async () => {
    await emu.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a host not in <sdkhttp><IPLimit> with HTTP 200 and the RTX text in GBK, and does nothing', async () => {
    const r = await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'lisi', msg: 'x' }, localAddress: LAN_HOST });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=gb2312');
    assert.deepEqual(r.raw, iconv.encode(IP_LIMITED_TEXT, 'gbk'));
    assert.equal(r.text, 'IP 受限，请联系管理员开放您的 IP');
    assert.equal((await control(emu, 'GET', '/users/lisi/inbox')).notifications.length, 0);
    // Every page is behind the limit, the read-only ones too.
    assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'lisi' }, localAddress: LAN_HOST })).text, IP_LIMITED_TEXT);
  });

  it('always lets the RTX server itself (127.0.0.1) in', async () => {
    assert.equal((await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'lisi', msg: 'x' } })).text, SUCCESS_TEXT);
  });

  it('takes a changed file into account after a reload (RTX: after restarting RTX_HTTPServer)', async () => {
    fs.writeFileSync(file, sdkProperty(true, ['192.168.10.100', LAN_HOST]));
    assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'lisi' }, localAddress: LAN_HOST })).text, IP_LIMITED_TEXT);
    const limit = await control(emu, 'POST', '/sdk-property/reload');
    assert.deepEqual(limit, { enabled: true, ips: ['192.168.10.100', LAN_HOST] });
    assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'lisi' }, localAddress: LAN_HOST })).text, '0');
    fs.writeFileSync(file, sdkProperty(false, []));
    emu.reloadSdkProperty();
    assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'lisi' }, localAddress: LAN_HOST })).text, '0');
  });

  it('reads only the <sdkhttp> section and refuses a file with a DOCTYPE', () => {
    assert.deepEqual(parseSdkProperty(sdkProperty(false, ['10.0.0.1'])), { enabled: false, ips: ['10.0.0.1'] });
    assert.deepEqual(parseSdkProperty('<Property><APIClient><IPLimit Enabled="1"><IP>1.2.3.4</IP></IPLimit></APIClient></Property>'), { enabled: false, ips: [] });
    assert.throws(() => parseSdkProperty('<!DOCTYPE Property [<!ENTITY x "y">]><Property/>'), /DOCTYPE/);
    const limit = { enabled: true, ips: ['10.0.0.1'] };
    assert.equal(ipAllowed(limit, '::ffff:10.0.0.1'), true);
    assert.equal(ipAllowed(limit, '::1'), true);
    assert.equal(ipAllowed(limit, '10.0.0.2'), false);
  });
});
