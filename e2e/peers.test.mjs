// Ferrule's server against the official socket.io-client: connect with auth, events, acks,
// ping/pong and reconnect, through the counter example's real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer } from './lib/harness.mjs';

const event = (id, name, payload = {}) => ({ id, name, payload, router_data: { path: '/', query: '' } });

function connect(server, token, opts = {}) {
  return io(server.url, {
    path: '/_event/', transports: ['websocket'], auth: { token },
    reconnectionDelay: 100, reconnectionDelayMax: 500, extraHeaders: { origin: server.url }, ...opts,
  });
}

const once = (emitter, name, timeout = 10000) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no ${name} within ${timeout} ms`)), timeout);
  emitter.once(name, (...args) => { clearTimeout(timer); resolve(args); });
});

/** The next `event` packet answering `id`. */
const answer = (socket, id) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no answer to ${id}`)), 10000);
  const on = (u) => {
    if (u.id === id && u.final) { clearTimeout(timer); socket.off('event', on); resolve(u); }
  };
  socket.on('event', on);
});

test('socket.io-client connects with a token, emits events and gets deltas back', async () => {
  const server = await startServer();
  const socket = connect(server, 'peer-tab-1-0123456789abcdef');
  try {
    await once(socket, 'connect');
    const first = answer(socket, 1);
    socket.emit('event', event(1, 'counter_state.increment'));
    const u = await first;
    assert.deepEqual(u.delta, { counter_state: { count: 1 } });
    assert.deepEqual(u.events, []);
    const second = answer(socket, 2);
    socket.emit('event', event(2, 'counter_state.add', { amount: 5 }));
    assert.equal((await second).delta.counter_state.count, 6);
  } finally {
    socket.close();
    await server.stop();
  }
});

test('an event emitted with an ack gets its final update as the ack', async () => {
  const server = await startServer();
  const socket = connect(server, 'peer-tab-ack-0123456789abcdef');
  try {
    await once(socket, 'connect');
    const u = await socket.timeout(10000).emitWithAck('event', event(7, 'counter_state.increment'));
    assert.equal(u.id, 7);
    assert.equal(u.final, true);
    assert.equal(u.delta.counter_state.count, 1);
    const bad = await socket.timeout(10000).emitWithAck('event', 'not an object');
    assert.equal(bad.events[0].name, '_error');
    assert.equal(socket.connected, true, 'a malformed event does not cost the connection');
  } finally {
    socket.close();
    await server.stop();
  }
});

test('a connection without a token is refused with a message that says what to send', async () => {
  const server = await startServer();
  const socket = io(server.url, { path: '/_event/', transports: ['websocket'], reconnection: false, extraHeaders: { origin: server.url } });
  try {
    const [err] = await once(socket, 'connect_error');
    assert.match(err.message, /token/);
  } finally {
    socket.close();
    await server.stop();
  }
});

test('heartbeats: the client answers pings and the connection outlives several ping intervals', async () => {
  const server = await startServer({ FERRULE_PING_INTERVAL_MS: '150', FERRULE_PING_TIMEOUT_MS: '300' });
  const socket = connect(server, 'peer-tab-ping-0123456789abcdef', { reconnection: false });
  try {
    await once(socket, 'connect');
    let pings = 0;
    socket.io.engine.on('ping', () => { pings += 1; });
    let dropped = false;
    socket.on('disconnect', () => { dropped = true; });
    await new Promise((r) => setTimeout(r, 1200));
    assert.ok(pings >= 4, `expected several pings, got ${pings}`);
    assert.equal(dropped, false);
    const u = await socket.timeout(5000).emitWithAck('event', event(1, 'counter_state.increment'));
    assert.equal(u.delta.counter_state.count, 1);
  } finally {
    socket.close();
    await server.stop();
  }
});

test('socket.io-client reconnects to a restarted server and carries on', async () => {
  const server = await startServer();
  const socket = connect(server, 'peer-tab-restart-0123456789abcdef');
  try {
    await once(socket, 'connect');
    const u = await socket.timeout(5000).emitWithAck('event', event(1, 'counter_state.increment'));
    assert.equal(u.delta.counter_state.count, 1);
    const reconnected = once(socket.io, 'reconnect', 30000);
    await server.restart();
    await reconnected;
    // States were in the old process's memory: the same tab starts again from 0.
    const after = await socket.timeout(5000).emitWithAck('event', event(2, 'counter_state.increment'));
    assert.equal(after.delta.counter_state.count, 1);
  } finally {
    socket.close();
    await server.stop();
  }
});
