// Type declarations for @huddle/sdk, written by hand to match src/*.js
// (checked by tests/sdk/types.test.js: every export and method exists).

export type Role = 'host' | 'moderator' | 'participant' | 'viewer';
export type MediaKind = 'audio' | 'video';
export type Quality = 'good' | 'fair' | 'poor';

export type Permission =
  | 'can_publish_audio' | 'can_publish_video' | 'can_share_screen' | 'can_chat'
  | 'can_share_files' | 'can_react' | 'can_raise_hand' | 'can_record' | 'can_stream'
  | 'can_moderate';

export interface MediaState { audio: boolean; video: boolean; screen: boolean }

/** A server message as received (docs/protocol.md "Envelope"). */
export interface Envelope<P = any> {
  type: string;
  room?: string;
  from?: string;
  to?: string;
  seq?: number;
  ts?: number;
  ref?: string;
  payload: P;
}

export interface Participant {
  user_id: string;
  name: string;
  role: Role;
  joined_at?: number;
  media: MediaState;
  status: 'connected' | 'reconnecting';
  hand_raised: boolean;
  permissions?: Partial<Record<Permission, boolean>>;
  info?: Record<string, any>;
  quality?: Record<string, any>;
  network_stats?: Record<string, any>;
  virtual_background?: Record<string, any>;
}

export interface SelfInfo extends Partial<Participant> {
  user_id: string;
  session_id?: string;
  resume_token?: string;
  permissions?: Partial<Record<Permission, boolean>>;
}

export interface RoomSettings {
  locked?: boolean;
  waiting_room?: boolean;
  mute_on_join?: boolean;
  max_participants?: number;
  chat_enabled?: boolean;
  screen_share?: 'all' | 'moderators';
  reactions_enabled?: boolean;
}

export interface HandEntry { user_id: string; name?: string; raised_at?: number; position: number }
export interface Waiter { user_id: string; name?: string; role?: Role; requested_at?: number; position?: number; status?: string }
export interface BreakoutRoom { breakout_room_id: string; name: string; assigned: string[]; participants?: string[] }
export interface Recording { recording_id: string; state: 'recording' | 'stopped'; started_by?: string; started_at?: number; duration_ms?: number; format?: string }
export interface LiveStream { stream_id: string; name: string; state: 'live' | 'stopped'; target: string; started_by?: string; started_at?: number }
export interface IceServer { urls: string | string[]; username?: string; credential?: string; ttl?: number }

type Listener = (...args: any[]) => void;

export class Emitter {
  on(event: string, fn: Listener): () => void;
  once(event: string, fn: Listener): () => void;
  off(event: string, fn: Listener): void;
  emit(event: string, ...args: any[]): boolean;
  next(event: string): Promise<any>;
}

export class HuddleError extends Error {
  constructor(code: string, message?: string, extra?: { recovery?: string; status?: number; detail?: string; ref?: string; retryAfterMs?: number; cause?: unknown });
  readonly name: 'HuddleError';
  /** Taxonomy code, e.g. "ROOM_FULL", or one of the SDK's own (CLIENT_ERRORS). */
  code: string;
  recovery: string;
  status?: number;
  detail?: string;
  ref?: string;
  retryAfterMs?: number;
  static fromServer(e: any, status?: number): HuddleError;
}

export const CLIENT_ERRORS: Readonly<Record<'NETWORK_ERROR' | 'CONNECTION_FAILED' | 'RECONNECT_FAILED' | 'TIMEOUT' | 'MEDIA_ERROR' | 'NOT_CONNECTED', { message: string; recovery: string }>>;
export const FINAL_CLOSE_CODES: Readonly<Record<number, string>>;

export class RoomModel extends Emitter {
  roomId: string | null;
  status: 'idle' | 'waiting' | 'joined' | 'left';
  self: SelfInfo | null;
  participants: Map<string, Participant>;
  settings: RoomSettings;
  handQueue: HandEntry[];
  waiting: Map<string, Waiter>;
  waitingPosition: number | null;
  breakoutRooms: BreakoutRoom[];
  parentRoom: string | null;
  recording: Recording | null;
  liveStreams: LiveStream[];
  iceServers: IceServer[];
  readonly selfId: string | null;
  reset(): void;
  can(perm: Permission): boolean;
  participant(id: string): Participant | null;
  /** Applies a server message; emits "change" (with the message) when the state changed. */
  apply(msg: Envelope): boolean;
  toJSON(): Record<string, any>;
  on(event: 'change', fn: (msg: Envelope) => void): () => void;
  on(event: string, fn: Listener): () => void;
}

