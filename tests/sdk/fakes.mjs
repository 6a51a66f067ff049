// Fakes for the SDK's unit tests: a WebSocket-shaped transport driven by the
// test, a fetch that answers the validate endpoint, manual timers, and an
// RTCPeerConnection that follows the signaling state machine (JSEP) closely
// enough to exercise perfect negotiation without a browser.

export class FakeSocket {
  constructor(url, server) {
    this.url = url;
    this.server = server;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
  }
  send(s) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(s));
  }
  close(code = 1000, reason = '') {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // ---- driven by the test ----
  open() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }
  deliver(msg) {
    this.onmessage && this.onmessage({ data: JSON.stringify(msg) });
  }
  /** The connection ends (code 1006: cut without a close frame). */
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason });
  }
  get query() { return Object.fromEntries(new URL(this.url).searchParams); }
}

/** A transport factory that records every socket the client opens. */
export function fakeTransport() {
  const t = {
    sockets: [],
    create: (url) => {
      const s = new FakeSocket(url, t);
      t.sockets.push(s);
      if (t.onCreate) t.onCreate(s);
      return s;
    },
    get last() { return t.sockets[t.sockets.length - 1]; },
  };
  return t;
}

/** fetch(): answers with the given status and JSON per path prefix; records calls. */
export function fakeFetch(routes = {}) {
  const f = async (url, init = {}) => {
    f.calls.push({ url, init });
    const path = new URL(url).pathname;
    const hit = Object.entries(routes).find(([p]) => path.startsWith(p) || path.endsWith(p));
    const [status, body] = hit ? hit[1] : [404, { error: { code: 'NOT_FOUND', message: 'nope', recovery: '' } }];
    return {
      ok: status >= 200 && status < 300,
      status,
      text: async () => JSON.stringify(body),
    };
  };
  f.calls = [];
  return f;
}

/** Timers the test advances by hand. */
export function manualTimers() {
  const t = {
    queue: [],
    setTimeout(fn, ms) {
      const h = { fn, ms, cancelled: false };
      t.queue.push(h);
      return h;
    },
    clearTimeout(h) { if (h) h.cancelled = true; },
    /** Runs the earliest pending timer; returns its delay. */
    runNext() {
      const live = t.queue.filter((x) => !x.cancelled);
      if (!live.length) return null;
      const h = live[0];
      h.cancelled = true;
      h.fn();
      return h.ms;
    },
    pending() { return t.queue.filter((x) => !x.cancelled).map((x) => x.ms); },
  };
  return t;
}

export const tick = () => new Promise((r) => setImmediate(r));

export function roomState(self, others = [], extra = {}) {
  const me = typeof self === 'string' ? { user_id: self, name: self, role: 'participant' } : self;
  return {
    type: 'room-state', room: extra.room || 'r1', from: 'server', seq: extra.seq ?? 0, ts: 1,
    payload: Object.assign({
      self: Object.assign({ resume_token: `rt-${me.user_id}-${extra.rt || 1}`, session_id: 's1',
        permissions: { can_publish_audio: true, can_publish_video: true, can_chat: true, can_moderate: me.role === 'host' } }, me),
      participants: [me, ...others].map((p) => (typeof p === 'string' ? { user_id: p, name: p, role: 'participant' } : p)),
      settings: { locked: false, waiting_room: false }, hand_raise_queue: [], recording: null,
      live_streams: [], breakout_rooms: [], ice_servers: [], seq: extra.seq ?? 0,
    }, extra.payload || {}),
  };
}

// ------------------------------------------------------------------ RTCPeerConnection

let sdpCounter = 0;

/** Enough of RTCPeerConnection for perfect negotiation: signaling states, implicit rollback, negotiationneeded. */
export class FakePC {
  constructor(config) {
    this.config = config;
    this.signalingState = 'stable';
    this.connectionState = 'new';
    this.iceConnectionState = 'new';
    this.localDescription = null;
    this.remoteDescription = null;
    this.senders = [];
    this.candidates = [];
    this.closed = false;
    this.log = [];
    FakePC.all.push(this);
  }
  setConfiguration(c) { this.config = c; }
  getSenders() { return this.senders; }
  addTrack(track, stream) {
    const s = { track, replaceTrack: async (t) => { s.track = t; } };
    this.senders.push(s);
    this._needNegotiation();
    return s;
  }
  removeTrack(s) {
    this.senders = this.senders.filter((x) => x !== s);
    this._needNegotiation();
  }
  addTransceiver(kind, init) {
    const s = { track: null, kind, direction: init && init.direction, replaceTrack: async (t) => { s.track = t; } };
    this.senders.push(s);
    this._needNegotiation();
    return { sender: s };
  }
  restartIce() { this._needNegotiation(); }
  _needNegotiation() {
    if (this._negPending) return;
    this._negPending = true;
    queueMicrotask(() => {
      this._negPending = false;
      if (this.closed) return;
      if (this.signalingState === 'stable') { if (this.onnegotiationneeded) this.onnegotiationneeded(); } else this._negLater = true;
    });
  }
  async setLocalDescription(d) {
    await null;
    if (this.closed) throw new Error('closed');
    if (!d) {
      if (this.signalingState === 'stable' || this.signalingState === 'have-local-offer') d = { type: 'offer' };
      else d = { type: 'answer' };
    }
    const desc = { type: d.type, sdp: d.sdp || `v=0 ${d.type} ${++sdpCounter}` };
    this.log.push(`local ${desc.type}`);
    this.localDescription = desc;
    this.signalingState = desc.type === 'offer' ? 'have-local-offer' : 'stable';
    this._stableAgain();
    if (desc.type === 'offer' && this.onicecandidate) {
      setImmediate(() => this.onicecandidate && this.onicecandidate({ candidate: { toJSON: () => ({ candidate: `candidate:${sdpCounter} 1 udp 1 127.0.0.1 9 typ host`, sdpMid: '0', sdpMLineIndex: 0 }) } }));
    }
  }
  async setRemoteDescription(d) {
    await null;
    if (this.closed) throw new Error('closed');
    if (d.type === 'offer') {
      if (this.signalingState === 'have-local-offer') { this.log.push('rollback'); this._negLater = true; }
      else if (this.signalingState !== 'stable') throw new Error(`offer in state ${this.signalingState}`);
      this.signalingState = 'have-remote-offer';
    } else {
      if (this.signalingState !== 'have-local-offer') throw new Error(`InvalidStateError: answer in state ${this.signalingState}`);
      this.signalingState = 'stable';
      this.connectionState = this.iceConnectionState = 'connected';
      this._stableAgain();
    }
    this.log.push(`remote ${d.type}`);
    this.remoteDescription = d;
  }
  _stableAgain() {
    if (this.signalingState === 'stable' && this._negLater) {
      this._negLater = false;
      this._needNegotiation();
    }
  }
  async addIceCandidate(c) {
    await null;
    if (c && c.candidate && !this.remoteDescription) throw new Error('InvalidStateError: no remote description');
    this.candidates.push(c);
  }
  async getStats() { return new Map(); }
  close() { this.closed = true; this.signalingState = 'closed'; }
}
FakePC.all = [];
