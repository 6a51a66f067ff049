'use strict';
// reaction: one emoji (or one emoji sequence) delivered to everyone, sender
// included; anything else is INVALID_REACTION; can_react is enforced.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

const VALID = [
  ['simple', '👍'],
  ['skin tone', '👍🏽'],
  ['ZWJ sequence', '👩‍💻'],
  ['family ZWJ sequence', '👨‍👩‍👧‍👦'],
  ['flag', '🇫🇷'],
  ['keycap', '1️⃣'],
  ['emoji with variation selector', '❤️'],
  ['heart without selector', '❤'],
  ['party', '🎉'],
];

const INVALID = [
  ['plain text', 'hi'],
  ['two emoji', '👍👍'],
  ['HTML', '<b>'],
  ['emoji and text', '👍 yes'],
  ['emoji with trailing space', '👍 '],
  ['empty', ''],
  ['a letter', 'a'],
  ['a digit alone', '1'],
  ['script tag', '<script>alert(1)</script>'],
  ['RTL override + emoji', '\u202e👍'],
  ['lone skin tone modifier twice', '👍🏽🏽'],
  ['two flags', '🇫🇷🇩🇪'],
  ['over 64 bytes', '👨‍👩‍👧‍👦'.repeat(3)],
];

test('reaction: a valid emoji reaches everyone, sender included', async (t) => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, vic } = await f.joinAll(srv, 'react', [['alice', { role: 'host' }], ['bob'], ['vic', { role: 'viewer' }]]);
    let n = 0;
    for (const [name, emoji] of VALID) {
      await h.sub(t, name, srv, async () => {
        const id = `r${++n}`;
        const sender = [alice, bob, vic][n % 3];
        sender.send({ type: 'reaction', id, payload: { emoji } });
        const got = await Promise.all([alice.next(), bob.next(), vic.next()]);
        for (const m of got) {
          assert.strictEqual(m.type, 'reaction', JSON.stringify(m));
          assert.strictEqual(m.from, sender.user);
          assert.strictEqual(m.room, 'react');
          assert.deepStrictEqual(m.payload, { emoji });
        }
        assert.strictEqual(got[0].seq, got[1].seq);
        const echo = got[[alice, bob, vic].indexOf(sender)];
        assert.strictEqual(echo.ref, id, 'the sender\'s copy carries its ref');
      });
    }
    await f.expectNoneAll([alice, bob, vic], 50);
    for (const c of [alice, bob, vic]) c.assertEnvelopes();
  });
});

test('reaction: anything but one emoji is INVALID_REACTION and nothing is delivered', async (t) => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'badreact', [['alice'], ['bob']]);
    let n = 0;
    const cases = INVALID.map(([name, emoji]) => [name, { emoji }]).concat([
      ['emoji a number', { emoji: 128077 }],
      ['emoji an array', { emoji: ['👍'] }],
      ['no emoji', {}],
    ]);
    for (const [name, payload] of cases) {
      await h.sub(t, name, srv, async () => {
        const id = `b${++n}`;
        alice.send({ type: 'reaction', id, payload });
        await f.expectWsError(alice, 'INVALID_REACTION', id, name);
        await bob.expectNone(30);
      });
    }
    // Still alive and valid reactions still pass.
    alice.send({ type: 'reaction', payload: { emoji: '✅' } });
    assert.strictEqual((await bob.next()).payload.emoji, '✅');
  });
});

test('reaction: perms {can_react:false} -> PERMISSION_DENIED, others receive nothing', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, quiet } = await f.joinAll(srv, 'noreact', [
      ['alice', { role: 'host' }], ['bob'], ['quiet', { role: 'participant', perms: { can_react: false } }]]);
    assert.strictEqual(quiet.state.payload.self.permissions.can_react, false);
    quiet.send({ type: 'reaction', id: 'q1', payload: { emoji: '👍' } });
    await f.expectWsError(quiet, 'PERMISSION_DENIED', 'q1');
    // Even an invalid reaction is refused for the permission (no can_react, no parsing).
    quiet.send({ type: 'reaction', id: 'q2', payload: { emoji: 'hi' } });
    await f.expectWsError(quiet, 'PERMISSION_DENIED', 'q2');
    await f.expectNoneAll([alice, bob, quiet]);
    // A host with can_react:false is refused too: perms override the role.
    const hostNo = await h.join(srv, 'noreact', 'h2', { role: 'host', perms: { can_react: false } });
    for (const c of [alice, bob, quiet]) await c.next('user-joined');
    hostNo.send({ type: 'reaction', id: 'q3', payload: { emoji: '👍' } });
    await f.expectWsError(hostNo, 'PERMISSION_DENIED', 'q3');
    await f.expectNoneAll([alice, bob, quiet]);
    // The refused user still receives the others' reactions.
    bob.send({ type: 'reaction', payload: { emoji: '🎉' } });
    for (const c of [alice, bob, quiet, hostNo]) assert.strictEqual((await c.next('reaction')).payload.emoji, '🎉');
  });
});
