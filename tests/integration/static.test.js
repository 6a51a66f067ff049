'use strict';
// Static files (src/net/static.c): the web app at /, the SDK at /sdk/, content
// types, validators, the CSP, and no way out of the web root, checked with
// raw requests so that nothing normalizes the path on the way.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers');

const ROOT = path.resolve(__dirname, '../..');

function post(srv, body, type = 'application/json') {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return h.httpRequest(srv, 'POST', '/webrtc/dev/token', { body: raw, headers: { 'Content-Type': type, 'Content-Length': Buffer.byteLength(raw) } });
}

async function get(srv, target, extra = '') {
  const r = await h.rawRequest(srv, `GET ${target} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`);
  assert.strictEqual(r.responses.length, 1, `one response to GET ${target}: ${r.text.slice(0, 200)}`);
  return r.responses[0];
}

test('static files', async (t) => {
  await h.withServer({}, async (srv) => {
    await h.sub(t, '/ is the web app with a strict CSP and validators', srv, async () => {
      const r = await get(srv, '/');
      assert.strictEqual(r.status, 200);
      assert.strictEqual(r.headers['content-type'], 'text/html; charset=utf-8');
      assert.strictEqual(r.text, fs.readFileSync(path.join(ROOT, 'web/index.html'), 'utf8'));
      const csp = r.headers['content-security-policy'];
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.match(csp, /connect-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.strictEqual(r.headers['x-content-type-options'], 'nosniff');
      assert.strictEqual(r.headers['referrer-policy'], 'no-referrer');
      assert.strictEqual(r.headers['cache-control'], 'no-cache');
      assert.match(r.headers.etag, /^W\/"[0-9a-f]+-[0-9a-f]+"$/);
      assert.match(r.headers['last-modified'], /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
      // The page itself runs no inline script (the CSP would block it).
      assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/);
      assert.doesNotMatch(r.text, /\son[a-z]+=/i);
    });

    await h.sub(t, 'content types of the app and the SDK', srv, async () => {
      const cases = [['/app.js', 'text/javascript; charset=utf-8'], ['/app.css', 'text/css; charset=utf-8'],
        ['/favicon.svg', 'image/svg+xml'], ['/sdk/src/index.js', 'text/javascript; charset=utf-8'],
        ['/sdk/package.json', 'application/json'], ['/sdk/types/index.d.ts', 'text/plain; charset=utf-8'],
        ['/index.html', 'text/html; charset=utf-8']];
      for (const [p, type] of cases) {
        const r = await get(srv, p);
        assert.strictEqual(r.status, 200, p);
        assert.strictEqual(r.headers['content-type'], type, p);
      }
      const sdk = await get(srv, '/sdk/src/client.js');
      assert.strictEqual(sdk.text, fs.readFileSync(path.join(ROOT, 'clients/js/src/client.js'), 'utf8'));
    });

    await h.sub(t, 'If-None-Match and If-Modified-Since answer 304', srv, async () => {
      const r = await get(srv, '/app.js');
      const inm = await get(srv, '/app.js', `If-None-Match: ${r.headers.etag}\r\n`);
      assert.strictEqual(inm.status, 304);
      assert.strictEqual(inm.body.length, 0);
      assert.strictEqual(inm.headers.etag, r.headers.etag);
      const other = await get(srv, '/app.js', 'If-None-Match: W/"1-1"\r\n');
      assert.strictEqual(other.status, 200);
      const ims = await get(srv, '/app.js', `If-Modified-Since: ${r.headers['last-modified']}\r\n`);
      assert.strictEqual(ims.status, 304);
    });

    await h.sub(t, 'HEAD sends the headers only', srv, async () => {
      const r = await h.rawRequest(srv, 'HEAD /app.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(r.text, /\r\nContent-Type: text\/css; charset=utf-8\r\n/);
      assert.ok(r.text.endsWith('\r\n\r\n'), 'no body after the head');
    });

    await h.sub(t, 'no way out of the web root', srv, async () => {
      const evil = ['/../meson.build', '/..', '/%2e%2e/meson.build', '/%2E%2E/%2e%2e/etc/passwd',
        '/sdk/../../meson.build', '/sdk/..%2f..%2fmeson.build', '/sdk/%2e%2e%2f%2e%2e%2fmeson.build',
        '/sdk/..%5c..%5cmeson.build', '/..%2fmeson.build', '/%2fetc/passwd', '//etc/passwd',
        '/app.js%00.html', '/app.js%00', '/.gitignore', '/./index.html', '/sdk/.', '/sdk/src/../../../README.md',
        '/%', '/%zz', '/a%2', '/sdk/src/%2e/index.js', '/index.html/', '/web/index.html', '/README.md'];
      for (const p of evil) {
        const r = await get(srv, p);
        assert.strictEqual(r.status, 404, `${p} answered ${r.status}`);
        assert.strictEqual(r.json.error.code, 'NOT_FOUND', p);
      }
      // A raw NUL or a backslash in the target never reaches a file.
      for (const raw of ['/app.js\0.html', '/sdk\\..\\meson.build']) {
        const r = await h.rawRequest(srv, `GET ${raw} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.ok(r.responses.length === 0 || r.responses[0].status >= 400, `${JSON.stringify(raw)}: ${r.text.slice(0, 40)}`);
      }
    });

    await h.sub(t, 'unknown extensions, other methods and /webrtc paths stay as they were', srv, async () => {
      assert.strictEqual((await get(srv, '/nope')).status, 404);
      assert.strictEqual((await get(srv, '/meson.build')).status, 404);
      assert.strictEqual((await get(srv, '/webrtc/nope')).status, 404);
      assert.strictEqual((await get(srv, '/webrtc/nope')).headers['content-security-policy'], undefined);
      const post = await h.rawRequest(srv, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      assert.strictEqual(post.responses[0].status, 404);
    });
  });
});

test('--web-root serves another directory', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-web-'));
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>mine</title>');
  fs.mkdirSync(path.join(dir, 'sdk'));
  fs.writeFileSync(path.join(dir, 'sdk', 'x.js'), 'export {};');
  fs.symlinkSync('/etc', path.join(dir, 'etc'));
  try {
    await h.withServer({ args: ['--web-root', dir] }, async (srv) => {
      await h.sub(t, 'index and an installed sdk/ directory', srv, async () => {
        assert.strictEqual((await get(srv, '/')).text, '<!doctype html><title>mine</title>');
        assert.strictEqual((await get(srv, '/sdk/x.js')).text, 'export {};');
        assert.strictEqual((await get(srv, '/app.js')).status, 404);
        // Symlinks the operator puts in the web root are followed (as nginx does), but only
        // files with a known extension are served: nothing under /etc qualifies here.
        assert.strictEqual((await get(srv, '/etc/passwd')).status, 404);
        assert.strictEqual((await get(srv, '/etc/hostname')).status, 404);
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('development tokens', async (t) => {
  await h.withServer({}, async (srv) => {
    await h.sub(t, 'off by default: 404', srv, async () => {
      const r = await post(srv, { room: 'r', user: 'u' });
      assert.strictEqual(r.status, 404);
      assert.strictEqual(r.json.error.code, 'NOT_FOUND');
    });
  });
  await h.withServer({ args: ['--dev-tokens'] }, async (srv) => {
    await h.sub(t, 'with --dev-tokens: a token that joins the room', srv, async () => {
      const r = await post(srv, { room: 'dev1', user: 'dora', name: 'Dora', role: 'moderator' });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.room, 'dev1');
      assert.strictEqual(r.json.role, 'moderator');
      const c = await h.connect(srv, 'dev1', r.json.token);
      const st = await c.next('room-state');
      assert.strictEqual(st.payload.self.user_id, 'dora');
      assert.strictEqual(st.payload.self.name, 'Dora');
      assert.strictEqual(st.payload.self.role, 'host'); // first moderator in becomes host
      await c.end();
      await srv.waitForLog(/dev_token room=dev1 user=dora role=moderator/);
      assert.doesNotMatch(srv.stderr, new RegExp(r.json.token.slice(-20)), 'the token is never logged');
    });
    await h.sub(t, 'bad input gets taxonomy errors', srv, async () => {
      const bad = [[{ room: 'a b', user: 'u' }, 'INVALID_ROOM_ID'], [{ user: 'u' }, 'INVALID_ROOM_ID'],
        [{ room: 'r', user: 'server' }, 'INVALID_USER_ID'], [{ room: 'r', user: 'anonymous' }, 'INVALID_USER_ID'], [{ room: 'r' }, 'INVALID_USER_ID'],
        [{ room: 'r', user: 'u', role: 'king' }, 'INVALID_ROLE'], [{ room: 'r', user: 'u', name: 'a\u0001b' }, 'INVALID_MESSAGE'],
        [{ room: 'r', user: 'u', name: 'x'.repeat(129) }, 'INVALID_MESSAGE'], [{ room: 7, user: 'u' }, 'INVALID_ROOM_ID']];
      for (const [body, code] of bad) {
        const r = await post(srv, body);
        assert.strictEqual(r.status, 400, JSON.stringify(body));
        assert.strictEqual(r.json.error.code, code, JSON.stringify(body));
      }
      const notJson = await post(srv, 'room=r', 'text/plain');
      assert.strictEqual(notJson.json.error.code, 'UNSUPPORTED_MEDIA_TYPE');
      const get = await h.httpGet(srv, '/webrtc/dev/token');
      assert.strictEqual(get.status, 405);
    });
  });
});
