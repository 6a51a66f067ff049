// huddle browser SDK: connect to a room, the room as an observable model,
// every message type as a method or an event, REST helpers, and mesh WebRTC.
export { HuddleClient, SERVER_MESSAGE_TYPES, CLIENT_MESSAGE_TYPES } from './client.js';
export { RoomModel } from './room.js';
export { HuddleRest } from './rest.js';
export { MeshMedia, isPolite, qualityOf, summarize } from './mesh.js';
export { HuddleError, CLIENT_ERRORS, FINAL_CLOSE_CODES } from './errors.js';
export { Emitter } from './emitter.js';

/**
 * Joins a room with mesh media in one call.
 * @param {import('./client.js').ClientOptions & {mesh?: object}} opts
 * @returns {Promise<import('./client.js').HuddleClient>}
 */
export async function join(opts) {
  const { HuddleClient } = await import('./client.js');
  const { MeshMedia } = await import('./mesh.js');
  const client = new HuddleClient(Object.assign({ media: new MeshMedia(opts.mesh) }, opts));
  await client.connect();
  return client;
}
