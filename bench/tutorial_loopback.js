// Starts the tutorial's ChatServer (chat/server.js of the reference copy
// given as the first argument) exactly as its own entry point does,
// except that it listens on HOST (default 127.0.0.1) instead of every
// interface. Every handler is the tutorial's own.
//
//   PORT=8081 node bench/tutorial_loopback.js /tmp/ref
'use strict';
const path = require('path');

const dir = path.resolve(process.argv[2] || '.');
const ChatServer = require(path.join(dir, 'chat', 'server.js'));
// The same module instance server.js loaded, from the copy's node_modules.
const WebSocket = require(require.resolve('ws', { paths: [path.join(dir, 'chat')] }));

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT) || 8080;
const server = new ChatServer({ port });

// ChatServer.start() with the listening address added.
server.start = function start() {
  this.wss = new WebSocket.Server({ host, port: this.port });
  this.wss.on('connection', (ws, req) => {
    this._handleConnection(ws, req);
  });
  this.wss.on('error', (error) => {
    this.emit('error', error);
  });
  console.log(`Chat server running on ${host}:${this.port}`);
  return this;
};

server.on('error', (err) => {
  console.error('chat server error:', err);
  process.exit(1);
});
server.start();

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.stop();
    process.exit(0);
  });
}
