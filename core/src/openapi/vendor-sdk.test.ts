import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { chatWithApp, startOpenApi, type OpenApiApp } from './test-kit.ts';

/**
 * The vendor's own Java SDK (youduim/youdu-sdk-java), compiled unchanged from its source, against a running
 * Qiao. The SDK is never part of this repository: point QIAO_YOUDU_SDK_JAVA at a checkout of it (the folder
 * holding src/main/java). Its dependencies come from Debian's packages (libgoogle-gson-java,
 * libhttpclient-java, libhttpcore-java, libhttpmime-java, libcommons-logging-java) under /usr/share/java,
 * or QIAO_YOUDU_SDK_JAVA_CP. Without the SDK, a JDK or the jars, the test reports itself pending and says why.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DRIVER = path.join(ROOT, 'test', 'vendor-sdk', 'YouduJavaSdkDriver.java');
const JARS = ['gson.jar', 'httpclient.jar', 'httpcore.jar', 'httpmime.jar', 'commons-logging.jar'].map((j) => path.join('/usr/share/java', j));
const EXPORTS = '--add-exports=java.xml/com.sun.org.apache.xerces.internal.impl.dv.util=ALL-UNNAMED';

function missing(): string | null {
  const sdk = process.env.QIAO_YOUDU_SDK_JAVA;
  if (!sdk) return 'QIAO_YOUDU_SDK_JAVA is not set (a checkout of youduim/youdu-sdk-java; see the comment at the top of this file)';
  if (!fs.existsSync(path.join(sdk, 'src', 'main', 'java', 'im', 'youdu', 'sdk'))) return `${sdk} holds no src/main/java/im/youdu/sdk`;
  for (const tool of ['javac', 'java']) if (spawnSync(tool, ['-version'], { stdio: 'ignore' }).error) return `${tool} is not installed`;
  const cp = process.env.QIAO_YOUDU_SDK_JAVA_CP?.split(path.delimiter) ?? JARS;
  const absent = cp.filter((j) => !fs.existsSync(j));
  if (absent.length) return `the SDK's dependencies are missing: ${absent.join(', ')}`;
  return null;
}

function javaFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? javaFiles(path.join(dir, e.name)) : e.name.endsWith('.java') ? [path.join(dir, e.name)] : []));
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

forEachDatabase('vendor Java SDK against Qiao', ({ url }) => {
  const why = missing();
  let app: OpenApiApp;
  let work: string;
  let classes: string;
  const cp = () => [classes, ...(process.env.QIAO_YOUDU_SDK_JAVA_CP?.split(path.delimiter) ?? JARS)].join(path.delimiter);

  before(async function () {
    if (why) return;
    this.timeout(180_000);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-youdu-sdk-'));
    classes = path.join(work, 'classes');
    const sources = [...javaFiles(path.join(process.env.QIAO_YOUDU_SDK_JAVA!, 'src', 'main', 'java')), DRIVER];
    const compiled = await run('javac', ['-nowarn', '-encoding', 'UTF-8', EXPORTS, '-cp', cp(), '-d', classes, ...sources]);
    assert.equal(compiled.code, 0, compiled.out);
    app = await startOpenApi(url());
  });
  after(async () => {
    await app?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it(why ? `PENDING — vendor Java SDK not run: ${why}` : 'obtains a token, sends text/link/file/sysMsg, uploads and downloads a file, manages departments and users, identifies an SSO token', async function () {
    if (why) this.skip();
    this.timeout(180_000);
    const dept = await app.admin<{ id: number }>('org.departments.create', { name: '接收部' });
    const receiver = await app.admin<{ id: number }>('org.users.create', { account: 'sdk.receiver', name: '收件人', departments: [{ departmentId: dept.id }] });
    const oa = await app.admin<{ appId: string; encodingAesKey: string }>('apps.create', { name: 'Java OA' });
    const key = async (id: string) => (await app.appInfo(id)).encodingAesKey;
    const sso = await app.call<{ token: string }>('apps.sso.issue', { userId: receiver.id });
    const host = new URL(app.base).host;
    const before = (await app.admin<{ total: number }>('im.broadcasts.list')).total;
    const r = await run('java', [EXPORTS, '-cp', cp(), 'YouduJavaSdkDriver', host, String(app.buin), oa.appId, oa.encodingAesKey, await key('sysMsgAssistant'), await key('sysOrgAssistant'), 'sdk.receiver', sso.token, work]);
    const lines = r.out.split('\n').filter((l) => /^(OK|FAIL|DONE)/.test(l));
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(
      lines.filter((l) => l.startsWith('OK')).map((l) => l.split(' ')[1]),
      [
        'AppTokenClient.getToken',
        'AppClient.sendTextMsg',
        'AppClient.sendLinkMsg',
        'AppClient.uploadFileWithBytes',
        'AppClient.downloadFileAndSave',
        'AppClient.sendFileMsgWithMediaId',
        'SysMsgClient.sendSysMsg',
        'OrgClient.createDept(id)',
        'OrgClient.createDept(auto',
        'OrgClient.updateDept',
        'OrgClient.getDept',
        'OrgClient.listDeptSelfAndChildren',
        'OrgClient.getDeptIdByAlias',
        'OrgClient.createUser',
        'OrgClient.updateUser',
        'OrgClient.getUserInfo',
        'IdentifyClient.idetify',
        'OrgClient.deleteUser',
        'OrgClient.deleteDept',
      ],
    );
    const line = (name: string) => lines.find((l) => l.startsWith(`OK ${name} `))!.slice(`OK ${name} `.length);
    assert.equal(line('OrgClient.createDept(id)'), '9001');
    assert.equal(line('OrgClient.getDeptIdByAlias'), '9001');
    // Gender 0: the SDK's UserInfo starts at gender 0 and updateUser sends it, so the update resets it.
    assert.match(line('OrgClient.getUserInfo'), /^java\.sdk Java SDK 用户\(改\) 0 \[9001, \d+\] java\.sdk@example\.com$/);
    assert.equal(line('IdentifyClient.idetify'), `sdk.receiver ${receiver.id}`);
    // What Qiao holds afterwards.
    // What Qiao holds afterwards: the app's messages in the receiver's chat with it, the system message as a broadcast.
    const chat = await chatWithApp(app, oa.appId, receiver.id);
    assert.deepEqual(chat.map((m) => m.type), ['text', 'link', 'file']);
    assert.equal(chat[1].body.url, 'https://oa.example.com/todo/42');
    const { broadcasts, total } = await app.admin<{ total: number; broadcasts: Array<{ type: string; title: string; body: any }> }>('im.broadcasts.list');
    assert.equal(total - before, 1);
    assert.equal(broadcasts[0].body.title, 'Java SDK 系统消息');
    const depts = (await app.admin<{ departments: Array<{ id: number; name: string; alias: string | null }> }>('org.departments.list')).departments;
    assert.deepEqual(depts.filter((d) => d.id === 9001).map((d) => [d.name, d.alias]), [['Java SDK 部门', 'javasdk']]);
    assert.equal(depts.length, 2, 'the child department was deleted');
    assert.equal((await app.admin<{ status: string }>('org.users.byAccount', { account: 'java.sdk' })).status, 'resigned');
  });
});

/**
 * The vendor's own Python SDK (youduim/youdu-sdk-python), imported unchanged: QIAO_YOUDU_SDK_PY names a
 * checkout (the folder holding entapp/). It needs Python 3 with requests, requests_toolbelt and
 * pycryptodome (Debian: python3-requests python3-requests-toolbelt python3-pycryptodome, used by
 * /usr/bin/python3; QIAO_YOUDU_SDK_PYTHON picks another interpreter). The SDK has no org or sysMsg calls;
 * it covers the token, app messages and media.
 */
