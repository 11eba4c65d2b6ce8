// The fan-out benchmark's socket.io baseline (bench/fanout.py), as the stack that
// django-rt replaces ran it: the Django app saves, then publishes the change on Redis;
// this server subscribes and emits it to every connected socket.
//
//   PORT=8100 CHANNEL=fanout REDIS_URL=redis://127.0.0.1:6379/0 node server.js
//
// An "event" from a socket is answered with a "reply" (the event round trips).
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const { createClient } = require('redis');

const port = Number(process.env.PORT);
const channel = process.env.CHANNEL || 'fanout';
const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379/0';

const server = http.createServer((request, response) => {
  response.writeHead(404);
  response.end();
});
const io = new Server(server, { serveClient: false, transports: ['websocket'] });
io.on('connection', (socket) => {
  socket.on('event', (frame) => {
    socket.emit('reply', { t: 'reply', ref: frame && frame.ref, cmds: [] });
  });
});

const subscriber = createClient({ url });
subscriber.on('error', (error) => console.error('redis:', error.message));

(async () => {
  await subscriber.connect();
  // One emit per message: socket.io encodes the packet once for all sockets.
  await subscriber.subscribe(channel, (message) => io.emit('patch', JSON.parse(message)));
  server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
})();

process.on('SIGTERM', () => process.exit(0));
