// The official Node socket.io server, speaking Ferrule's wire protocol just enough to exercise a
// client: the Rust client core is tested against it (runtime/tests/client_peer.rs). Prints
// `PORT <n>` once listening; exits when stdin closes.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const http = createServer();
const io = new Server(http, { path: '/_event/', pingInterval: 100, pingTimeout: 300, transports: ['websocket'] });
const hits = new Map(); // per tab token, so a reconnecting tab continues

io.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  if (typeof token !== 'string' || token.length === 0) return next(new Error('token required'));
  next();
});

io.on('connection', (socket) => {
  const token = socket.handshake.auth.token;
  socket.on('event', (ev) => {
    const n = hits.get(token) ?? 0;
    if (ev.name === '_hydrate') {
      socket.emit('event', { id: ev.id, delta: { echo_state: { hits: n } }, events: [], final: true });
      return;
    }
    hits.set(token, n + 1);
    socket.emit('event', {
      id: ev.id,
      delta: { echo_state: { hits: n + 1, last: ev.name, payload: ev.payload ?? null } },
      events: ev.name === 'echo_state.toast' ? [{ name: '_toast', payload: { level: 'info', message: 'hi' } }] : [],
      final: true,
    });
    if (ev.name === 'echo_state.kick') setTimeout(() => socket.disconnect(true), 10);
  });
});

http.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${http.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
