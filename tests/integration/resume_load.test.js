'use strict';
// Reconnection under load (issue 9, "Done when"): 200 clients in 5 rooms chat at
// a modest rate for 60 s while random clients lose their connection (a TCP cut
// without a close frame, or a clean close with 1001) and come back with
// resume_token and last_seq after 0.1 to 3 s. At the end every client of a room
// must hold the same chat sequence (message_id list), without a gap or a
// duplicate, in increasing seq order, including every chat the server
// acknowledged; every resume must have said resumed: true and nobody may have
// seen anybody leave or join after the start.
//
// The server runs with the default rate limits: each client sends one chat every
// 2 to 4 s (about 20 a minute against 60 chat_message and 100 websocket_message).
// Runs about 65 s.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const r = require('./resume_helpers');

const ROOMS = 5;
const PER_ROOM = 40;
const DURATION_MS = 60000;
const CHAT_GAP_MS = [2000, 4000];
const CUT_EVERY_MS = 250; // one disconnect considered this often
const MAX_AWAY = 20; // at most this many clients away at once
const AWAY_MS = [100, 3000];
const CLEAN_CLOSE_SHARE = 0.2; // the rest are TCP cuts
const RESUME_TIMEOUT_MS = 10000;

const rand = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo));
const PRESENCE = new Set(['user-left', 'user-joined']);

/** One simulated participant: its current connection, what it has processed, its chat list. */
class Member {
  constructor(run, room, user) {
    this.run = run;
    this.room = room;
    this.user = user;
    this.token = r.tokenFor(run.srv, user, { room });
    this.c = null;
    this.live = false; // has a connection that has delivered room-state
    this.away = false;
    this.resuming = false;
    this.resumeToken = null;
    this.maxSeq = -1;
    this.lastRoomSeq = -1;
    this.chats = []; // message_id of every chat-message received, in order
    this.acked = []; // message_id of own chats the server echoed
    this.sent = 0;
    this.cuts = 0;
    this.resumes = 0;
    this.fenceSeen = false;
  }

  /** Takes over c: handles what it already received, then each message as it arrives. */
  attach(c) {
    this.c = c;
    c.user = this.user;
    const drain = () => {
      const ms = c.all.splice(0);
      c.queue.length = 0;
      for (const m of ms) this.onMessage(m, c);
    };
    drain();
    c.ws.on('message', drain);
  }

  onMessage(m, c) {
    const run = this.run;
    if (c !== this.c) {
      run.violation(`${this.user}: a message on a connection it had already dropped: ${JSON.stringify(m).slice(0, 200)}`);
      return;
    }
    if (m.__binary || m.__unparsable) {
      run.violation(`${this.user}: a non-JSON message`);
      return;
    }
    if (!Number.isInteger(m.seq)) {
      run.violation(`${this.user}: ${m.type} without an integer seq`);
      return;
    }
    if (m.type === 'room-state' || m.type === 'error') {
      if (m.seq < this.lastRoomSeq) run.violation(`${this.user}: ${m.type} seq ${m.seq} below the last room message ${this.lastRoomSeq}`);
    } else {
      if (m.seq <= this.lastRoomSeq) {
        run.violation(`${this.user}: ${m.type} seq ${m.seq} not above the last one processed (${this.lastRoomSeq}): a duplicate or out of order` +
          `${this.resumes ? ` (after ${this.resumes} resume(s))` : ''}`, true);
      }
      this.lastRoomSeq = m.seq;
    }
    if (m.seq > this.maxSeq) this.maxSeq = m.seq;

    switch (m.type) {
      case 'room-state':
        if (this.resuming) {
          if (m.payload.resumed !== true) {
            run.violation(`${this.user} in ${this.room}: a resume with last_seq ${this.resumeFrom} within the grace period got room-state ` +
              `resumed: ${JSON.stringify(m.payload.resumed)}`, true);
          } else {
            this.resumes++;
            run.resumes++;
          }
          this.resuming = false;
        }
        this.resumeToken = m.payload.self && m.payload.self.resume_token;
        if (typeof this.resumeToken !== 'string' || !this.resumeToken) {
          run.violation(`${this.user}: room-state without self.resume_token`, true);
        }
        this.live = true;
        this.away = false;
        break;
      case 'chat-message':
        this.chats.push(m.payload.message_id);
        if (m.from === this.user && m.ref) this.acked.push(m.payload.message_id);
        if (m.payload.text === `fence ${this.room}`) this.fenceSeen = true;
        break;
      case 'error':
        run.violation(`${this.user}: error ${JSON.stringify(m.payload)}`, true);
        break;
      default:
        if (run.started && PRESENCE.has(m.type)) {
          run.violation(`${this.user} in ${this.room} saw ${m.type} ${JSON.stringify(m.payload).slice(0, 120)} ` +
            'after the start: a dropped member must look reconnecting, never leave and join', true);
        }
        if (m.type === 'participant-update' && m.payload && m.payload.status) run.statusUpdates++;
    }
  }

