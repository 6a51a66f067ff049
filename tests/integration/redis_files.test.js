'use strict';
// Several instances (issue 11, ADR 0019): shared files answer the same on
// every instance. A room's files live on its owner; a files request that
// reaches another instance is forwarded to the owner over a direct HTTP
// connection, streamed both ways. Real Redis, three real instances.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const h = require('./helpers');
const f = require('./feature_helpers');
const rh = require('./redis_helpers');

const MiB = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();

const textBytes = (n) => f.textBytes(n);

/** GET into a Buffer (no agent). */
function download(srv, url, token, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: h.HOST, port: srv.port, path: url, method: 'GET', agent: false,
      headers: Object.assign(token ? { Authorization: `Bearer ${token}` } : {}, headers) }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let json = null;
        try { json = JSON.parse(body.toString()); } catch (_) { /* a file */ }
        resolve({ status: res.statusCode, headers: res.headers, body, json, text: body.toString('latin1').slice(0, 300) });
      });
      res.on('aborted', () => reject(new Error('aborted')));
    });
    req.on('error', reject);
    req.end();
  });
}

function patch(srv, url, token, offset, body, extra = {}) {
  return f.rest(srv, 'PATCH', url, { token, body, headers: Object.assign({}, TUS, {
    'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, extra) });
}

const fdCount = (srv) => fs.readdirSync(`/proc/${srv.pid}/fd`).length;

/** What a REST answer says, for comparing two instances' answers. */
function said(r) {
  return { status: r.status, json: r.json, tus: r.headers['tus-resumable'], offset: r.headers['upload-offset'],
    length: r.headers['upload-length'], max: r.headers['tus-max-size'], ext: r.headers['tus-extension'],
    allow: r.headers.allow, retry: r.headers['retry-after'] };
}

/**
 * Room `room` owned by A (owen joined there first); alice (the sharer) on B,
 * bob (a participant) on C. Alice offers a file of size bytes (over her
 * WebSocket, which B forwards to A); resolves the pieces.
 */
async function setup([A, B, C], room, size, sha) {
  const owen = await h.join(A, room, 'owen', { role: 'host' });
  assert.strictEqual(await rh.ownerOf([A, B, C], room), A, 'A owns the room');
  const alice = await h.join(B, room, 'alice');
  const bob = await h.join(C, room, 'bob');
  const atok = f.tok(A, { sub: 'alice', room });
  const btok = f.tok(A, { sub: 'bob', room });
  const ref = `o${crypto.randomBytes(4).toString('hex')}`;
  const payload = { name: 'big.txt', size, mime_type: 'text/plain' };
  payload.sha256 = sha;
  alice.send({ type: 'file-share-offer', id: ref, payload });
  const echo = await alice.nextWhere((x) => x.ref === ref, 5000, 'offer echo');
  assert.strictEqual(echo.type, 'file-share-offer', JSON.stringify(echo));
  return { owen, alice, bob, atok, btok, url: echo.payload.upload_url };
}

const ARGS = ['--file-max-mb', '64'];

test('files through any instance: upload via a non-owner, download via the owner and another non-owner, byte-equal; HEAD, OPTIONS, DELETE', async () => {
  await rh.withCluster(3, { args: ARGS }, async (r, [A, B, C]) => {
    const data = textBytes(3 * MiB + 12345);
    const s = await setup([A, B, C], 'fx-up', data.length, sha256(data).toString('hex'));
    // OPTIONS answers the same everywhere (the owner answers it).
    assert.deepStrictEqual(said(await f.rest(B, 'OPTIONS', s.url.replace(/[^/]+$/, ''), {})),
      said(await f.rest(A, 'OPTIONS', s.url.replace(/[^/]+$/, ''), {})));
    // Upload in two PATCHes through B; HEAD through C and A agree in between.
    const half = 1 * MiB + 7;
    const p1 = await patch(B, s.url, s.atok, 0, data.subarray(0, half));
    assert.strictEqual(p1.status, 204, p1.text);
    assert.strictEqual(p1.headers['upload-offset'], String(half));
    for (const S of [A, B, C]) {
      const hd = await f.rest(S, 'HEAD', s.url, { token: s.atok, headers: TUS });
      assert.strictEqual(hd.status, 200, `HEAD via ${S.port}`);
      assert.strictEqual(hd.headers['upload-offset'], String(half));
      assert.strictEqual(hd.headers['upload-length'], String(data.length));
    }
    const p2 = await patch(B, s.url, s.atok, half, data.subarray(half));
    assert.strictEqual(p2.status, 204, p2.text);
    await s.alice.next('file-share-complete', 20000);
    // Download through the owner and through the third instance: the same bytes.
    const viaA = await download(A, s.url, s.btok);
    const viaC = await download(C, s.url, s.btok);
    assert.strictEqual(viaA.status, 200, viaA.text);
    assert.strictEqual(viaC.status, 200, viaC.text);
    assert.ok(viaA.body.equals(data), 'owner: byte-equal');
    assert.ok(viaC.body.equals(data), 'non-owner: byte-equal');
    assert.strictEqual(viaC.headers['content-length'], String(data.length));
    assert.strictEqual(viaC.headers.etag, viaA.headers.etag);
    // A forwarded answer ends the connection (documented).
    assert.strictEqual(viaC.headers.connection, 'close');
    // A range through a non-owner.
    const rg = await download(B, s.url, s.btok, { Range: 'bytes=1000-2999' });
    assert.strictEqual(rg.status, 206, rg.text);
    assert.ok(rg.body.equals(data.subarray(1000, 3000)));
    // DELETE through a non-owner (the sender), then it is gone everywhere.
    const del = await f.rest(C, 'DELETE', s.url, { token: s.atok, headers: TUS });
    assert.strictEqual(del.status, 204, del.text);
    for (const S of [A, B, C]) f.assertRestError(await download(S, s.url, s.btok), 404, 'FILE_NOT_FOUND');
    // The non-owners forwarded; the owner did not.
    const hb = (await rh.clusterHealth(B)).components.cluster;
    assert.ok(hb.files_forwarded >= 4, JSON.stringify(hb));
    assert.strictEqual(hb.files_forward_failed, 0);
    assert.match(String(hb.advertise_addr), /^127\.0\.0\.1:\d+$/);
    assert.strictEqual((await rh.clusterHealth(A)).components.cluster.files_forwarded, 0);
  });
});

test('files through a non-owner: auth, permission and size errors are the owner\'s, code for code', async () => {
  await rh.withCluster(3, { args: ['--file-max-mb', '2'] }, async (r, [A, B, C]) => {
    const data = textBytes(64 * 1024);
    const s = await setup([A, B, C], "fx-err", data.length, sha256(data).toString("hex"));
    assert.strictEqual((await patch(B, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 20000);
    const carol = await h.join(C, 'fx-err', 'carol', { role: 'viewer' });
    const ctok = f.tok(A, { sub: 'carol', room: 'fx-err', role: 'viewer' });
    const other = f.tok(A, { sub: 'bob', room: 'elsewhere' });
    const base = s.url.replace(/[^/]+$/, '');
    const cases = [
      ['no token', 'GET', s.url, {}, 401, 'UNAUTHORIZED'],
      ['a token of another room', 'GET', s.url, { token: other }, 403, 'TOKEN_ROOM_MISMATCH'],
      ['a viewer without can_share_files', 'GET', s.url, { token: ctok }, 403, 'PERMISSION_DENIED'],
      ['an unknown file', 'GET', `${base}f0000000000000000000000000000000`, { token: s.btok }, 404, 'FILE_NOT_FOUND'],
      ['DELETE by another member', 'DELETE', s.url, { token: s.btok, headers: TUS }, 404, 'FILE_NOT_FOUND'],
      ['HEAD with a bad token', 'HEAD', s.url, { token: 'x.y.z', headers: TUS }, 401, null],
      ['PATCH by another member', 'PATCH', s.url, { token: s.btok, body: 'abc',
        headers: Object.assign({ 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, TUS) }, 404, 'FILE_NOT_FOUND'],
      ['an oversize creation', 'POST', base, { token: s.atok, headers: Object.assign({ 'Upload-Length': String(3 * MiB),
        'Upload-Metadata': `filename ${Buffer.from('x.txt').toString('base64')},filetype ${Buffer.from('text/plain').toString('base64')}` }, TUS) },
        413, null],
      ['a POST without Upload-Length', 'POST', base, { token: s.atok, headers: TUS }, 400, 'BAD_REQUEST'],
    ];
    for (const [what, method, url, opts, status, code] of cases) {
      const atOwner = await f.rest(A, method, url, opts);
      for (const S of [B, C]) {
        const got = await f.rest(S, method, url, opts);
        assert.deepStrictEqual(said(got), said(atOwner), `${what}: via ${S.port} as via the owner`);
      }
      assert.strictEqual(atOwner.status, status, `${what}: ${atOwner.text}`);
      if (code) assert.strictEqual(atOwner.json.error.code, code, what);
    }
    // An upload past Upload-Length through a non-owner: refused like at the owner.
    const d2 = textBytes(1000);
    const s2 = await (async () => {
      const ref = 'o-size';
      s.alice.send({ type: 'file-share-offer', id: ref, payload: { name: 'small.txt', size: d2.length, mime_type: 'text/plain', sha256: sha256(d2).toString('hex') } });
      return (await s.alice.nextWhere((x) => x.ref === ref, 5000)).payload.upload_url;
    })();
    const tooMuch = Buffer.concat([d2, d2]);
    const viaB = await patch(B, s2, s.atok, 0, tooMuch);
    const viaA = await patch(A, s2, s.atok, 0, tooMuch);
    assert.deepStrictEqual(said(viaB), said(viaA));
    f.assertRestError(viaB, 413, 'PAYLOAD_TOO_LARGE');
    carol.terminate();
  });
});

test('a client gone mid-download through a non-owner, then the owner killed mid-download: the client sees the cut, no descriptor stays', async () => {
  await rh.withCluster(2, { args: ARGS }, async (r, [A, B]) => {
    const data = textBytes(40 * MiB);
    const s = await setup([A, B, B], 'fx-kill', data.length, sha256(data).toString('hex'));
    // Uploaded through B in one PATCH (a streamed 40 MiB body).
    const p = await patch(B, s.url, s.atok, 0, data);
    assert.strictEqual(p.status, 204, p.text);
    await s.alice.next('file-share-complete', 30000);
    const before = fdCount(B);
    const beforeA = fdCount(A);
    // A client that goes away mid-download: both instances let go of it.
    await new Promise((resolve) => {
      const req = http.request({ host: h.HOST, port: B.port, path: s.url, agent: false,
        headers: { Authorization: `Bearer ${s.btok}` } }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', () => {});
      req.end();
    });
    await h.waitFor(() => fdCount(B) <= before && fdCount(A) <= beforeA, 5000, 50,
      `descriptors back: B ${fdCount(B)}/${before}, A ${fdCount(A)}/${beforeA}`);
    const got = await new Promise((resolve) => {
      let n = 0;
      const req = http.request({ host: h.HOST, port: B.port, path: s.url, agent: false,
        headers: { Authorization: `Bearer ${s.btok}` } }, (res) => {
        assert.strictEqual(res.statusCode, 200);
        const want = Number(res.headers['content-length']);
        res.once('data', async (d) => {
          n += d.length;
          res.pause(); // a slow reader: the rest waits in the owner and in B
          await A.stop({ signal: 'SIGKILL' });
          res.on('data', (dd) => { n += dd.length; });
          res.resume();
        });
        res.on('end', () => resolve({ n, want, how: 'end' }));
        res.on('aborted', () => resolve({ n, want, how: 'aborted' }));
        res.on('error', () => resolve({ n, want, how: 'error' }));
      });
      req.on('error', () => resolve({ n, want: data.length, how: 'error' }));
      req.end();
    });
    assert.ok(got.n < got.want, `the body is short (${got.n} of ${got.want}), never presented complete`);
    assert.notStrictEqual(got.how, 'end', `the client saw the cut: ${JSON.stringify(got)}`);
    await h.waitFor(() => fdCount(B) <= before, 5000, 50, `B's descriptors back to ${before} (now ${fdCount(B)})`);
    const hb = (await rh.clusterHealth(B)).components.cluster;
    assert.strictEqual(hb.files_forward_failed, 1, JSON.stringify(hb));
    // Asked again while the owner is gone (its heartbeat outlives it a moment):
    // a 503 with a retry hint, or the room's new owner's answer; never a hang.
    const again = await f.rest(B, 'GET', s.url, { token: s.btok });
    assert.ok([503, 404, 403].includes(again.status), again.text);
    if (again.status === 503) {
      f.assertRestError(again, 503, 'SERVICE_UNAVAILABLE');
      assert.ok(Number(again.headers['retry-after']) > 0);
    }
  });
});

test('a client reset mid-upload through a non-owner: the owner rolls the PATCH back, B keeps no descriptor, the upload resumes', async () => {
  await rh.withCluster(2, { args: ARGS }, async (r, [A, B]) => {
    const data = textBytes(24 * MiB);
    const s = await setup([A, B, B], 'fx-reset', data.length, sha256(data).toString('hex'));
    // One forward first: libuv opens one spare descriptor (/dev/null, for
    // EMFILE) with a loop's first TCP handle, kept for the loop's life.
    assert.strictEqual((await f.rest(B, 'HEAD', s.url, { token: s.atok, headers: TUS })).status, 200);
    const beforeA = fdCount(A);
    const beforeB = fdCount(B);
    // A raw PATCH with a checksum of the whole body, cut after 4 MiB.
    const sock = net.connect(B.port, h.HOST);
    await new Promise((resolve) => sock.once('connect', resolve));
    const sum = sha256(data).toString('base64');
    sock.write(`PATCH ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.atok}\r\nTus-Resumable: 1.0.0\r\n` +
      `Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Checksum: sha256 ${sum}\r\n` +
      `Content-Length: ${data.length}\r\n\r\n`);
    await new Promise((resolve) => sock.write(data.subarray(0, 4 * MiB), resolve));
    // The owner has bytes of it (HEAD via A shows the PATCH under way, or its offset moved).
    await h.waitFor(async () => {
      const w = await patch(A, s.url, s.atok, 0, Buffer.alloc(0));
      return w.status === 409; // TRANSFER_STATE: the forwarded PATCH is being written on the owner
    }, 5000, 20, 'the forwarded PATCH reached the owner');
    sock.resetAndDestroy();
    // The owner sees the reset: the PATCH ends, rolled back (its checksum cannot be verified).
    await h.waitFor(async () => (await patch(A, s.url, s.atok, 0, Buffer.alloc(0))).status !== 409, 5000, 20,
      'the owner finished the cut PATCH');
    const hd = await f.rest(A, 'HEAD', s.url, { token: s.atok, headers: TUS });
    assert.strictEqual(hd.headers['upload-offset'], '0', 'nothing half-written stays on the owner');
    const dir = path.join(A.dataDir, 'files');
    for (const name of fs.readdirSync(dir)) assert.strictEqual(fs.statSync(path.join(dir, name)).size, 0, name);
    await h.waitFor(() => fdCount(B) <= beforeB, 5000, 50, `B's descriptors back to ${beforeB} (now ${fdCount(B)})`);
    await h.waitFor(() => fdCount(A) <= beforeA, 5000, 50, `A's descriptors back to ${beforeA} (now ${fdCount(A)})`);
    // The upload goes through B again, whole, and downloads byte-equal.
    const p = await patch(B, s.url, s.atok, 0, data, { 'Upload-Checksum': `sha256 ${sum}` });
    assert.strictEqual(p.status, 204, p.text);
    await s.alice.next('file-share-complete', 30000);
    const got = await download(B, s.url, s.btok);
    assert.ok(got.body.equals(data), 'byte-equal after the resumed upload');
  });
});

test('a request already forwarded is never forwarded again: 503 with a retry hint', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const owen = await h.join(A, 'fx-loop', 'owen', { role: 'host' });
    const tokn = f.tok(A, { sub: 'owen', room: 'fx-loop' });
    const url = '/webrtc/rooms/fx-loop/files/f0000000000000000000000000000000';
    // What another instance sends: B is not the owner and does not pass it on.
    const res = await f.rest(B, 'GET', url, { token: tokn, headers: { 'X-Huddle-Forwarded': 'someone' } });
    const e = f.assertRestError(res, 503, 'SERVICE_UNAVAILABLE');
    assert.ok(e.retry_after_ms > 0, JSON.stringify(e));
    // At the owner the header changes nothing.
    f.assertRestError(await f.rest(A, 'GET', url, { token: tokn, headers: { 'X-Huddle-Forwarded': 'someone' } }),
      404, 'FILE_NOT_FOUND');
    owen.terminate();
  });
});
