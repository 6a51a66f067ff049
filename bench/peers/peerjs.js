'use strict';
// The PeerJS server (npm `peer`, pinned in package-lock.json) as bench/run.sh
// runs it: one process, key 'peerjs', no discovery, the connection limit
// raised for the capacity scenario. Clients connect to
// ws://HOST:PORT/peerjs?key=peerjs&id=<id>&token=<random>.
//
//   PORT=9000 HOST=127.0.0.1 node peerjs.js

const { PeerServer } = require('peer');

const PORT = Number(process.env.PORT || 9000);
const HOST = process.env.HOST || '127.0.0.1';

PeerServer({
  port: PORT,
  host: HOST,
  path: '/',
  key: 'peerjs',
  allow_discovery: false,
  concurrent_limit: 1000000,
  alive_timeout: 90000,
}, () => console.log(`peerjs listening on ${HOST}:${PORT}`));

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
