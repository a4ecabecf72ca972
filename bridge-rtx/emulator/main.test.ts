import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportOrgXml } from './org-xml.ts';
import { RtxOrg } from './rtx-org.ts';
import { rawRequest } from './test-support.ts';

const mainTs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');

describe('rtx emulator: command line', () => {
  it('starts on the given ports with an organisation file, serves the SDK, and stops cleanly on SIGTERM', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtx-cli-'));
    const orgFile = path.join(dir, 'org.xml');
    const org = new RtxOrg();
    org.addUser({ uid: 'zhangsan', name: '张三', departments: ['公司'] });
    fs.writeFileSync(orgFile, exportOrgXml(org, { name: '公司' }));
    const child = spawn(process.execPath, [mainTs, '--port', '0', '--host-port', '0', '--bind', '127.0.0.1', '--org', orgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const sdkUrl = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /RTX HTTP SDK\s+(http:\/\/\S+)/.exec(out);
          if (m && out.includes('filter feed')) resolve(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
      });
      assert.match(out, /loaded 1 users in 1 departments/);
      const r = await rawRequest(`${sdkUrl}/getstatus.php?username=zhangsan`);
      assert.equal(r.text, '0');
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