  chat() {
    if (!this.live || this.run.stopping) return;
    const k = ++this.sent;
    this.c.send({ type: 'chat-message', id: `${this.user}-${k}`, payload: { text: `${this.user} #${k}` } });
  }

  /** Drops the connection (a cut, or a clean 1001 close), stays away, resumes. */
  async bounce() {
    const run = this.run;
    this.live = false;
    this.away = true;
    this.cuts++;
    const old = this.c;
    if (Math.random() < CLEAN_CLOSE_SHARE) {
      run.cleanCloses++;
      old.ws.close(1001, 'going away');
      await old.waitClose(5000);
    } else {
      run.cuts++;
      await r.cut(old);
    }
    await h.delay(rand(AWAY_MS[0], AWAY_MS[1]));
    if (run.stopped) return;
    this.resuming = true;
    this.resumeFrom = this.maxSeq;
    const c = await r.connectResume(run.srv, this.room, this.token, this.resumeToken, this.maxSeq,
      { via: Math.random() < 0.5 ? 'query' : 'header' });
    this.attach(c);
    await h.waitFor(() => this.live || run.stopped, RESUME_TIMEOUT_MS, 20,
      `${this.user}'s resume in ${this.room} to deliver room-state`);
  }
}

class Run {
  constructor(srv) {
    this.srv = srv;
    this.members = [];
    this.rooms = [];
    this.violations = [];
    this.fatal = false;
    this.started = false;
    this.stopping = false;
    this.stopped = false;
    this.timers = new Set();
    this.pending = new Set();
    this.cuts = 0;
    this.cleanCloses = 0;
    this.resumes = 0;
    this.statusUpdates = 0;
  }

  violation(text, fatal = false) {
    if (this.stopped) return;
    if (this.violations.length < 50) this.violations.push(text);
    if (fatal) this.fatal = true;
  }

  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  track(p, what) {
    const q = p.catch((e) => this.violation(`${what}: ${e.message.split('\n')[0]}`, true))
      .finally(() => this.pending.delete(q));
    this.pending.add(q);
  }

