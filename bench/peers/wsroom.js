'use strict';
// wsroom: a room signaling server written the way a typical team writes one
// on the `ws` package, run by bench/run.sh as a reference next to huddle.
// Rooms are a Map of Sets of sockets; every message is JSON.parse'd, given
// from/seq/ts, JSON.stringify'd once and sent to each member, or only to
// "to" for offer/answer/ice-candidate. The joiner gets a room-state first,
// the others a user-joined. Auth is a trivial token check (present or not).
//
//   PORT=9100 HOST=127.0.0.1 node wsroom.js

const http = require('http');
const { WebSocketServer } = require('ws');

const PORT = Number(process.env.PORT || 9100);
const HOST = process.env.HOST || '127.0.0.1';
const DIRECTED = new Set(['offer', 'answer', 'ice-candidate']);

const rooms = new Map(); // room id -> Set<ws>
const seqs = new Map(); // room id -> last seq

function nextSeq(room) {
  const s = (seqs.get(room) || 0) + 1;
  seqs.set(room, s);
  return s;
}

function broadcast(room, msg, except) {
  const members = rooms.get(room);
  if (!members) return;
  const data = JSON.stringify(msg);
  for (const m of members) {
    if (m !== except && m.readyState === m.OPEN) m.send(data);
  }
}

function sendError(ws, code, message) {
  ws.send(JSON.stringify({ type: 'error', room: ws.room, from: 'server', seq: seqs.get(ws.room) || 0,
    ts: Date.now(), payload: { code, message } }));
}

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ status: 'ok', rooms: rooms.size }));
});
const wss = new WebSocketServer({ server, maxPayload: 64 * 1024 });

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://localhost');
  const room = url.searchParams.get('room');
  const user = url.searchParams.get('user');
  const token = url.searchParams.get('token');
  if (!room || !user || !token) {
    ws.close(4001, 'unauthorized');
    return;
  }
  ws.room = room;
  ws.user = user;
  ws.isAlive = true;
  let members = rooms.get(room);
  if (!members) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);

  ws.send(JSON.stringify({
    type: 'room-state', room, from: 'server', seq: seqs.get(room) || 0, ts: Date.now(),
    payload: { room_id: room, participants: [...members].map((m) => ({ user_id: m.user })) },
  }));
  broadcast(room, { type: 'user-joined', room, from: 'server', seq: nextSeq(room), ts: Date.now(),
    payload: { user_id: user } }, ws);

  ws.on('pong', () => { ws.isAlive = true; });

  ws.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      sendError(ws, 'INVALID_JSON', 'The message is not valid JSON.');
      return;
    }
    if (!msg || typeof msg.type !== 'string') {
      sendError(ws, 'INVALID_MESSAGE', 'The message has no type.');
      return;
    }
    const out = { type: msg.type, room, from: user, seq: nextSeq(room), ts: Date.now(),
      payload: msg.payload || {} };
    if (DIRECTED.has(msg.type)) {
      if (typeof msg.to !== 'string') {
        sendError(ws, 'INVALID_MESSAGE', 'Directed messages need "to".');
        return;
      }
      out.to = msg.to;
      let found = false;
      for (const m of members) {
        if (m.user === msg.to) {
          m.send(JSON.stringify(out));
          found = true;
        }
      }
      if (!found) sendError(ws, 'TARGET_NOT_FOUND', 'The recipient is not in the room.');
      return;
    }
    broadcast(room, out);
  });

  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0) {
      rooms.delete(room);
      seqs.delete(room);
    } else {
      broadcast(room, { type: 'user-left', room, from: 'server', seq: nextSeq(room), ts: Date.now(),
        payload: { user_id: user } });
    }
  });
});

// Keepalive: ping every 30 s, drop who did not answer the previous ping.
const interval = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, 30000);

wss.on('close', () => clearInterval(interval));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

server.listen(PORT, HOST, () => console.log(`wsroom listening on ${HOST}:${PORT}`));
