'use strict';
// Token checks at the WebSocket upgrade: every refusal is an HTTP error with a
// JSON body before the upgrade, never a silent close.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const S = h.SECRET;
const now = h.nowS;

test('WebSocket upgrade refusals and the two ways to present a token', async (t) => {
  await h.withServer({}, async (srv) => {
    const s = (name, fn) => h.sub(t, name, srv, fn);
    const tokens = []; // every token used here, to check the log never shows one

    const ok = async (room, token, opts) => {
      tokens.push(token);
      const c = await h.connect(srv, room, token, opts);
      const st = await c.next();
      assert.strictEqual(st.type, 'room-state');
      await c.end();
      return st;
    };
    const refused = (room, token, status, code, opts) => {
      if (token) tokens.push(token);
      return h.expectRefused(srv, room, token, status, code, opts);
    };

    await s('token in the Authorization header works', async () => {
      const st = await ok('demo', h.mintToken(S, { sub: 'alice' }), { via: 'header' });
      assert.strictEqual(st.payload.self.user_id, 'alice');
    });
    await s('token in ?token= works', async () => {
      const st = await ok('demo', h.mintToken(S, { sub: 'bob', name: 'Bob B.' }), { via: 'query' });
      assert.strictEqual(st.payload.self.user_id, 'bob');
      assert.strictEqual(st.payload.self.name, 'Bob B.');
    });
    await s('a token bound to this room works', async () => {
      const st = await ok('demo', h.mintToken(S, { sub: 'carol', room: 'demo', role: 'moderator' }));
      // The first moderator in a room without a host hosts it (docs/protocol.md).
      assert.strictEqual(st.payload.self.role, 'host');
      assert.strictEqual(st.payload.self.permissions.can_moderate, true);
    });
    await s('perms override the role defaults', async () => {
      const st = await ok('demo', h.mintToken(S, { sub: 'dave', role: 'host', perms: { can_share_screen: false } }));
      assert.strictEqual(st.payload.self.permissions.can_share_screen, false);
      assert.strictEqual(st.payload.self.permissions.can_record, true);
    });
    await s('unknown claims are ignored', async () => {
      await ok('demo', h.mintToken(S, { sub: 'erin', aud: 'x', iss: 'y', jti: 'z', whatever: { a: 1 } }));
    });
    await s('a valid nbf in the past is fine', async () => {
      await ok('demo', h.mintToken(S, { sub: 'fred', nbf: now() - 10 }));
    });
    await s('a 64-character room id is valid', async () => {
      await ok('r'.repeat(64), h.mintToken(S, { sub: 'gina' }));
      await ok('A-z_0.9', h.mintToken(S, { sub: 'gina' }));
    });

    await s('no token -> 401 UNAUTHORIZED', async () => {
      await refused('demo', null, 401, 'UNAUTHORIZED');
    });
    await s('empty ?token= -> 401', async () => {
      await refused('demo', null, 401, undefined, { query: 'token=' });
    });
    await s('garbage token -> 401 INVALID_TOKEN (header and query)', async () => {
      await refused('demo', 'garbage', 401, 'INVALID_TOKEN');
      await refused('demo', 'not.a.jwt', 401, 'INVALID_TOKEN', { via: 'query' });
      await refused('demo', 'a.b.c.d', 401, 'INVALID_TOKEN');
    });
    await s('Authorization without Bearer -> 401 INVALID_TOKEN', async () => {
      const tok = h.mintToken(S, { sub: 'alice' });
      tokens.push(tok);
      await h.expectRefused(srv, 'demo', null, 401, 'INVALID_TOKEN', { headers: { Authorization: `Basic ${tok}` } });
    });
    await s('expired -> 401 TOKEN_EXPIRED', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice', exp: now() - 60 }), 401, 'TOKEN_EXPIRED');
      await refused('demo', h.mintToken(S, { sub: 'alice', exp: now() - 60 }), 401, 'TOKEN_EXPIRED', { via: 'query' });
    });
    await s('nbf in the future -> 401 TOKEN_NOT_YET_VALID', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice', nbf: now() + 600 }), 401, 'TOKEN_NOT_YET_VALID');
    });
    await s('wrong secret -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken('another-secret-of-sufficient-length-0123456789', { sub: 'alice' }), 401, 'INVALID_TOKEN');
    });
    await s('tampered payload -> 401 INVALID_TOKEN', async () => {
      const good = h.mintToken(S, { sub: 'alice', role: 'participant' });
      const [hd, , sig] = good.split('.');
      const evil = `${hd}.${h.b64u(JSON.stringify({ sub: 'alice', role: 'host', exp: now() + 3600 }))}.${sig}`;
      await refused('demo', evil, 401, 'INVALID_TOKEN');
    });
    await s('alg none -> 401', async () => {
      await refused('demo', h.noneToken({ sub: 'alice' }), 401, 'INVALID_TOKEN');
      // With a bogus signature segment, too.
      await refused('demo', h.noneToken({ sub: 'alice' }, 'AAAA'), 401, 'INVALID_TOKEN');
      // alg "none" but HMAC-signed with the right secret.
      await refused('demo', h.mintToken(S, { sub: 'alice' }, { header: { alg: 'none', typ: 'JWT' } }), 401, 'INVALID_TOKEN');
    });
    await s('another algorithm (HS512, HS384) -> 401', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice' }, { alg: 'HS512' }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 'alice' }, { alg: 'HS384' }), 401, 'INVALID_TOKEN');
    });
    await s('header claiming HS512 but signed with HS256 -> 401', async () => {
      const tok = h.signRaw(S, JSON.stringify({ alg: 'HS512', typ: 'JWT' }), JSON.stringify({ sub: 'alice', exp: now() + 600 }));
      await refused('demo', tok, 401, 'INVALID_TOKEN');
    });
    await s('exp as a string -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice', exp: String(now() + 3600) }), 401, 'INVALID_TOKEN');
    });
    await s('exp as a float -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice', exp: now() + 3600.5 }), 401, 'INVALID_TOKEN');
    });
    await s('missing exp -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice', exp: undefined }), 401, 'INVALID_TOKEN');
    });
    await s('missing sub -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, {}), 401, 'INVALID_TOKEN');
    });
    await s('sub "server" is reserved -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, { sub: 'server' }), 401, 'INVALID_TOKEN');
    });
    // "anonymous" is what erase leaves in a user's place (chat events,
    // sessions): a live user by that name would read as every erased one.
    await s('sub "anonymous" is reserved -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, { sub: 'anonymous' }), 401, 'INVALID_TOKEN');
    });
    await s('sub not a valid user id -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, { sub: 'bad id' }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 'u'.repeat(65) }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 42 }), 401, 'INVALID_TOKEN');
    });
    await s('bad role / perms / name / admin types -> 401 INVALID_TOKEN', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice', role: 'king' }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 'alice', perms: { can_fly: true } }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 'alice', perms: { can_chat: 'yes' } }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 'alice', name: 'x'.repeat(129) }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 'alice', name: 'a\nb' }), 401, 'INVALID_TOKEN');
      await refused('demo', h.mintToken(S, { sub: 'alice', admin: 'true' }), 401, 'INVALID_TOKEN');
    });
    await s('duplicate claim keys -> 401 INVALID_TOKEN', async () => {
      const tok = h.signRaw(S, JSON.stringify({ alg: 'HS256', typ: 'JWT' }),
        `{"sub":"alice","sub":"bob","exp":${now() + 600}}`);
      await refused('demo', tok, 401, 'INVALID_TOKEN');
    });
    await s('token bound to another room -> 403 TOKEN_ROOM_MISMATCH', async () => {
      await refused('demo', h.mintToken(S, { sub: 'alice', room: 'other' }), 403, 'TOKEN_ROOM_MISMATCH');
      await refused('demo', h.mintToken(S, { sub: 'alice', room: 'other' }), 403, 'TOKEN_ROOM_MISMATCH', { via: 'query' });
    });
    await s('invalid room ids -> 400 INVALID_ROOM_ID', async () => {
      const tok = h.mintToken(S, { sub: 'alice' });
      await refused('bad%20id', tok, 400, 'INVALID_ROOM_ID');
      await refused('r'.repeat(65), tok, 400, 'INVALID_ROOM_ID');
      await refused('bad%2Fid', tok, 400, 'INVALID_ROOM_ID');
      await refused('caf%C3%A9', tok, 400, 'INVALID_ROOM_ID');
      await refused('a:b', tok, 400, 'INVALID_ROOM_ID');
      // The room id is checked before the token.
      await refused('bad%20id', null, 400, 'INVALID_ROOM_ID');
    });
    await s('an empty room id is not a join', async () => {
      const tok = h.mintToken(S, { sub: 'alice' });
      tokens.push(tok);
      let err = null;
      try {
        (await h.connect(srv, '', tok)).terminate();
      } catch (e) {
        err = e;
      }
      // Either INVALID_ROOM_ID (400) or NOT_FOUND (404) is acceptable; never an upgrade.
      assert.ok(err instanceof h.HttpRefusal, `empty room id: ${err ? err.message : 'upgraded'}`);
      assert.ok(err.status === 400 || err.status === 404, `empty room id: HTTP ${err.status}`);
    });
    await s('no room was created by any refused join', async () => {
      assert.strictEqual((await h.health(srv)).rooms, 0);
    });
    await s('the log never shows a token', async () => {
      for (const tok of tokens) {
        const sig = tok.split('.').pop();
        assert.ok(!srv.stderr.includes(tok), 'a token appears in the log');
        if (sig.length >= 16) assert.ok(!srv.stderr.includes(sig), 'a token signature appears in the log');
      }
      assert.ok(!srv.stderr.includes('token='), 'the log contains "token="');
      assert.ok(!srv.stderr.includes(S), 'the log contains the secret');
    });
  });
});

test('REST token checks on GET /webrtc/config', async () => {
  await h.withServer({}, async (srv) => {
    const get = (token) => h.httpGet(srv, '/webrtc/config', token ? { headers: { Authorization: `Bearer ${token}` } } : {});
    assert.strictEqual((await get(null)).status, 200);
    assert.strictEqual((await get(h.mintToken(S, { sub: 'alice' }))).status, 200);
    for (const [tok, code] of [
      ['garbage', 'INVALID_TOKEN'],
      [h.mintToken(S, { sub: 'alice', exp: now() - 10 }), 'TOKEN_EXPIRED'],
      [h.mintToken(S, { sub: 'alice', nbf: now() + 600 }), 'TOKEN_NOT_YET_VALID'],
      [h.noneToken({ sub: 'alice' }), 'INVALID_TOKEN'],
    ]) {
      const r = await get(tok);
      assert.strictEqual(r.status, 401, `${code}: ${r.text}`);
      assert.strictEqual(r.json.error.code, code);
    }
  });
});
