'use strict';
// Resume replays user-joined byte for byte (issue 16, memory per idle
// connection): the room log keeps a user-joined entry as the few fields it
// was rendered from, not as the frame, and renders it again at a resume. A
// member that was away must get exactly the text a member that stayed got,
// for fresh joins and for a session replaced by a new join, with names that
// need escaping.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');
const r = require('./resume_helpers');

/** Records the text of every message c receives from now on. */
function rawTexts(c) {
  const out = [];
  c.ws.on('message', (data, isBinary) => { if (!isBinary) out.push(data.toString()); });
  return out;
}

const joinedOf = (texts, user) => texts.filter((t) => {
  const m = JSON.parse(t);
  return m.type === 'user-joined' && m.payload.user_id === user;
});

test('a resume replays each user-joined it missed as the same bytes the others got live', async () => {
  await h.withServer({ args: f.RATES_OFF }, async (srv) => {
    const alice = await h.join(srv, 'rj', 'alice', { role: 'host' });
    const obs = await h.join(srv, 'rj', 'obs');
    const bob = await h.join(srv, 'rj', 'bob');
    await f.settle([alice, obs, bob]);
    const seen = rawTexts(obs);
    const last = r.lastSeq(bob);
    const resumeToken = bob.state.payload.self.resume_token;
    await r.cut(bob);
    await r.nextPresence(obs, 'bob');

    // While bob is away: plain joins, a name that needs escaping, a
    // moderator, and a member whose second join replaces its session.
    await h.join(srv, 'rj', 'carol');
    await h.join(srv, 'rj', 'dave', { name: 'Dävé "the \\ quoted" </script>\u2028 😀' });
    await h.join(srv, 'rj', 'erin', { role: 'moderator', name: 'Erin' });
    await h.join(srv, 'rj', 'erin', { role: 'moderator', name: 'Erin' });
    const who = ['carol', 'dave', 'erin'];
    for (const u of who) await obs.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === u, 3000, `${u} joined, at obs`);
    await obs.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'erin' &&
      obs.all.filter((x) => x.type === 'user-joined' && x.payload.user_id === 'erin').length === 2, 3000, 'erin joined twice, at obs');

    // A raw socket: the frames' text exactly as the server sent it.
    const q = `resume_token=${encodeURIComponent(resumeToken)}&last_seq=${last}`;
    const c = await h.rawWsConnect(srv, `rj?${q}`, r.tokenFor(srv, 'bob'));
    assert.strictEqual(c.response.status, 101, 'the resume is upgraded');
    const before = [];
    for (;;) {
      const fr = await c.nextFrame(5000);
      if (fr.opcode !== 1) continue;
      const text = fr.payload.toString('utf8');
      const m = JSON.parse(text);
      if (m.type === 'room-state') {
        assert.strictEqual(m.payload.resumed, true, 'the resume was accepted');
        break;
      }
      before.push(text);
    }
    for (const u of who) {
      const live = joinedOf(seen, u);
      assert.ok(live.length >= 1, `obs got ${u}'s user-joined`);
      assert.deepStrictEqual(joinedOf(before, u), live, `${u}'s user-joined, replayed to bob, is the text obs got live`);
    }
    assert.strictEqual(joinedOf(before, 'erin').length, 2, 'both of erin\'s joins are replayed');
  });
});
