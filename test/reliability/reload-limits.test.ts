// Refusals after a reload (issue 18, point 2): whatever a reload does to the
// client limit, a connection over the limit in force is told `server_busy`
// and counted under that reason; the kernel-level cap (fd_limit) is only for
// descriptors truly running out. The real CLI, a real SIGHUP.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { RawClient } from '../helpers/raw-client.js';
import { scrapeSample } from '../helpers/scrape.js';
import { httpPortOf, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

test('a reload that lowers limits.maxClients below the number connected: newcomers get server_busy (counted so), the connected keep working', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const file = join(dir, 'server.json');
  writeFileSync(file, JSON.stringify({ limits: { maxClients: 50 } }));
  const s = spawnServer(t, { args: ['--config', file], env: { FUGUE_SOCKET_PATH: sock } });
  await s.ready();
  const port = await waitFor(() => httpPortOf(s), { what: 'sidecar port' });
  const held = await Promise.all(Array.from({ length: 20 }, (_, i) => FugueClient.connect(sock, { clientName: `held${i}` })));
  writeFileSync(file, JSON.stringify({ limits: { maxClients: 10 } }));
  s.child.kill('SIGHUP');
  await s.waitLog((l) => l.msg === 'configuration reloaded', 'configuration reloaded');
  t.is(await scrapeSample(port, 'fugue_max_clients'), 10);
  for (let i = 0; i < 5; i++) {
    const c = await RawClient.connect(sock);
    const [reply] = await c.untilClosed();
    t.like(reply, { type: 'error', code: 'server_busy' }, `newcomer ${i} is told, not reset`);
    t.regex(reply!.message as string, /limits\.maxClients = 10/);
  }
  t.is(await scrapeSample(port, 'fugue_connections_rejected_total{reason="server_busy"}'), 5);
  t.is(await scrapeSample(port, 'fugue_connections_rejected_total{reason="fd_limit"}'), 0);
  t.is(await scrapeSample(port, 'fugue_active_clients'), 20);
  for (const c of held) t.is((await c.ping()).type, 'pong');
  // Once enough have left, the limit admits clients again.
  await Promise.all(held.slice(0, 11).map((c) => c.detach()));
  await waitFor(async () => (await scrapeSample(port, 'fugue_active_clients')) === 9, { what: '9 left' });
  const again = await FugueClient.connect(sock);
  t.is((await again.ping()).type, 'pong');
  await Promise.all([again, ...held.slice(11)].map((c) => c.detach()));
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});