export interface RestOptions {
  baseUrl?: string;
  token?: string | (() => string | Promise<string>);
  fetch?: typeof fetch;
}

export class HuddleRest {
  constructor(opts?: RestOptions);
  baseUrl: string;
  request(method: string, path: string, body?: object, o?: { auth?: boolean; text?: boolean; query?: Record<string, any> }): Promise<any>;
  config(): Promise<{ ice_servers: IceServer[]; ttl: number }>;
  health(): Promise<any>;
  webrtcMetrics(): Promise<any>;
  stats(): Promise<any>;
  rateLimitStatus(limitType: string): Promise<any>;
  metrics(): Promise<string>;
  devToken(req: { room: string; user: string; name?: string; role?: Role }): Promise<{ token: string; room: string; user: string; role: Role; expires_at: number }>;
  createRoom(body?: object): Promise<any>;
  listRooms(): Promise<any>;
  getRoom(room: string): Promise<any>;
  deleteRoom(room: string): Promise<any>;
  validate(room: string): Promise<{ ok: true; room_id: string; user_id: string; role: Role; waiting_room: boolean }>;
  /** tus upload of blob to a file-share-offer's upload_url; resolves with the bytes stored. */
  uploadFile(uploadUrl: string, blob: Blob, o?: { onProgress?: (sent: number, total: number) => void; chunkBytes?: number }): Promise<number>;
  /** A shared file (file-share-complete's download_url) as a Blob. */
  downloadFile(downloadUrl: string): Promise<Blob>;
  chatHistory(room: string, q?: { limit?: number; before?: string; after?: string; q?: string }): Promise<{ messages: any[]; has_more: boolean }>;
  participants(room: string): Promise<any>;
  participantsEnhanced(room: string): Promise<any>;
  updateParticipantInfo(room: string, user: string, info: object): Promise<any>;
  removeParticipant(room: string, user: string, reason?: string): Promise<any>;
  setRole(room: string, user: string, role: Role): Promise<any>;
  getRole(room: string, user: string): Promise<any>;
  setPermissions(room: string, user: string, permissions: Partial<Record<Permission, boolean>>): Promise<any>;
  getPermissions(room: string, user: string): Promise<any>;
  analytics(room: string, query?: Record<string, any>): Promise<any>;
  analyticsSummary(room: string): Promise<any>;
  audit(room: string, q?: { since?: number; limit?: number }): Promise<any>;
  startRecording(room: string, body?: object): Promise<{ recording: Recording }>;
  stopRecording(room: string, id: string): Promise<{ recording: Recording }>;
  listRecordings(room: string): Promise<any>;
  startLiveStream(room: string, targetUrl: string, name?: string): Promise<{ live_stream: LiveStream }>;
  stopLiveStream(room: string, id: string): Promise<{ live_stream: LiveStream }>;
  listLiveStreams(room: string): Promise<any>;
  getSettings(room: string): Promise<{ room_id: string; settings: RoomSettings }>;
  updateSettings(room: string, changes: RoomSettings): Promise<{ room_id: string; settings: RoomSettings }>;
  handRaise(room: string, body: { raised?: boolean; user_id?: string; action?: 'next' }): Promise<any>;
  handQueue(room: string): Promise<any>;
  waitingList(room: string): Promise<any>;
  admit(room: string, user: string): Promise<any>;
  reject(room: string, user: string, reason?: string): Promise<any>;
  createBreakouts(room: string, body: { rooms?: { name: string }[]; name?: string; count?: number }): Promise<any>;
  assignBreakout(room: string, breakoutId: string, user: string): Promise<any>;
  closeBreakout(room: string, breakoutId: string): Promise<any>;
}

/** What HuddleClient needs from a media engine (mesh today, an SFU later). */
export interface MediaEngine {
  attach(client: HuddleClient): void;
  close(): void;
  reset?(): void;
}

export interface ReconnectOptions { baseMs?: number; maxMs?: number; maxAttempts?: number; maxElapsedMs?: number }

