// REST helpers: one method per endpoint of docs/protocol.md. Every method
// resolves with the parsed JSON body or rejects with a HuddleError carrying
// the taxonomy code.

import { HuddleError } from './errors.js';

const enc = encodeURIComponent;

/**
 * @typedef {object} RestOptions
 * @property {string} [baseUrl] server origin, e.g. "http://127.0.0.1:8080" (default: the page's origin)
 * @property {string | (() => string | Promise<string>)} [token] bearer token, or a function returning one
 * @property {typeof fetch} [fetch] a fetch implementation (default: globalThis.fetch)
 */

export class HuddleRest {
  /** @param {RestOptions} [opts] */
  constructor(opts = {}) {
    this.baseUrl = (opts.baseUrl || (typeof location !== 'undefined' ? location.origin : '')).replace(/\/$/, '');
    this.token = opts.token;
    this._fetch = opts.fetch || ((...a) => globalThis.fetch(...a));
  }

  async _token() {
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  /**
   * Sends one request. body (an object) is sent as JSON.
   * @param {string} method
   * @param {string} path
   * @param {object} [body]
   * @param {{auth?: boolean, text?: boolean, query?: Record<string, any>}} [o]
   * @returns {Promise<any>}
   */
  async request(method, path, body, o = {}) {
    const headers = {};
    const tok = o.auth === false ? null : await this._token();
    if (tok) headers.Authorization = `Bearer ${tok}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let url = this.baseUrl + path;
    if (o.query) {
      const q = Object.entries(o.query).filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => `${enc(k)}=${enc(String(v))}`).join('&');
      if (q) url += `?${q}`;
    }
    let res;
    try {
      res = await this._fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new HuddleError('NETWORK_ERROR', undefined, { cause: e });
    }
    const text = await res.text();
    if (res.ok && o.text) return text;
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (_) {
      json = null;
    }
    if (!res.ok) {
      if (json && json.error) throw HuddleError.fromServer(json.error, res.status);
      throw new HuddleError(res.status === 404 ? 'NOT_FOUND' : 'INTERNAL_ERROR', `HTTP ${res.status}`, { status: res.status });
    }
    return json;
  }

  _room(room, rest = '') { return `/webrtc/rooms/${enc(room)}${rest}`; }

  // ---- server ----
  /** 2: ICE servers (TURN credentials need a token). */
  config() { return this.request('GET', '/webrtc/config'); }
  /** 28 */
  health() { return this.request('GET', '/webrtc/health', undefined, { auth: false }); }
  /** 29 */
  webrtcMetrics() { return this.request('GET', '/webrtc/webrtc-metrics'); }
  /** 30 */
  stats() { return this.request('GET', '/webrtc/stats'); }
  /** 31 */
  rateLimitStatus(limitType) { return this.request('GET', `/webrtc/rate-limits/${enc(limitType)}/status`); }
  /** Prometheus text. */
  metrics() { return this.request('GET', '/metrics', undefined, { text: true }); }
  /**
   * Development token (only when the server runs with --dev-tokens).
   * @param {{room: string, user: string, name?: string, role?: string}} req
   */
  devToken(req) { return this.request('POST', '/webrtc/dev/token', req, { auth: false }); }

  // ---- rooms (management endpoints; see CONTRACTS) ----
  createRoom(body = {}) { return this.request('POST', '/webrtc/rooms', body); }
  listRooms() { return this.request('GET', '/webrtc/rooms'); }
  getRoom(room) { return this.request('GET', this._room(room)); }
  deleteRoom(room) { return this.request('DELETE', this._room(room)); }
  /** Would an upgrade with this token be admitted now? Rejects with the refusal's code. */
  validate(room) { return this.request('GET', this._room(room, '/validate')); }

  // ---- shared files (tus 1.0; docs/protocol.md "Shared files") ----
  /** A failed file request as a HuddleError (the server's JSON error body when there is one). */
  async _fileError(res) {
    let json = null;
    try { json = await res.json(); } catch (_) { json = null; }
    if (json && json.error) return HuddleError.fromServer(json.error, res.status);
    return new HuddleError(res.status === 404 ? 'NOT_FOUND' : 'INTERNAL_ERROR', `HTTP ${res.status}`, { status: res.status });
  }

  /**
   * Uploads blob to the upload_url of the sender's own file-share-offer with
   * tus PATCH requests of chunkBytes (default 1 MiB). After a failed request
   * it asks HEAD for the stored offset and carries on from there (three
   * failures in a row give up). Resolves with the bytes stored.
   * @param {string} uploadUrl
   * @param {Blob} blob
   * @param {{onProgress?: (sent: number, total: number) => void, chunkBytes?: number}} [o]
   * @returns {Promise<number>}
   */
  async uploadFile(uploadUrl, blob, o = {}) {
    const url = /^https?:/.test(uploadUrl) ? uploadUrl : this.baseUrl + uploadUrl;
    const chunk = o.chunkBytes || 1048576;
    const auth = async () => {
      const tok = await this._token();
      return tok ? { Authorization: `Bearer ${tok}` } : {};
    };
    let offset = 0;
    let failures = 0;
    while (offset < blob.size) {
      let res = null;
      let err = null;
      try {
        res = await this._fetch(url, {
          method: 'PATCH',
          headers: Object.assign(await auth(), { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset),
            'Content-Type': 'application/offset+octet-stream' }),
          body: blob.slice(offset, Math.min(blob.size, offset + chunk)),
        });
      } catch (e) {
        err = new HuddleError('NETWORK_ERROR', undefined, { cause: e });
      }
      if (res && res.ok) {
        offset = Number(res.headers.get('Upload-Offset'));
        failures = 0;
        if (o.onProgress) o.onProgress(offset, blob.size);
        continue;
      }
      if (res && res.status !== 409 && res.status < 500) throw await this._fileError(res);
      if (++failures >= 3) throw err || await this._fileError(res);
      // Where did the server get to? Carry on from there.
      const head = await this._fetch(url, { method: 'HEAD', headers: Object.assign(await auth(), { 'Tus-Resumable': '1.0.0' }) })
        .catch((e) => { throw new HuddleError('NETWORK_ERROR', undefined, { cause: e }); });
      if (!head.ok) throw await this._fileError(head);
      offset = Number(head.headers.get('Upload-Offset'));
    }
    return offset;
  }

  /**
   * Downloads a shared file (download_url of file-share-complete) as a Blob.
   * @param {string} downloadUrl
   * @returns {Promise<Blob>}
   */
  async downloadFile(downloadUrl) {
    const url = /^https?:/.test(downloadUrl) ? downloadUrl : this.baseUrl + downloadUrl;
    const tok = await this._token();
    let res;
    try {
      res = await this._fetch(url, { headers: tok ? { Authorization: `Bearer ${tok}` } : {} });
    } catch (e) {
      throw new HuddleError('NETWORK_ERROR', undefined, { cause: e });
    }
    if (!res.ok) throw await this._fileError(res);
    return res.blob();
  }
  /** Chat history: {messages, has_more}. */
  chatHistory(room, { limit, before, after, q } = {}) {
    return this.request('GET', this._room(room, '/chat'), undefined, { query: { limit, before, after, q } });
  }

  // ---- participants, roles, permissions (3-9) ----
  participants(room) { return this.request('GET', this._room(room, '/participants')); }
  participantsEnhanced(room) { return this.request('GET', this._room(room, '/participants/enhanced')); }
  updateParticipantInfo(room, user, info) { return this.request('POST', this._room(room, `/participants/${enc(user)}/info`), info); }
  removeParticipant(room, user, reason) { return this.request('POST', this._room(room, `/participants/${enc(user)}/remove`), reason ? { reason } : {}); }
  setRole(room, user, role) { return this.request('POST', this._room(room, `/roles/${enc(user)}`), { role }); }
  getRole(room, user) { return this.request('GET', this._room(room, `/roles/${enc(user)}`)); }
  setPermissions(room, user, permissions) { return this.request('POST', this._room(room, `/permissions/${enc(user)}`), { permissions }); }
  getPermissions(room, user) { return this.request('GET', this._room(room, `/permissions/${enc(user)}`)); }

  // ---- analytics (10-11), audit ----
  analytics(room, query) { return this.request('GET', this._room(room, '/analytics'), undefined, { query }); }
  analyticsSummary(room) { return this.request('GET', this._room(room, '/analytics/summary')); }
  audit(room, { since, limit } = {}) { return this.request('GET', this._room(room, '/audit'), undefined, { query: { since, limit } }); }

  // ---- recordings (12-14), live streams (25-27) ----
  startRecording(room, body = {}) { return this.request('POST', this._room(room, '/recordings/start'), body); }
  stopRecording(room, id) { return this.request('POST', this._room(room, `/recordings/${enc(id)}/stop`), {}); }
  listRecordings(room) { return this.request('GET', this._room(room, '/recordings')); }
  startLiveStream(room, targetUrl, name) { return this.request('POST', this._room(room, '/live-streams/start'), name ? { target_url: targetUrl, name } : { target_url: targetUrl }); }
  stopLiveStream(room, id) { return this.request('POST', this._room(room, `/live-streams/${enc(id)}/stop`), {}); }
  listLiveStreams(room) { return this.request('GET', this._room(room, '/live-streams')); }

  // ---- settings (15-16) ----
  getSettings(room) { return this.request('GET', this._room(room, '/settings')); }
  updateSettings(room, changes) { return this.request('POST', this._room(room, '/settings'), changes); }

  // ---- hand raise (17-18) ----
  /** @param {{raised?: boolean, user_id?: string, action?: 'next'}} body */
  handRaise(room, body) { return this.request('POST', this._room(room, '/hand-raise'), body); }
  handQueue(room) { return this.request('GET', this._room(room, '/hand-raise/queue')); }

  // ---- waiting room (19-21) ----
  waitingList(room) { return this.request('GET', this._room(room, '/waiting-room')); }
  admit(room, user) { return this.request('POST', this._room(room, `/waiting-room/${enc(user)}/admit`), {}); }
  reject(room, user, reason) { return this.request('POST', this._room(room, `/waiting-room/${enc(user)}/reject`), reason ? { reason } : {}); }

  // ---- breakout rooms (22-24) ----
  /** @param {{rooms?: {name: string}[], name?: string, count?: number}} body */
  createBreakouts(room, body) { return this.request('POST', this._room(room, '/breakout-rooms'), body); }
  assignBreakout(room, breakoutId, user) { return this.request('POST', this._room(room, `/breakout-rooms/${enc(breakoutId)}/assign/${enc(user)}`), {}); }
  closeBreakout(room, breakoutId) { return this.request('DELETE', this._room(room, `/breakout-rooms/${enc(breakoutId)}`)); }
}
