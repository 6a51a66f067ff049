'use strict';
// file-share-*: the server validates offers (name, type, size, sha256), names
// the transfer, and relays accept/reject/progress/complete only between the
// offer's sender and a receiver.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const h = require('./helpers');
const f = require('./feature_helpers');

const SHA = crypto.createHash('sha256').update('report').digest('hex');
const OTHER_SHA = crypto.createHash('sha256').update('something else').digest('hex');
const PDF = { name: 'report.pdf', size: 482133, mime_type: 'application/pdf', sha256: SHA };

function offer(extra = {}, id, to) {
  const m = { type: 'file-share-offer', payload: Object.assign({}, PDF, extra) };
  if (id) m.id = id;
  if (to) m.to = to;
  return m;
}

function assertOffer(m, from, payload) {
  assert.strictEqual(m.type, 'file-share-offer', JSON.stringify(m));
  assert.strictEqual(m.from, from);
  assert.strictEqual(typeof m.payload.transfer_id, 'string');
  assert.ok(m.payload.transfer_id.length >= 8, 'a transfer id');
  for (const k of ['name', 'size', 'mime_type', 'sha256']) {
    assert.strictEqual(m.payload[k], payload[k], `${k} in ${JSON.stringify(m.payload)}`);
  }
}

test('file-share-offer: broadcast to the room with an echo, directed only to "to" and the sender; names are cleaned', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'files', [['alice'], ['bob'], ['carol', { role: 'viewer' }]]);

    alice.send(offer({ name: '../../x/report.pdf' }, 'f1'));
    const got = await Promise.all([alice.next(), bob.next(), carol.next()]);
    for (const m of got) {
      assertOffer(m, 'alice', PDF);
      assert.strictEqual(m.payload.name, 'report.pdf', 'only the last path component is kept');
      assert.strictEqual(m.to, undefined);
    }
    assert.strictEqual(got[0].ref, 'f1', 'the echo tells the sender its transfer id (ref f1)');
    assert.strictEqual(got[1].payload.transfer_id, got[0].payload.transfer_id);
    assert.strictEqual(got[2].payload.transfer_id, got[0].payload.transfer_id);

    alice.send(offer({ name: 'C:\\Users\\alice\\..\\notes.txt', mime_type: 'text/plain', size: 10 }, 'f2', 'bob'));
    const [toBob, echo] = await Promise.all([bob.next(), alice.next()]);
    for (const m of [toBob, echo]) {
      assert.strictEqual(m.to, 'bob');
      assert.strictEqual(m.payload.name, 'notes.txt', 'backslash paths too');
      assert.strictEqual(m.payload.mime_type, 'text/plain');
    }
    assert.strictEqual(echo.ref, 'f2');
    assert.notStrictEqual(echo.payload.transfer_id, got[0].payload.transfer_id, 'a new transfer id');
    await carol.expectNone(150);

    // Bidi and control characters are removed from the name.
    bob.send(offer({ name: 'invoice\u202Egnp.pdf' }, 'f3'));
    for (const c of [alice, bob, carol]) {
      const m = await c.next();
      assert.strictEqual(m.payload.name, 'invoicegnp.pdf');
      assert.strictEqual(m.from, 'bob');
    }
    bob.send(offer({ name: 'a\u0007b\n.pdf' }, 'f4'));
    for (const c of [alice, bob, carol]) assert.strictEqual((await c.next()).payload.name, 'ab.pdf');
    await f.expectNoneAll([alice, bob, carol]);
    for (const c of [alice, bob, carol]) c.assertEnvelopes();
  });
});