export interface ClientOptions {
  room: string;
  token?: string | (() => string | Promise<string>);
  grant?: string;
  baseUrl?: string;
  media?: MediaEngine | null;
  reconnect?: ReconnectOptions | false;
  /** How long connect() waits for room-state or the waiting room (default 15000). */
  joinTimeoutMs?: number;
  createSocket?: (url: string) => any;
  fetch?: typeof fetch;
  random?: () => number;
  timers?: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout };
}

export type ClientState = 'idle' | 'connecting' | 'waiting' | 'joined' | 'reconnecting' | 'closed' | 'failed';

export const SERVER_MESSAGE_TYPES: readonly string[];
export const CLIENT_MESSAGE_TYPES: readonly string[];

export class HuddleClient extends Emitter {
  constructor(opts: ClientOptions);
  roomId: string;
  state: ClientState;
  model: RoomModel;
  rest: HuddleRest;
  media: MediaEngine | null;
  joinTimeoutMs: number;
  lastSeq: number;
  resumeToken: string | null;
  readonly selfId: string | null;

  connect(): Promise<{ status: 'joined' | 'waiting' }>;
  leave(): void;
  retryNow(): void;
  moveTo(target: { room_id: string; grant: string }): Promise<{ status: 'joined' | 'waiting' }>;
  send(type: string, payload?: object, o?: { to?: string; id?: string }): string;
  request(type: string, payload?: object, o?: { to?: string; timeoutMs?: number }): Promise<Envelope>;

  sendOffer(to: string, desc: { sdp?: string }): string;
  sendAnswer(to: string, desc: { sdp?: string }): string;
  sendIceCandidate(to: string, candidate: { candidate?: string; sdpMid?: string | null; sdpMLineIndex?: number | null } | null): string;

  setMediaState(kind: MediaKind, enabled: boolean): string;
  muteParticipant(userId: string, kind?: MediaKind): string;
  requestUnmute(userId: string, kind?: MediaKind): string;
  muteAll(kind?: MediaKind): string;
  screenShareStarted(): string;
  screenShareStopped(): string;
  stopScreenShareOf(userId: string): string;

  sendChat(text: string, o?: { to?: string; replyTo?: string }): string;
  react(emoji: string): string;
  raiseHand(): string;
  lowerHand(userId?: string): string;
  nextSpeaker(): string;

  setRole(userId: string, role: Role): string;
  setPermissions(userId: string, permissions: Partial<Record<Permission, boolean>>): string;
  updateSettings(changes: RoomSettings): string;
  lockRoom(locked?: boolean): string;
  removeParticipant(userId: string, reason?: string): string;
  admit(userId: string): string;
  reject(userId: string, reason?: string): string;
  createBreakouts(rooms: { name: string }[]): string;
  assignBreakout(breakoutRoomId: string, userId: string): string;
  closeBreakout(breakoutRoomId: string): string;

  startRecording(): string;
  stopRecording(recordingId?: string): string;
  startLiveStream(targetUrl: string, name?: string): string;
  stopLiveStream(streamId: string): string;

  offerFile(file: { name: string; size: number; mime_type: string; sha256: string }, to?: string): string;
  acceptFile(to: string, transferId: string): string;
  rejectFile(to: string, transferId: string, reason?: string): string;
  fileProgress(to: string, transferId: string, bytes: number): string;
  fileComplete(to: string, transferId: string, sha256?: string): string;
  /** Offers a file and uploads it to the server (tus); resolves with the offer reply's payload. */
  shareFile(file: Blob & { name?: string }, o?: { to?: string; onProgress?: (sent: number, total: number) => void }): Promise<{ transfer_id: string; upload_url: string; name: string; size: number; mime_type: string; sha256: string; upload_expires?: number; scanned?: boolean }>;

  sendNetworkStats(stats: { rtt_ms?: number; jitter_ms?: number; packet_loss?: number; bitrate_kbps?: number; available_bitrate_kbps?: number; fps?: number; width?: number; height?: number }): string;
  sendQualityUpdate(q: { quality: 'low' | 'medium' | 'high' | 'auto'; max_bitrate_kbps?: number; width?: number; height?: number; fps?: number }): string;
  trackEvent(name: string, properties?: object): string;
  updateInfo(info: object): string;
  setVirtualBackground(bg: { type: 'none' | 'blur' | 'image'; blur_radius?: number; image_id?: string }): string;
  sendE2eeKey(payload: object, to?: string): string;
  sendE2eeRatchet(payload: object, to?: string): string;

