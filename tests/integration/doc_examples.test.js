// The examples in docs/protocol.md are executed against the running server,
// so a mismatch between the document and the server fails the suite.
//
// Every fenced block of docs/protocol.md is one of:
//   - WebSocket messages (JSON values with a "type"): a client message (no
//     "seq") is sent from a member of a prepared room and must not be refused
//     for its shape; a server message (with "seq") must match, in keys and
//     value types, a message of that type the server really sent while the
//     client examples ran (values compared where deterministic: type, the
//     server's "from", error code/message/recovery).
//   - REST exchanges: "METHOD /path", headers, optional JSON body, then
//     "NNN {json}" (or "NNN OK" and JSON): run, status and body shape compared.
//   - JSON bodies under an endpoint heading ("### N. `METHOD /path`"): the
//     answer of that endpoint; "<!-- example: request body -->" before a block
//     makes it the body of the next call of that endpoint instead.
//   - "<!-- example: rest error -->": the shape of a REST error body.
//   - Prometheus text ("# TYPE name kind" lines): each name must be served.
//   - "<!-- example: not executable (reason) -->" skips a block, with a reason.
// Objects match when they have the same keys (a "..." key in the document
// allows more); arrays when the document's first element matches some element.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const f = require('./feature_helpers');
const rh = require('./resume_helpers');

const root = path.resolve(__dirname, '../..');
const DOC = fs.readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');

/** Parses a sequence of JSON values (each may span lines). Returns the values, or null. */
function jsonValues(text) {
  const out = [];
  let acc = '';
  for (const line of text.split('\n')) {
    acc += `${line}\n`;
    if (!acc.trim()) { acc = ''; continue; }
    try { out.push(JSON.parse(acc)); acc = ''; } catch (_) { /* incomplete */ }
  }
  return acc.trim() ? null : out;
}

/** Fenced blocks with their line, the nearest endpoint heading and a marker comment. */
function blocks() {
  const out = [];
  const lines = DOC.split('\n');
  let heading = null;
  let marker = null;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const hm = /^#{2,4} (?:[0-9-]+\. )?`(GET|POST|DELETE|WS) ([^`\s]+)`/.exec(l);
    if (/^#{2,4} /.test(l)) heading = hm ? { method: hm[1], path: hm[2] } : null;
    const mm = /^<!-- example: (.+?) -->$/.exec(l);
    if (mm) { marker = mm[1]; continue; }
    if (/^```/.test(l)) {
      const start = i + 1;
      let j = start;
      while (j < lines.length && !/^```/.test(lines[j])) j++;
      out.push({ line: start, text: lines.slice(start, j).join('\n'), heading, marker });
      marker = null;
      i = j;
    } else if (l.trim()) {
      marker = marker && l.startsWith('<!--') ? marker : (l.trim() ? null : marker);
    }
  }
  return out;
}

const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Returns null when doc matches real, else a path and reason. */
function mismatch(doc, real, where = '$') {
  const td = typeOf(doc);
  const tr = typeOf(real);
  if (td === 'null' || tr === 'null') return null; // nullable on either side
  if (td !== tr) return `${where}: document has ${td}, server sent ${tr} (${JSON.stringify(real).slice(0, 80)})`;
  if (td === 'array') {
    if (!doc.length || !real.length) return null;
    const first = doc[0];
    if (real.some((r) => mismatch(first, r, where) === null)) return null;
    return mismatch(first, real[0], `${where}[0]`);
  }
  if (td !== 'object') return null;
  const open = Object.prototype.hasOwnProperty.call(doc, '...');
  for (const k of Object.keys(doc)) {
    if (k === '...') continue;
    if (!(k in real) && open) continue; // an open object's keys are examples
    if (!(k in real)) return `${where}.${k}: documented, not sent by the server`;
    const m = mismatch(doc[k], real[k], `${where}.${k}`);
    if (m) return m;
  }
  if (!open) {
    for (const k of Object.keys(real)) {
      if (!(k in doc)) return `${where}.${k}: sent by the server, not documented`;
    }
  }
  return null;
}