const PY_DRIVER = path.join(ROOT, 'test', 'vendor-sdk', 'youdu_python_sdk_driver.py');
const python = () => process.env.QIAO_YOUDU_SDK_PYTHON ?? '/usr/bin/python3';

function missingPython(): string | null {
  const sdk = process.env.QIAO_YOUDU_SDK_PY;
  if (!sdk) return 'QIAO_YOUDU_SDK_PY is not set (a checkout of youduim/youdu-sdk-python; see the comment above this suite)';
  if (!fs.existsSync(path.join(sdk, 'entapp', 'client', 'client.py'))) return `${sdk} holds no entapp/client/client.py`;
  const probe = spawnSync(python(), ['-c', 'import requests, requests_toolbelt\ntry:\n import Crypto\nexcept ImportError:\n import Cryptodome'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `${python()} cannot import requests, requests_toolbelt and pycryptodome: ${(probe.stderr || String(probe.error)).trim().split('\n').pop()}`;
  return null;
}

forEachDatabase('vendor Python SDK against Qiao', ({ url }) => {
  const why = missingPython();
  let app: OpenApiApp;
  let work: string;

  before(async function () {
    if (why) return;
    this.timeout(60_000);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-youdu-py-'));
    app = await startOpenApi(url());
  });
  after(async () => {
    await app?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it(why ? `PENDING — vendor Python SDK not run: ${why}` : 'obtains a token, sends text/file/mpnews/exlink, uploads, searches and downloads a file', async function () {
    if (why) this.skip();
    this.timeout(120_000);
    const dept = await app.admin<{ id: number }>('org.departments.create', { name: 'Py' });
    const pyReceiver = await app.admin<{ id: number }>('org.users.create', { account: 'py.receiver', name: 'Py 收件人', departments: [{ departmentId: dept.id }] });
    const oa = await app.admin<{ appId: string; encodingAesKey: string }>('apps.create', { name: 'Python OA' });
    const before = (await app.admin<{ total: number }>('im.broadcasts.list')).total;
    const r = await run(python(), [PY_DRIVER, process.env.QIAO_YOUDU_SDK_PY!, new URL(app.base).host, String(app.buin), oa.appId, oa.encodingAesKey, 'py.receiver', work]);
    assert.equal(r.code, 0, r.out);
    const lines = r.out.split('\n').filter((l) => l.startsWith('OK '));
    assert.deepEqual(
      lines.map((l) => l.split(' ')[1]),
      ['AppClient.send_msg(text)', 'AppClient.upload_file', 'AppClient.search_file', 'AppClient.download_file', 'AppClient.send_msg(file)', 'AppClient.send_msg(mpnews)', 'AppClient.send_msg(exlink)'],
    );
    assert.match(lines[2], / py-upload\.txt \d+$/);
    const chat = await chatWithApp(app, oa.appId, pyReceiver.id);
    assert.deepEqual(chat.map((m) => m.type), ['text', 'file', 'card', 'card']);
    assert.equal(chat[3].body.articles[0].url, 'https://example.com/x');
    assert.equal((await app.admin<{ total: number }>('im.broadcasts.list')).total, before, 'app messages are not broadcasts');
  });
});
