import assert from 'node:assert/strict';
import { startRtxEmulator, type RtxEmulator } from './emulator.ts';
import { SUCCESS_TEXT } from './sdk-routes.ts';
import { control, rawRequest, sdk, startFeedReceiver } from './test-support.ts';

const json = (r: { raw: Buffer }) => JSON.parse(r.raw.toString('utf8'));

describe('rtx emulator: outages, the RTX-host interface and the control API', () => {
  let emu: RtxEmulator;
  beforeEach(async () => {
    emu = await startRtxEmulator({ port: 0, hostPort: 0 });
    await control(emu, 'POST', '/users', { uid: 'zhangsan', password: 'pw', presence: 1 });
    await control(emu, 'POST', '/users', { uid: 'lisi', presence: 2 });
  });
  afterEach(async () => {
    await emu.stop();
  });

  it('down (refuse): the SDK port refuses connections, clients cannot send, org and presence answer 503; up restores all', async () => {
    await control(emu, 'POST', '/down', {});
    await assert.rejects(sdk(emu, 'getstatus.php', { query: { username: 'zhangsan' } }), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
    const send = await fetch(`${emu.controlUrl}/messages`, { method: 'POST', body: JSON.stringify({ from: 'zhangsan', to: ['lisi'], text: 'x' }) });
    assert.equal(send.status, 503);
    assert.equal(((await send.json()) as { code: string }).code, 'QIAO_UNAVAILABLE');
    assert.equal((await rawRequest(`${emu.hostUrl}/org.xml`)).status, 503);
    assert.equal((await rawRequest(`${emu.hostUrl}/presence?users=zhangsan`)).status, 503);
    assert.equal(json(await rawRequest(`${emu.hostUrl}/health`)).rtx, 'down');
    assert.equal((await control(emu, 'GET', '/state')).down, 'refuse');

    await control(emu, 'POST', '/up');
    assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'zhangsan' } })).text, '1');
    assert.equal(json(await rawRequest(`${emu.hostUrl}/health`)).rtx, 'up');
    await control(emu, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: 'back' });
    assert.equal((await control(emu, 'GET', '/users/lisi/inbox')).ims[0].text, 'back');
  });

  it('down (503): the port stays open and every SDK page answers 503', async () => {
    await emu.down('503');
    const r = await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'lisi', msg: 'x' } });
    assert.equal(r.status, 503);
    assert.equal((await control(emu, 'GET', '/users/lisi/inbox')).notifications.length, 0);
    await emu.down('refuse');
    await assert.rejects(sdk(emu, 'SendNotify.cgi'), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
    await emu.up();
    assert.equal((await sdk(emu, 'SendNotify.cgi', { query: { receiver: 'lisi', msg: 'x' } })).text, SUCCESS_TEXT);
  });

  it('keeps forwarding already-copied IMs while RTX is down (the host script runs on)', async () => {
    let accept = false;
    const agent = await startFeedReceiver(() => (accept ? 200 : 503));
    try {
      emu.feed.configure(agent.url);
      await control(emu, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: 'queued' });
      await emu.down();
      accept = true;
      await emu.feed.idle();
      assert.equal(agent.accepted.length, 1);
    } finally {
      await agent.close();
    }
  });

  it('reports presence on the RTX-host interface, in batches, naming unknown accounts', async () => {
    const r = await rawRequest(`${emu.hostUrl}/presence?users=${encodeURIComponent('zhangsan,lisi,ghost')}`);
    assert.equal(r.status, 200);
    assert.deepEqual(json(r), { states: { zhangsan: 1, lisi: 2 }, unknown: ['ghost'] });
    const missing = await rawRequest(`${emu.hostUrl}/presence`);
    assert.equal(missing.status, 400);
    assert.equal(json(missing).field, 'users');
    const many = Array.from({ length: 1001 }, (_, i) => `u${i}`).join(',');
    assert.equal((await rawRequest(`${emu.hostUrl}/presence?users=${many}`)).status, 400);
  });

  it('checks bearer tokens on the RTX-host interface and the control API when configured', async () => {
    const locked = await startRtxEmulator({ port: 0, hostPort: 0, hostToken: 'host-secret', controlToken: 'ctl-secret' });
    try {
      const noAuth = await rawRequest(`${locked.hostUrl}/health`);
      assert.equal(noAuth.status, 401);
      assert.equal(json(noAuth).field, 'authorization');
      assert.equal((await rawRequest(`${locked.hostUrl}/health`, { headers: { authorization: 'Bearer ctl-secret' } })).status, 401);
      assert.equal((await rawRequest(`${locked.hostUrl}/health`, { headers: { authorization: 'Bearer host-secret' } })).status, 200);
      assert.equal((await rawRequest(`${locked.controlUrl}/state`)).status, 401);
      assert.equal((await rawRequest(`${locked.controlUrl}/state`, { headers: { authorization: 'Bearer ctl-secret' } })).status, 200);
    } finally {
      await locked.stop();
    }
  });

  it('names the field at fault when control input is wrong', async () => {
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/users', { name: 'no uid' }, 422, 'uid'],
      ['POST', '/users', { uid: 'zhangsan' }, 409, 'uid'],
      ['POST', '/users', { uid: 'a,b' }, 422, 'uid'],
      ['POST', '/users', { uid: 'x', gender: 2 }, 422, 'gender'],
      ['PUT', '/users/lisi/presence', { status: 3 }, 422, 'status'],
      ['PUT', '/users/ghost/presence', { status: 1 }, 404, 'uid'],
      ['POST', '/messages', { from: 'zhangsan', to: ['lisi'] }, 422, 'text'],
      ['POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: 'x', key: 'not-a-guid' }, 422, 'sessionid'],
      ['POST', '/groups', { name: 'g', members: ['ghost'] }, 404, 'members'],
      ['POST', '/down', { mode: 'explode' }, 422, 'mode'],
      ['PUT', '/feed', { url: 'ftp://x' }, 422, 'url'],
    ];
    for (const [method, path, body, status, field] of cases) {
      const r = await rawRequest(`${emu.controlUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}: ${r.raw.toString()}`);
      assert.equal(json(r).field, field, `${method} ${path}`);
    }
    const notJson = await rawRequest(`${emu.controlUrl}/users`, { method: 'POST', body: '{oops' });
    assert.equal(notJson.status, 422);
    assert.equal(json(notJson).field, 'body');
  });

  it('creates, updates and deletes users and departments, and resets', async () => {
    await control(emu, 'POST', '/departments', { path: '公司\\财务部', describe: '管钱' });
    const u = await control(emu, 'PATCH', '/users/lisi', { name: '李四', gender: 1, departments: ['公司\\财务部'], mobile: '139' });
    assert.deepEqual([u.name, u.gender, u.departments, u.mobile, u.presence], ['李四', 1, ['公司\\财务部'], '139', 2]);
    assert.deepEqual((await control(emu, 'GET', '/departments')).departments, [{ path: '公司', describe: '' }, { path: '公司\\财务部', describe: '管钱' }]);
    await control(emu, 'DELETE', `/departments?path=${encodeURIComponent('公司')}`);
    assert.deepEqual((await control(emu, 'GET', '/users/lisi')).departments, []);
    await control(emu, 'DELETE', '/users/lisi');
    assert.equal((await sdk(emu, 'getstatus.php', { query: { username: 'lisi' } })).text, '用户[lisi]不存在');
    await control(emu, 'POST', '/reset');
    assert.equal((await control(emu, 'GET', '/state')).users, 0);
  });
});