  stop() {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

async function joinRoom(run, room) {
  const members = [];
  for (let i = 0; i < PER_ROOM; i++) {
    const m = new Member(run, room, `${room}-u${i}`);
    const c = await h.connect(run.srv, room, m.token);
    const st = await c.next(undefined, 5000);
    assert.strictEqual(st.type, 'room-state', `${m.user}: first message ${JSON.stringify(st).slice(0, 200)}`);
    m.attach(c);
    members.push(m);
  }
  return members;
}

/** Where two message_id lists part, for the failure message. */
function diff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const sa = new Set(a);
  const sb = new Set(b);
  const missing = b.filter((x) => !sa.has(x));
  const extra = a.filter((x) => !sb.has(x));
  const dups = a.length - sa.size;
  return `first difference at index ${i} (${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])}), lengths ${a.length} vs ${b.length}, ` +
    `missing ${missing.length} ${JSON.stringify(missing.slice(0, 5))}, extra ${extra.length} ${JSON.stringify(extra.slice(0, 5))}, duplicates ${dups}`;
}

test('200 clients, random cuts and resumes for 60 s: every client of a room holds the same chat sequence, no gap, no duplicate', { timeout: 180000 }, async (t) => {
  await h.withServer({ rateLimits: true }, async (srv) => {
    const run = new Run(srv);
    const t0 = Date.now();
    const roomNames = Array.from({ length: ROOMS }, (_, i) => `load${i}`);
    const byRoom = await Promise.all(roomNames.map((room) => joinRoom(run, room)));
    byRoom.forEach((ms, i) => run.rooms.push({ name: roomNames[i], members: ms }));
    run.members = byRoom.flat();
    for (const m of run.members) await m.c.sync(5000); // every user-joined has arrived
    run.started = true;
    const joinedMs = Date.now() - t0;

    // Everyone chats every 2-4 s.
    for (const m of run.members) {
      const loop = () => {
        m.chat();
        if (!run.stopping) run.later(rand(CHAT_GAP_MS[0], CHAT_GAP_MS[1]), loop);
      };
      run.later(rand(0, CHAT_GAP_MS[1]), loop);
    }
    // Random disconnects.
    const churn = () => {
      if (run.stopping) return;
      const away = run.members.filter((m) => m.away).length;
      if (away < MAX_AWAY) {
        const candidates = run.members.filter((m) => m.live);
        const m = candidates[rand(0, candidates.length)];
        if (m) run.track(m.bounce(), `${m.user} bounce`);
      }
      run.later(CUT_EVERY_MS, churn);
    };
    run.later(CUT_EVERY_MS, churn);

    const end = Date.now() + DURATION_MS;
    while (Date.now() < end && !run.fatal) await h.delay(100);
    run.stopping = true;
    try {
      if (!run.fatal) {
        // Everyone back, every chat handled, then one fence chat per room.
        await h.waitFor(() => run.fatal || run.members.every((m) => m.live), RESUME_TIMEOUT_MS + 5000, 50,
          'every away client to be back');
      }
      if (!run.fatal) {
        await Promise.all([...run.pending]);
        for (const m of run.members) await m.c.sync(5000);
        for (const room of run.rooms) room.members[0].c.send({ type: 'chat-message', payload: { text: `fence ${room.name}` } });
        await h.waitFor(() => run.fatal || run.members.every((m) => m.fenceSeen), 15000, 50,
          'the fence chat of each room at every client');
      }
    } finally {
      run.stop();
    }
    const stats = `${run.members.length} clients, ${run.cuts} TCP cuts + ${run.cleanCloses} 1001 closes, ` +
      `${run.resumes} resumes, ${run.members.reduce((a, m) => a + m.sent, 0)} chats sent, joined in ${joinedMs} ms`;
    assert.deepStrictEqual(run.violations, [], `protocol violations (${stats})`);

    const problems = [];
    for (const room of run.rooms) {
      const ref = room.members[0];
      const refSet = new Set(ref.chats);
      if (refSet.size !== ref.chats.length) problems.push(`${room.name}: ${ref.user} holds duplicates: ${diff(ref.chats, [...refSet])}`);
      for (const m of room.members) {
        if (m !== ref && (m.chats.length !== ref.chats.length || m.chats.some((x, i) => x !== ref.chats[i]))) {
          problems.push(`${room.name}: ${m.user} (${m.cuts} drops) differs from ${ref.user} (${ref.cuts} drops): ${diff(m.chats, ref.chats)}`);
        }
        const lost = m.acked.filter((x) => !refSet.has(x));
        if (lost.length) problems.push(`${room.name}: ${lost.length} chats of ${m.user} acknowledged by the server are not in the room's sequence: ${JSON.stringify(lost.slice(0, 5))}`);
      }
      const bounced = room.members.filter((m) => m.cuts > 0).length;
      if (!bounced) problems.push(`${room.name}: no client of this room was disconnected (the test did not exercise it)`);
    }
    assert.deepStrictEqual(problems.slice(0, 30), [], `every client of a room holds the same chat sequence (${stats})`);
    assert.ok(run.cuts + run.cleanCloses >= 100, `enough disconnects to mean something: ${stats}`);
    assert.strictEqual(run.resumes, run.cuts + run.cleanCloses, `every disconnect was resumed: ${stats}`);
    t.diagnostic(`resume load: ${stats}; chats per room ${run.rooms.map((x) => x.members[0].chats.length).join('/')}`);
  });
});
