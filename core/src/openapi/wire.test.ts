import assert from 'node:assert/strict';
import { forEachDatabase } from '../../../test/support/databases.ts';
import { ERRCODE } from './errcodes.ts';
import { startOpenApi, type OpenApiApp, type YdTestClient } from './test-kit.ts';

forEachDatabase('open API wire format', ({ url }) => {
  let app: OpenApiApp;
  let org: YdTestClient;
  let custom: YdTestClient;

  before(async function () {
    this.timeout(60_000);
    app = await startOpenApi(url());
    org = await app.yd('sysOrgAssistant');
    const created = await app.admin<{ appId: string }>('apps.create', { name: 'OA 待办', homeUrl: 'https://oa.example.com/sso?token=$TOKEN$' });
    custom = await app.yd(created.appId);
  });
  after(async () => app?.stop());

  it('creates apps with yd + 32 hex ids and 44-character keys, regenerable, and seeds the system apps', async () => {
    const { apps } = await app.admin<{ apps: Array<{ appId: string; kind: string; encodingAesKey: string }> }>('apps.list');
    for (const id of ['sysOrgAssistant', 'sysMsgAssistant', 'sysSmsAssistant', 'sysExmailAssistant', 'sysMsgMonitor']) assert.ok(apps.some((a) => a.appId === id && a.kind === id), id);
    const mine = apps.find((a) => a.appId === custom.appId)!;
    assert.match(mine.appId, /^yd[0-9A-F]{32}$/);
    assert.equal(mine.encodingAesKey.length, 44);
    assert.equal(Buffer.from(mine.encodingAesKey, 'base64').length, 32);
    const other = await app.admin<{ appId: string; encodingAesKey: string }>('apps.create', { name: 'temp' });
    const again = await app.admin<{ encodingAesKey: string }>('apps.regenerate', { appId: other.appId });
    assert.notEqual(again.encodingAesKey, other.encodingAesKey);
    await assert.rejects(app.admin('apps.delete', { appId: 'sysOrgAssistant' }), /built-in/);
    await app.admin('apps.delete', { appId: other.appId });
    await assert.rejects(app.admin('apps.get', { appId: other.appId }), /does not exist/);
  });

  it('issues access tokens; earlier tokens stay valid; missing, unknown and expired tokens get 100000/100001/100002', async () => {
    const first = await org.gettoken();
    assert.equal(first.errcode, 0);
    assert.equal(first.expireIn, 7200);
    const t1 = org.token;
    await org.gettoken();
    assert.notEqual(org.token, t1);
    assert.equal((await org.get('/cgi/dept/list', { id: '0' })).errcode, 0);
    org.token = t1;
    assert.equal((await org.get('/cgi/dept/list', { id: '0' })).errcode, 0, 'the earlier token still works');
    assert.equal((await org.raw('GET', '/cgi/dept/list', { token: null, query: { id: '0' } }).then((r) => JSON.parse(r.text))).errcode, ERRCODE.ERRCODE_MISS_ACCESSTOKEN);
    assert.equal((await org.raw('GET', '/cgi/dept/list', { token: 'f'.repeat(48), query: { id: '0' } }).then((r) => JSON.parse(r.text))).errcode, ERRCODE.ERRCODE_ACCESSTOKEN_NOTEXIST);
    await app.db.sequelize.query('UPDATE openapi_tokens SET expires_at = ? WHERE app_id = ?', { replacements: [new Date(Date.now() - 1000), 'sysOrgAssistant'] });
    const expired = await org.get('/cgi/dept/list', { id: '0' });
    assert.equal(expired.errcode, ERRCODE.ERRCODE_ACCESSTOKEN_EXPIRED);
    await org.gettoken();
  });

  it('answers envelope faults with the documented codes, always HTTP 200', async () => {
    const envelope = (over: Record<string, unknown>) => JSON.stringify({ ...org.envelope({ id: 0 }), ...over });
    const cases: Array<[string, number]> = [
      [envelope({ buin: undefined }), ERRCODE.ERRCODE_MISS_BUIN],
      [envelope({ buin: 'abc' }), ERRCODE.ERRCODE_INVALID_FORMAT_BUIN],
      [envelope({ buin: 1 }), ERRCODE.ERRCODE_INVALID_BUIN],
      [envelope({ appId: undefined }), ERRCODE.ERRCODE_MISS_APPID],
      [envelope({ appId: 12 }), ERRCODE.ERRCODE_INVALID_FORMAT_APPID],
      [envelope({ appId: 'ydNOPE' }), ERRCODE.ERRCODE_INVALID_APPID],
      [envelope({ appId: custom.appId }), ERRCODE.ERRCODE_INVALID_APPID],
      [envelope({ encrypt: null }), ERRCODE.ERRCODE_MISS_ENCRYPT],
      [envelope({ encrypt: 5 }), ERRCODE.ERRCODE_INVALID_FORMAT_ENCRYPT],
      [envelope({ encrypt: custom.seal({ id: 0 }) }), ERRCODE.ERRCODE_INVALID_ENCRYPT],
      [envelope({ encrypt: org.seal('[1,2]') }), ERRCODE.ERRCODE_INVALID_FORMAT_JSON],
      ['{not json', ERRCODE.ERRCODE_INVALID_FORMAT_JSON],
    ];
    for (const [body, expected] of cases) {
      const r = await org.raw('POST', '/cgi/dept/create', { body, contentType: 'application/json' });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.text).errcode, expected, `${body.slice(0, 80)} → ${r.text}`);
    }
    const tampered = Buffer.from(org.seal({ name: 'x', parentId: 0 }), 'base64');
    tampered[20] ^= 1;
    const t = await org.raw('POST', '/cgi/dept/create', { body: envelope({ encrypt: tampered.toString('base64') }), contentType: 'application/json' });
    assert.equal(JSON.parse(t.text).errcode, ERRCODE.ERRCODE_INVALID_ENCRYPT);
    assert.equal((await app.admin<{ departments: unknown[] }>('org.departments.list')).departments.length, 0, 'nothing was written');
  });

  it('accepts JSON without a Content-Type, form bodies, and null or "" optional fields; refuses replays', async () => {
    const plain = await org.raw('POST', '/cgi/dept/create', { body: JSON.stringify(org.envelope({ name: '研发部', parentId: 0, sortId: null, alias: '' })), contentType: null });
    assert.equal(JSON.parse(plain.text).errcode, 0, plain.text);
    const env = org.envelope({ name: '市场部', parentId: 0, id: null });
    const form = await org.raw('POST', '/cgi/dept/create', { body: new URLSearchParams({ buin: String(env.buin), appId: env.appId, encrypt: env.encrypt }).toString(), contentType: 'application/x-www-form-urlencoded' });
    assert.equal(JSON.parse(form.text).errcode, 0, form.text);
    const replay = await org.raw('POST', '/cgi/dept/create', { body: new URLSearchParams({ buin: String(env.buin), appId: env.appId, encrypt: env.encrypt }).toString(), contentType: 'application/x-www-form-urlencoded' });
    assert.equal(JSON.parse(replay.text).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
    assert.match(JSON.parse(replay.text).errmsg, /replayed/);
    const names = (await app.admin<{ departments: Array<{ name: string }> }>('org.departments.list')).departments.map((d) => d.name).sort();
    assert.deepEqual(names, ['市场部', '研发部']);
  });

  it('refuses a 50 MB body with a documented code and writes nothing', async function () {
    this.timeout(60_000);
    const big = JSON.stringify({ ...org.envelope({ name: 'huge', parentId: 0 }), pad: 'x'.repeat(50 * 1024 * 1024) });
    let text: string;
    try {
      text = (await org.raw('POST', '/cgi/dept/create', { body: big, contentType: 'application/json' })).text;
    } catch (err) {
      // The server may close the socket before the client finished sending; then the answer is lost in
      // transit, which a client sees as a failed request: still nothing written.
      text = JSON.stringify({ errcode: ERRCODE.ERRCODE_INVALID_REQUEST, errmsg: String(err) });
    }
    assert.equal(JSON.parse(text).errcode, ERRCODE.ERRCODE_INVALID_REQUEST, text.slice(0, 200));
    const names = (await app.admin<{ departments: Array<{ name: string }> }>('org.departments.list')).departments.map((d) => d.name);
    assert.ok(!names.includes('huge'));
    const small = await org.raw('POST', '/cgi/dept/create', { body: JSON.stringify({ ...org.envelope({ name: 'ok', parentId: 0 }), pad: 'x'.repeat(3 * 1024 * 1024) }), contentType: 'application/json' });
    assert.equal(JSON.parse(small.text).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
  });

  it('gives "invalid appId" when an app calls another app type\'s endpoint', async () => {
    await custom.gettoken();
    const r = await custom.post('/cgi/dept/create', { name: 'nope', parentId: 0 });
    assert.equal(r.errcode, ERRCODE.ERRCODE_INVALID_APPID);
    assert.equal((await custom.get('/cgi/dept/list', { id: '0' })).errcode, 0, 'reading the org is open to every app');
    const sys = await custom.post('/cgi/msg/send', { toUser: 'x', msgType: 'sysMsg', sysMsg: { title: 't', msg: [{ text: { content: 'c' } }] } });
    assert.equal(sys.errcode, ERRCODE.ERRCODE_INVALID_APPID);
    const text = await org.post('/cgi/msg/send', { toUser: 'x', msgType: 'text', text: { content: 'hi' } });
    assert.equal(text.errcode, ERRCODE.ERRCODE_INVALID_APPID);
    assert.equal((await org.get('/cgi/nowhere')).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
  });

  it('refuses a gettoken whose timestamp is far from the clock and one replayed', async () => {
    const old = await org.gettoken(Math.floor(Date.now() / 1000) - 3 * 3600);
    assert.equal(old.errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
    const body = JSON.stringify(org.envelope(String(Math.floor(Date.now() / 1000))));
    assert.equal(JSON.parse((await org.raw('POST', '/cgi/gettoken', { body, token: null })).text).errcode, 0);
    assert.equal(JSON.parse((await org.raw('POST', '/cgi/gettoken', { body, token: null })).text).errcode, ERRCODE.ERRCODE_INVALID_REQUEST);
  });
});