function errorTable() {
  const src = fs.readFileSync(path.join(root, 'src/guard/errors.c'), 'utf8');
  const t = {};
  for (const m of src.matchAll(/E\(API_\w+, "([A-Z_]+)", (\d+), "((?:[^"\\]|\\.)*)",\s*"((?:[^"\\]|\\.)*)"\)/g)) {
    try {
      t[m[1]] = { status: Number(m[2]), message: JSON.parse(`"${m[3]}"`), recovery: JSON.parse(`"${m[4]}"`) };
    } catch (_) { /* a C escape JSON does not have (\U...): not compared */ }
  }
  return t;
}

/** Deterministic values of an error payload or body must be the server's. */
function checkErrorValues(e, table, where) {
  if (!e || typeof e.code !== 'string' || !table[e.code]) return;
  if (typeof e.message === 'string') assert.strictEqual(e.message, table[e.code].message, `${where}: message of ${e.code}`);
  if (typeof e.recovery === 'string') assert.strictEqual(e.recovery, table[e.code].recovery, `${where}: recovery of ${e.code}`);
}

// A refusal that only says the example's ids do not exist in this room: the
// shape was accepted.
const STATE_CODES = new Set(['TRANSFER_NOT_FOUND', 'TRANSFER_STATE', 'MESSAGE_NOT_FOUND', 'BREAKOUT_NOT_FOUND',
  'RECORDING_NOT_FOUND', 'RECORDING_NOT_ACTIVE', 'RECORDING_ALREADY_ACTIVE', 'STREAM_NOT_FOUND', 'STREAM_NOT_ACTIVE',
  'HAND_NOT_RAISED', 'HAND_ALREADY_RAISED', 'WAITING_USER_NOT_FOUND', 'USER_NOT_IN_ROOM', 'INSUFFICIENT_RANK',
  'STREAM_LIMIT_REACHED', 'BREAKOUT_LIMIT_REACHED']);

