// The diagnostics channels as an outsider sees them (issue 16, point 5): a
// preloaded module that knows nothing of fugue but the channel names listed in
// docs/observability.md subscribes to them, and the real daemon's events
// arrive, in order, with the documented fields.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FugueClient } from '../../src/client/client.js';
import { CHANNEL_NAMES } from '../../src/server/channels.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const WATCHER = fileURLToPath(new URL('../../../test/fixtures/channel-watcher.mjs', import.meta.url));
const DOCS = fileURLToPath(new URL('../../../docs/observability.md', import.meta.url));

/** The channel names in docs/observability.md's channel table (first column, `fugue:...`). */
function documentedChannels(): string[] {
  return [...readFileSync(DOCS, 'utf8').matchAll(/^\| `(fugue:[a-z:-]+)` \|/gm)].map((m) => m[1]!);
}

interface Watched {
  channel: string;
  hasServer: boolean;
  [field: string]: unknown;
}

test('docs/observability.md lists every channel the core publishes on, and only those', (t) => {
  t.deepEqual(documentedChannels().sort(), Object.values(CHANNEL_NAMES).sort());
});

test('a preloaded subscriber with nothing but the channel names sees the daemon start, serve a client, reload and drain, in order', async (t) => {
  const dir = tmpDir(t);
  const socketPath = join(dir, 'f.sock');
  const out = join(dir, 'events.ndjson');
  const s = spawnServer(t, {
    env: { FUGUE_SOCKET_PATH: socketPath, NODE_OPTIONS: `--import=${WATCHER}`, WATCH_OUT: out, WATCH_CHANNELS: documentedChannels().join(',') },
  });
  await s.ready();
  const c = await FugueClient.connect(socketPath, { clientName: 'watched' });
  await c.ping();
  await c.detach();
  const read = (): Watched[] => {
    try {
      return readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Watched);
    } catch {
      return [];
    }
  };
  await waitFor(() => read().some((e) => e.channel === 'fugue:connection:closed'), { what: 'the close event' });
  s.child.kill('SIGHUP');
  await waitFor(() => read().some((e) => e.channel === 'fugue:config:reload'), { what: 'the reload event' });
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  const events = read();
  t.true(events.every((e) => e.hasServer), 'every event names its server');
  const order = events.map((e) => e.channel).filter((name) => name !== 'fugue:server:notice');
  t.deepEqual(order, [
    'fugue:server:listening',
    'fugue:connection:opened',
    'fugue:connection:handshake', // when connect is handled
    'fugue:message', // connect, once its reply is written
    'fugue:message', // ping
    'fugue:message', // detach
    'fugue:connection:closed',
    'fugue:config:reload',
    'fugue:server:drain',
    'fugue:server:drained',
  ]);
  const byChannel = (name: string) => events.filter((e) => e.channel === name);
  t.like(byChannel('fugue:server:listening')[0], { socketPath, pid: s.child.pid, activated: false });
  const id = byChannel('fugue:connection:opened')[0]!.clientId;
  t.like(byChannel('fugue:connection:handshake')[0], { clientId: id, clientName: 'watched' });
  t.deepEqual(byChannel('fugue:message').map((e) => [e.clientId, e.type, e.replyType, e.known]), [[id, 'connect', 'connected', true], [id, 'ping', 'pong', true], [id, 'detach', undefined, true]]);
  t.like(byChannel('fugue:connection:closed')[0], { clientId: id, clientName: 'watched', reason: 'detach', messagesIn: 3, messagesOut: 2 });
  t.like(byChannel('fugue:config:reload')[0], { ok: true, applied: [], restartRequired: [] });
  t.like(byChannel('fugue:server:drain')[0], { clients: 0 });
  t.like(byChannel('fugue:server:drained')[0], { left: 0, forced: 0 });
  const notices = byChannel('fugue:server:notice').map((e) => e.code);
  t.true(notices.includes('socket_bound'), `notices: ${notices.join(', ')}`);
});