  // lifecycle events
  on(event: 'open', fn: (info: { resume: boolean }) => void): () => void;
  on(event: 'joined' | 'resynced', fn: (model: RoomModel) => void): () => void;
  on(event: 'waiting', fn: (payload: { status: 'waiting'; position?: number }) => void): () => void;
  on(event: 'reconnecting', fn: (info: { attempt: number; delayMs: number; code: number }) => void): () => void;
  on(event: 'reconnected', fn: (info: { resumed: boolean }) => void): () => void;
  on(event: 'failed' | 'error' | 'resume-failed', fn: (err: HuddleError) => void): () => void;
  on(event: 'closed', fn: (info: { code: number; reason: string; detail?: string }) => void): () => void;
  on(event: 'removed' | 'rejected' | 'breakout-assigned' | 'breakout-closed', fn: (payload: any) => void): () => void;
  on(event: 'message', fn: (msg: Envelope) => void): () => void;
  /** A signaling message was over the rate limit; the SDK sends it again after retryAfterMs. */
  on(event: 'rate-limited', fn: (info: { ref: string; retryAfterMs: number }) => void): () => void;
  /** Every server message type, with its payload and the whole envelope. */
  on(event: string, fn: (payload: any, msg: Envelope) => void): () => void;
}

export interface PeerStats {
  rtt_ms: number; jitter_ms: number; packet_loss: number; frames_decoded: number;
  audio_packets: number; video_packets: number; bytes: number; fps: number; bitrate_kbps: number;
  ts: number; quality?: Quality;
}

export class MeshMedia extends Emitter implements MediaEngine {
  constructor(opts?: { RTCPeerConnection?: any; mediaDevices?: MediaDevices; statsIntervalMs?: number; reportIntervalMs?: number; iceRestartDelayMs?: number; firstOfferWaitMs?: number; timers?: { setTimeout?: typeof setTimeout; clearTimeout?: typeof clearTimeout; setInterval?: typeof setInterval; clearInterval?: typeof clearInterval } });
  peers: Map<string, { userId: string; pc: RTCPeerConnection; polite: boolean; serial: number; streams: Map<string, MediaStream>; stats: PeerStats | null }>;
  localStream: MediaStream | null;
  screenStream: MediaStream | null;
  iceServers: IceServer[];
  attach(client: HuddleClient): void;
  close(): void;
  reset(): void;
  startLocal(c?: { audio?: boolean | MediaTrackConstraints; video?: boolean | MediaTrackConstraints }): Promise<MediaStream>;
  localTrack(kind: MediaKind): MediaStreamTrack | null;
  setEnabled(kind: MediaKind, enabled: boolean): void;
  stopLocal(kind: MediaKind): void;
  startScreenShare(): Promise<MediaStream>;
  stopScreenShare(): void;
  streamKind(userId: string, stream: MediaStream): 'camera' | 'screen';
  measure(): Promise<Map<string, PeerStats>>;
  on(event: 'track', fn: (e: { userId: string; track: MediaStreamTrack; stream: MediaStream; kind: 'camera' | 'screen' }) => void): () => void;
  on(event: 'stream-removed', fn: (e: { userId: string; stream: MediaStream }) => void): () => void;
  on(event: 'local' | 'screen', fn: (stream: MediaStream | null) => void): () => void;
  on(event: 'stats', fn: (e: PeerStats & { userId: string }) => void): () => void;
  on(event: 'peer' | 'peer-closed' | 'peer-state' | 'peer-error' | 'ice-restart', fn: (e: any) => void): () => void;
  /** Offers crossed with this peer; the polite side yields, the other ignores the incoming offer. */
  on(event: 'collision', fn: (e: { userId: string; polite: boolean }) => void): () => void;
  on(event: string, fn: Listener): () => void;
}

export function isPolite(selfId: string, remoteId: string): boolean;
export function qualityOf(m: { rtt_ms?: number; jitter_ms?: number; packet_loss?: number }): Quality;
export function summarize(report: { forEach(fn: (s: any) => void): void }, prev?: PeerStats | null): PeerStats;
export function join(opts: ClientOptions & { mesh?: object }): Promise<HuddleClient>;