test('every example in docs/protocol.md matches the running server', async () => {
  const table = errorTable();
  const all = blocks();
  assert.ok(all.length >= 40, `found ${all.length} blocks`);
  await h.withServer({ args: [...f.RATES_OFF, '--rate-reaction', '1/1m', '--dev-tokens'] }, async (srv) => {
    const admin = f.adminTok(srv);
    // The people the examples name, in the rooms they name.
    const names = ['alice', 'bob', 'carol', 'mia', 'dave'];
    const rooms = {};
    for (const room of ['demo', 'standup']) {
      const specs = names.map((n, i) => [n, i === 0 ? 'host' : 'participant', { name: n[0].toUpperCase() + n.slice(1) }]);
      rooms[room] = await f.people(srv, room, specs);
    }
    const demo = rooms.demo;
    const received = [];
    const collect = () => {
      for (const room of Object.values(rooms)) {
        for (const c of Object.values(room)) { received.push(...c.queue); c.queue.length = 0; }
      }
    };
    collect();
    for (const c of Object.values(demo)) received.push(c.state);
    const ids = { room_id: 'demo', user_id: 'bob', limit_type: 'chat_message' };
    const remember = (j) => {
      const s = JSON.stringify(j || {});
      for (const k of ['recording_id', 'stream_id', 'breakout_room_id', 'transfer_id']) {
        const m = new RegExp(`"${k}":"([^"]+)"`).exec(s);
        if (m) ids[k] = m[1];
      }
    };
    const fill = (p) => p.replace(/\{([a-z_]+)\}/g, (_, k) => ids[k] || `unknown-${k}`);
    const failures = [];
    const serverExamples = [];
    let pendingBody;
    let n = 0;

    for (const b of all) {
      const where = `docs/protocol.md:${b.line}`;
      try {
        if (b.marker && b.marker.startsWith('not executable')) continue;
        const text = b.text.trim();
        if (b.marker === 'rest error') {
          const r = await f.rest(srv, 'GET', '/webrtc/rooms/nowhere/participants', { token: admin });
          const doc = JSON.parse(text);
          const m = mismatch(doc, r.json) || mismatch(doc.error, Object.assign({ detail: 'x' }, r.json.error));
          if (m && mismatch(doc, { error: Object.assign({ detail: 'x' }, r.json.error) })) failures.push(`${where}: ${m}`);
          n++;
          continue;
        }
        if (/^# (TYPE|HELP) /m.test(text)) {
          const r = await f.rest(srv, 'GET', '/metrics', { token: admin });
          for (const m of text.matchAll(/^# TYPE (\S+) (\S+)/gm)) {
            if (!r.text.includes(`# TYPE ${m[1]} ${m[2]}\n`)) failures.push(`${where}: metric ${m[1]} (${m[2]}) is not served`);
          }
          for (const m of text.matchAll(/^# HELP (\S+) (.+)$/gm)) {
            if (!r.text.includes(`# HELP ${m[1]} ${m[2]}\n`)) failures.push(`${where}: HELP of ${m[1]} differs`);
          }
          for (const m of text.matchAll(/^([a-z_]+)(\{[^}]*\})? \S+$/gm)) {
            if (!new RegExp(`^${m[1]}[{ ]`, 'm').test(r.text)) failures.push(`${where}: sample ${m[1]} is not served`);
          }
          n++;
          continue;
        }
        const req = /^(GET|POST|DELETE) (\/\S+)(?: HTTP\/1\.1)?\n/.exec(`${text}\n`);
        if (req) {
          const lines = text.split('\n');
          let i = 1;
          const headers = {};
          while (i < lines.length && lines[i].trim()) {
            const hm = /^([A-Za-z-]+): (.*)$/.exec(lines[i]);
            if (hm) headers[hm[1].toLowerCase()] = hm[2];
            i++;
          }
          const rest = lines.slice(i).join('\n').trim();
          if (req[2].startsWith('/webrtc/ws/')) {
            const room = /\/webrtc\/ws\/([^?\s]+)/.exec(req[2])[1];
            const c = await h.join(srv, room, 'upgrader');
            await c.end();
            n++;
            continue;
          }
          const sm = /(?:^|\n)(\d{3})(?: [A-Za-z ]+)?\s*(\{[\s\S]*)?$/.exec(rest);
          assert.ok(sm, `${where}: a status line after the request`);
          const bodyText = rest.slice(0, sm.index).trim();
          const expectStatus = Number(sm[1]);
          const expectBody = sm[2] ? JSON.parse(sm[2]) : null;
          let token = admin;
          const inRoom = /^\/webrtc\/rooms\/([^/]+)\//.exec(req[2]);
          if (/host token/.test(headers.authorization || '')) token = rooms[inRoom ? inRoom[1] : 'demo'].alice.token;
          const r = await f.rest(srv, req[1], req[2], bodyText ? { token, json: JSON.parse(bodyText) } : { token });
          remember(r.json);
          if (r.status !== expectStatus) failures.push(`${where}: ${req[1]} ${req[2]} answered ${r.status}, document says ${expectStatus}: ${r.text.slice(0, 200)}`);
          else if (expectBody) {
            const m = mismatch(expectBody, r.json);
            if (m) failures.push(`${where}: ${req[1]} ${req[2]}: ${m}`);
          }
          n++;
          continue;
        }
        const st = /^(\d{3}) (\{[\s\S]*)$/.exec(text);
        const values = st ? [JSON.parse(st[2])] : jsonValues(text);
        assert.ok(values, `${where}: not JSON, not a REST exchange, and not marked "not executable": ${text.slice(0, 80)}`);
        if (values.every((v) => v && typeof v.type === 'string' && !b.marker)) {
          for (const v of values) {
            if (v.seq !== undefined) { serverExamples.push({ where, v }); continue; }
            // A client message: sent from a member; refused only for state, never for shape.
            const msg = JSON.parse(JSON.stringify(v));
            msg.id = `doc${b.line}`;
            const from = msg.to === 'alice' ? demo.bob : demo.alice;
            from.send(msg);
            await from.sync();
            const err = from.queue.find((m) => m.type === 'error' && m.ref === msg.id);
            if (err && !STATE_CODES.has(err.payload.code)) {
              failures.push(`${where}: client example ${v.type} refused: ${err.payload.code} ${err.payload.detail || ''}`);
            }
            for (const c of Object.values(demo)) await c.sync();
            collect();
            remember(received.slice(-20));
            n++;
          }
          continue;
        }
        // A JSON body under an endpoint heading.
        const target = /^(GET|POST|DELETE) (\/\S+)$/.exec(b.marker || '');
        const endpoint = target ? { method: target[1], path: target[2] } : b.heading;
        assert.ok(endpoint, `${where}: a JSON block outside any endpoint section needs a marker`);
        if (b.marker === 'request body') { pendingBody = values[0]; continue; }
        const method = endpoint.method;
        const p = fill(endpoint.path);
        const opts = { token: admin };
        if (method === 'POST') opts.json = pendingBody || {};
        pendingBody = undefined;
        const r = await f.rest(srv, method, p, opts);
        remember(r.json);
        if (st && r.status !== Number(st[1])) failures.push(`${where}: ${method} ${p} answered ${r.status}, document says ${st[1]}: ${r.text.slice(0, 200)}`);
        else if (r.status >= 300) failures.push(`${where}: ${method} ${p} answered ${r.status}: ${r.text.slice(0, 200)}`);
        else {
          const m = mismatch(values[0], r.json);
          if (m) failures.push(`${where}: ${method} ${p}: ${m}`);
        }
        n++;
      } catch (e) {
        failures.push(`${where}: ${e.message}`);
      }
    }

    // Errors the examples show: malformed JSON and an unknown recipient.
    demo.alice.send('{bad');
    demo.alice.send({ type: 'offer', id: 'c17', to: 'nobody', payload: { type: 'offer', sdp: 'v=0\r\n' } });
    // And a rate-limit refusal (reaction is limited to 1/min here).
    demo.bob.send({ type: 'reaction', payload: { emoji: '\u{1F44D}' } });
    demo.bob.send({ type: 'reaction', id: 'c9', payload: { emoji: '\u{1F44D}' } });
    // Resume (reconnection): carol's connection drops and she resumes (the
    // others see participant-update with a status); dave resumes with a token
    // the server never issued (RESUME_INVALID, then a fresh room-state).
    for (const c of Object.values(demo)) await c.sync();
    collect();
    const carolSeq = rh.lastSeq(demo.carol);
    const carolRt = [...demo.carol.all].reverse().find((m) => m.type === 'room-state').payload.self.resume_token;
    await rh.cut(demo.carol);
    await demo.alice.nextWhere((m) => rh.isStatusOf(m, 'carol'), 3000, 'carol reconnecting at alice');
    const back = await rh.joinResume(srv, 'demo', demo.carol.token, carolRt, carolSeq, { user: 'carol' });
    assert.strictEqual(back.state.payload.resumed, true, 'carol resumed');
    demo.carol = back.c;
    received.push(...back.before, back.state);
    const refused = await rh.joinResume(srv, 'demo', demo.dave.token, 'f'.repeat(32), 0, { user: 'dave' });
    assert.strictEqual(refused.state.payload.resumed, false, 'a refused resume joins afresh');
    demo.dave = refused.c;
    received.push(...refused.before, refused.state);
    // Server messages: each must match one the server really sent.
    for (const c of Object.values(demo)) await c.sync();
    collect();
    for (const { where, v } of serverExamples) {
      const same = received.filter((m) => m.type === v.type &&
        (v.type !== 'error' || (m.payload && m.payload.code === v.payload.code)));
      if (!same.length) { failures.push(`${where}: no ${v.type} was sent while the examples ran`); continue; }
      const reasons = same.map((m) => mismatch(v, m));
      if (!reasons.includes(null)) failures.push(`${where}: ${v.type}: ${reasons[0]}`);
      if (v.from === 'server' && !same.some((m) => m.from === 'server')) failures.push(`${where}: ${v.type} from server`);
      if (v.type === 'error') checkErrorValues(v.payload, table, where);
      n++;
    }
    // The error table of the document says what the server says.
    for (const m of DOC.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (.+?) \| (.+?) \|$/gm)) {
      const row = table[m[1]];
      if (!row) continue;
      if (row.status !== Number(m[2]) || row.message !== m[3] || row.recovery !== m[4]) {
        failures.push(`docs/protocol.md error table row ${m[1]} differs from src/guard/errors.c`);
      }
    }
    assert.deepStrictEqual(failures, [], `${failures.length} example(s) of docs/protocol.md disagree with the server`);
    assert.ok(n >= 40, `checked ${n} examples`);
  });
});