test('file-share-offer: dangerous types, size, sha256 and name errors; nothing is delivered', async (t) => {
  await h.withServer({ args: ['--file-max-mb', '1'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'badfiles', [['alice'], ['bob']]);
    const MiB = 1024 * 1024;
    const cases = [
      ['setup.exe as application/x-msdownload', { name: 'setup.exe', mime_type: 'application/x-msdownload' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['a.html as text/html', { name: 'a.html', mime_type: 'text/html' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['x.svg as image/svg+xml', { name: 'x.svg', mime_type: 'image/svg+xml' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['run.sh as text/plain (refused by extension)', { name: 'run.sh', mime_type: 'text/plain' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['run.sh as application/x-sh', { name: 'run.sh', mime_type: 'application/x-sh' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['report.pdf.exe as application/pdf', { name: 'report.pdf.exe', mime_type: 'application/pdf' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['RTL-disguised invoice\\u202Efdp.exe', { name: 'invoice\u202Efdp.exe', mime_type: 'application/pdf' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['x.svg declared image/png', { name: 'x.svg', mime_type: 'image/png' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['page.htm declared text/plain', { name: 'page.htm', mime_type: 'text/plain' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['script.js as application/javascript', { name: 'script.js', mime_type: 'application/javascript' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['photo.png as application/octet-stream', { name: 'photo.png', mime_type: 'application/octet-stream' }, 'FILE_TYPE_NOT_ALLOWED'],
      ['2 MiB with --file-max-mb 1', { size: 2 * MiB }, 'FILE_TOO_LARGE'],
      ['1 MiB + 1 byte', { size: MiB + 1 }, 'FILE_TOO_LARGE'],
      ['sha256 63 characters', { sha256: SHA.slice(1) }, 'INVALID_MESSAGE'],
      ['sha256 not hex', { sha256: 'g'.repeat(64) }, 'INVALID_MESSAGE'],
      ['sha256 missing', { sha256: undefined }, 'INVALID_MESSAGE'],
      ['sha256 a number', { sha256: 1234 }, 'INVALID_MESSAGE'],
      ['size 0', { size: 0 }, 'INVALID_MESSAGE'],
      ['size negative', { size: -5 }, 'INVALID_MESSAGE'],
      ['size a string', { size: '100' }, 'INVALID_MESSAGE'],
      ['mime_type missing', { mime_type: undefined }, 'INVALID_MESSAGE'],
      ['name only a path', { name: '../../' }, 'INVALID_FILE_NAME'],
      ['name only dots and spaces', { name: ' . .. ' }, 'INVALID_FILE_NAME'],
      ['name of 300 bytes', { name: `${'n'.repeat(296)}.pdf` }, 'INVALID_FILE_NAME'],
      ['name missing', { name: undefined }, 'INVALID_FILE_NAME'],
      ['name a number', { name: 7 }, 'INVALID_FILE_NAME'],
    ];
    let n = 0;
    for (const [name, extra, code] of cases) {
      await h.sub(t, name, srv, async () => {
        const id = `o${++n}`;
        alice.send(offer(extra, id));
        await f.expectWsError(alice, code, id, name);
        await bob.expectNone(30);
      });
    }
    await h.sub(t, 'to an unknown user -> TARGET_NOT_FOUND', srv, async () => {
      alice.send(offer({}, 'tnf', 'nobody'));
      await f.expectWsError(alice, 'TARGET_NOT_FOUND', 'tnf');
    });
    await h.sub(t, 'exactly 1 MiB is allowed; type parameters and case are fine', srv, async () => {
      alice.send(offer({ size: MiB, mime_type: 'Application/PDF; charset=binary' }, 'max'));
      const m = await bob.next();
      assert.strictEqual(m.type, 'file-share-offer', JSON.stringify(m));
      assert.strictEqual(m.payload.size, MiB);
      assert.strictEqual((await alice.next()).ref, 'max');
    });
    await f.expectNoneAll([alice, bob], 50);
  });
});

test('file-share-offer: permission can_share_files', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, noperm, vic } = await f.joinAll(srv, 'fperm', [
      ['alice', { role: 'host' }], ['noperm', { perms: { can_share_files: false } }], ['vic', { role: 'viewer' }]]);
    noperm.send(offer({}, 'p1'));
    await f.expectWsError(noperm, 'PERMISSION_DENIED', 'p1');
    noperm.send(offer({}, 'p2', 'alice'));
    await f.expectWsError(noperm, 'PERMISSION_DENIED', 'p2');
    vic.send(offer({}, 'p3'));
    await f.expectWsError(vic, 'PERMISSION_DENIED', 'p3', 'viewers may not share files by default');
    await f.expectNoneAll([alice, noperm, vic]);
    // A viewer may still receive and accept an offer.
    alice.send(offer({}, 'a1'));
    const id = (await alice.next()).payload.transfer_id;
    await noperm.next('file-share-offer');
    assert.strictEqual((await vic.next('file-share-offer')).payload.transfer_id, id);
    vic.send({ type: 'file-share-accept', id: 'acc', to: 'alice', payload: { transfer_id: id } });
    const acc = await alice.next();
    assert.strictEqual(acc.type, 'file-share-accept', JSON.stringify(acc));
    assert.strictEqual(acc.from, 'vic');
    await f.expectNoneAll([noperm, vic]);
  });
});

test('file-share accept / reject / progress / complete: relayed only between the two parties, in the right state', async (t) => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol, dave } = await f.joinAll(srv, 'xfer', [['alice'], ['bob'], ['carol'], ['dave']]);
    const all = [alice, bob, carol, dave];
    const s = (name, fn) => h.sub(t, name, srv, fn);
    let T;

    await s('alice offers to the room', async () => {
      alice.send(offer({}, 'o'));
      T = (await alice.next()).payload.transfer_id;
      for (const c of [bob, carol, dave]) assert.strictEqual((await c.next()).payload.transfer_id, T);
    });

    await s('bob accepts: only alice receives it, from bob', async () => {
      bob.send({ type: 'file-share-accept', id: 'a1', to: 'alice', payload: { transfer_id: T } });
      const m = await alice.next();
      assert.strictEqual(m.type, 'file-share-accept', JSON.stringify(m));
      assert.strictEqual(m.from, 'bob');
      assert.strictEqual(m.to, 'alice');
      assert.strictEqual(m.payload.transfer_id, T);
      await f.expectNoneAll([bob, carol, dave]);
    });

    await s('carol rejects with a reason, sanitized: only alice receives it', async () => {
      carol.send({ type: 'file-share-reject', id: 'r1', to: 'alice', payload: { transfer_id: T, reason: 'not <now>\u202E' } });
      const m = await alice.next();
      assert.strictEqual(m.type, 'file-share-reject', JSON.stringify(m));
      assert.strictEqual(m.from, 'carol');
      assert.strictEqual(m.payload.transfer_id, T);
      assert.strictEqual(m.payload.reason, 'not &lt;now&gt;');
      await f.expectNoneAll([bob, carol, dave]);
    });

    const refusals = [
      ['the sender accepting its own offer', () => alice, { type: 'file-share-accept', id: 'x1', to: 'bob', payload: { transfer_id: () => T } }, 'TRANSFER_STATE'],
      ['the sender rejecting its own offer', () => alice, { type: 'file-share-reject', id: 'x2', to: 'dave', payload: { transfer_id: () => T } }, 'TRANSFER_STATE'],
      ['a second answer (accept again)', () => bob, { type: 'file-share-accept', id: 'x3', to: 'alice', payload: { transfer_id: () => T } }, 'TRANSFER_STATE'],
      ['a second answer (reject after accept)', () => bob, { type: 'file-share-reject', id: 'x4', to: 'alice', payload: { transfer_id: () => T } }, 'TRANSFER_STATE'],
      ['an answer sent to someone who is not the sender', () => dave, { type: 'file-share-accept', id: 'x5', to: 'bob', payload: { transfer_id: () => T } }, 'TRANSFER_STATE'],
      ['unknown transfer', () => bob, { type: 'file-share-accept', id: 'x6', to: 'alice', payload: { transfer_id: () => 'no-such-transfer' } }, 'TRANSFER_NOT_FOUND'],
      ['unknown transfer (progress)', () => alice, { type: 'file-share-progress', id: 'x7', to: 'bob', payload: { transfer_id: () => 'f000', bytes_transferred: 1 } }, 'TRANSFER_NOT_FOUND'],
      ['transfer_id missing', () => bob, { type: 'file-share-accept', id: 'x8', to: 'alice', payload: {} }, 'INVALID_MESSAGE'],
      ['accept without to', () => bob, { type: 'file-share-accept', id: 'x9', payload: { transfer_id: () => T } }, 'INVALID_MESSAGE'],
      ['progress before accept (dave -> alice)', () => dave, { type: 'file-share-progress', id: 'y1', to: 'alice', payload: { transfer_id: () => T, bytes_transferred: 10 } }, 'TRANSFER_STATE'],
      ['progress before accept (alice -> dave)', () => alice, { type: 'file-share-progress', id: 'y2', to: 'dave', payload: { transfer_id: () => T, bytes_transferred: 10 } }, 'TRANSFER_STATE'],
      ['complete before accept (dave -> alice)', () => dave, { type: 'file-share-complete', id: 'y3', to: 'alice', payload: { transfer_id: () => T, sha256: SHA } }, 'TRANSFER_STATE'],
      ['progress from a rejecter', () => carol, { type: 'file-share-progress', id: 'y4', to: 'alice', payload: { transfer_id: () => T, bytes_transferred: 10 } }, 'TRANSFER_STATE'],
      ['a third user sending progress for alice\'s transfer to bob', () => dave, { type: 'file-share-progress', id: 'y5', to: 'bob', payload: { transfer_id: () => T, bytes_transferred: 10 } }, 'TRANSFER_STATE'],
      ['a third user sending complete for alice\'s transfer to bob', () => carol, { type: 'file-share-complete', id: 'y6', to: 'bob', payload: { transfer_id: () => T } }, 'TRANSFER_STATE'],
      ['progress beyond the size', () => alice, { type: 'file-share-progress', id: 'y7', to: 'bob', payload: { transfer_id: () => T, bytes_transferred: PDF.size + 1 } }, 'INVALID_MESSAGE'],
      ['progress negative', () => alice, { type: 'file-share-progress', id: 'y8', to: 'bob', payload: { transfer_id: () => T, bytes_transferred: -1 } }, 'INVALID_MESSAGE'],
      ['progress not a number', () => alice, { type: 'file-share-progress', id: 'y9', to: 'bob', payload: { transfer_id: () => T, bytes_transferred: '10' } }, 'INVALID_MESSAGE'],
      ['complete with a malformed sha256', () => bob, { type: 'file-share-complete', id: 'y10', to: 'alice', payload: { transfer_id: () => T, sha256: 'abc' } }, 'INVALID_MESSAGE'],
    ];
    for (const [name, who, msg, code] of refusals) {
      await s(name, async () => {
        const m = JSON.parse(JSON.stringify(msg));
        if (msg.payload && typeof msg.payload.transfer_id === 'function') m.payload.transfer_id = msg.payload.transfer_id();
        who().send(m);
        await f.expectWsError(who(), code, m.id, name);
        await f.expectNoneAll(all, 30);
      });
    }

    await s('progress both ways after accept, with size and percent, only to the other party', async () => {
      alice.send({ type: 'file-share-progress', id: 'pg1', to: 'bob', payload: { transfer_id: T, bytes_transferred: 240000 } });
      const m = await bob.next();
      assert.strictEqual(m.type, 'file-share-progress', JSON.stringify(m));
      assert.strictEqual(m.from, 'alice');
      assert.strictEqual(m.to, 'bob');
      assert.strictEqual(m.payload.transfer_id, T);
      assert.strictEqual(m.payload.bytes_transferred, 240000);
      assert.strictEqual(m.payload.size, PDF.size);
      assert.ok(Math.abs(m.payload.percent - (100 * 240000) / PDF.size) < 0.01, `percent ${m.payload.percent}`);
      await f.expectNoneAll([alice, carol, dave]);
      bob.send({ type: 'file-share-progress', to: 'alice', payload: { transfer_id: T, bytes_transferred: 0 } });
      const back = await alice.next();
      assert.strictEqual(back.from, 'bob');
      assert.strictEqual(back.payload.percent, 0);
      bob.send({ type: 'file-share-progress', to: 'alice', payload: { transfer_id: T, bytes_transferred: PDF.size } });
      assert.strictEqual((await alice.next()).payload.percent, 100);
      await f.expectNoneAll([bob, carol, dave]);
    });

    await s('complete with the right sha256 -> verified true, only to the other party', async () => {
      bob.send({ type: 'file-share-complete', id: 'c1', to: 'alice', payload: { transfer_id: T, sha256: SHA.toUpperCase() } });
      const m = await alice.next();
      assert.strictEqual(m.type, 'file-share-complete', JSON.stringify(m));
      assert.strictEqual(m.from, 'bob');
      assert.deepStrictEqual(m.payload, { transfer_id: T, size: PDF.size, verified: true });
      await f.expectNoneAll([bob, carol, dave]);
      bob.send({ type: 'file-share-complete', id: 'c2', to: 'alice', payload: { transfer_id: T, sha256: SHA } });
      await f.expectWsError(bob, 'TRANSFER_STATE', 'c2', 'a second complete');
      bob.send({ type: 'file-share-progress', id: 'c3', to: 'alice', payload: { transfer_id: T, bytes_transferred: 1 } });
      await f.expectWsError(bob, 'TRANSFER_STATE', 'c3', 'progress after complete');
    });

    await s('a broadcast offer has one state per receiver: dave accepts now; wrong sha256 -> verified false; none -> no verified', async () => {
      dave.send({ type: 'file-share-accept', to: 'alice', payload: { transfer_id: T } });
      assert.strictEqual((await alice.next()).from, 'dave');
      alice.send({ type: 'file-share-complete', to: 'dave', payload: { transfer_id: T, sha256: OTHER_SHA } });
      const m = await dave.next();
      assert.strictEqual(m.type, 'file-share-complete', JSON.stringify(m));
      assert.deepStrictEqual(m.payload, { transfer_id: T, size: PDF.size, verified: false });
      await f.expectNoneAll([alice, bob, carol]);
    });

    await s('complete without sha256 carries no verified', async () => {
      alice.send(offer({}, 'o2', 'carol'));
      const T2 = (await alice.next()).payload.transfer_id;
      assert.strictEqual((await carol.next()).payload.transfer_id, T2);
      carol.send({ type: 'file-share-accept', to: 'alice', payload: { transfer_id: T2 } });
      await alice.next('file-share-accept');
      carol.send({ type: 'file-share-complete', to: 'alice', payload: { transfer_id: T2 } });
      const m = await alice.next();
      assert.deepStrictEqual(m.payload, { transfer_id: T2, size: PDF.size });
      await f.expectNoneAll([bob, carol, dave]);
    });
    for (const c of all) c.assertEnvelopes();
  });
});

test('file-share: a directed offer is answered only by its receiver and ends with a rejection; offers end when the sender leaves', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'xfer2', [['alice'], ['bob'], ['carol']]);
    alice.send(offer({}, 'd1', 'bob'));
    const T = (await alice.next()).payload.transfer_id;
    assert.strictEqual((await bob.next()).payload.transfer_id, T);
    await carol.expectNone(100);

    carol.send({ type: 'file-share-accept', id: 'c', to: 'alice', payload: { transfer_id: T } });
    await f.expectWsError(carol, 'TRANSFER_STATE', 'c', 'an offer made to someone else');
    await alice.expectNone(50);

    bob.send({ type: 'file-share-reject', id: 'r', to: 'alice', payload: { transfer_id: T } });
    const rj = await alice.next();
    assert.strictEqual(rj.type, 'file-share-reject');
    assert.deepStrictEqual(rj.payload, { transfer_id: T });
    bob.send({ type: 'file-share-accept', id: 'again', to: 'alice', payload: { transfer_id: T } });
    await f.expectWsError(bob, 'TRANSFER_NOT_FOUND', 'again', 'the rejected directed offer is gone');

    // A room offer lives until its sender leaves.
    alice.send(offer({}, 'd2'));
    const T2 = (await alice.next()).payload.transfer_id;
    await bob.next('file-share-offer');
    await carol.next('file-share-offer');
    await alice.end();
    await bob.next('user-left');
    await carol.next('user-left');
    const alice2 = await h.join(srv, 'xfer2', 'alice');
    await bob.next('user-joined');
    await carol.next('user-joined');
    bob.send({ type: 'file-share-accept', id: 'gone', to: 'alice', payload: { transfer_id: T2 } });
    await f.expectWsError(bob, 'TRANSFER_NOT_FOUND', 'gone', 'offers end when their sender leaves');
    await f.expectNoneAll([alice2, carol]);
  });
});

test('file-share-offer: at most 100 open offers per room', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'many', [['alice'], ['bob']]);
    for (let i = 0; i < 100; i++) alice.send(offer({ name: `f${i}.pdf` }));
    for (let i = 0; i < 100; i++) assert.strictEqual((await bob.next()).payload.name, `f${i}.pdf`);
    for (let i = 0; i < 100; i++) assert.strictEqual((await alice.next()).type, 'file-share-offer');
    alice.send(offer({ name: 'one-too-many.pdf' }, 'x'));
    const e = await alice.next();
    assert.strictEqual(e.type, 'error', `the 101st open offer is refused: ${JSON.stringify(e)}`);
    assert.strictEqual(e.ref, 'x');
    await bob.expectNone(100);
    // When the sender leaves, its offers end and there is room again.
    await alice.end();
    await bob.next('user-left');
    const carol = await h.join(srv, 'many', 'carol');
    await bob.next('user-joined');
    carol.send(offer({}, 'c'));
    assert.strictEqual((await bob.next()).type, 'file-share-offer');
  });
});
