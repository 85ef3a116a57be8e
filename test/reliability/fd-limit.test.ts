// fd exhaustion: a server under a low open-files limit keeps serving, turns the
// excess away deliberately, counts every connection, and does not spin.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { FugueClient } from '../../src/client/client.js';
import { encodeFrame, FrameDecoder, type ServerMessage } from '../../src/protocol/index.js';
import { httpPortOf, spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

type Outcome = 'served' | 'busy' | 'dropped';

/** Connect and handshake; report how the server treated us. Served sockets stay open. */
function attempt(path: string): Promise<{ outcome: Outcome; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    const decoder = new FrameDecoder();
    let done = false;
    const finish = (outcome: Outcome) => {
      if (!done) {
        done = true;
        resolve({ outcome, socket });
      }
    };
    socket.on('connect', () => socket.write(encodeFrame({ type: 'connect', protocol_version: 1 })));
    socket.on('data', (chunk: Buffer) => {
      for (const p of decoder.push(chunk)) {
        const m = JSON.parse(p.toString()) as ServerMessage;
        if (m.type === 'connected') finish('served');
        else if (m.type === 'error' && m.code === 'server_busy') finish('busy');
      }
    });
    socket.on('error', () => finish('dropped'));
    socket.on('close', () => finish('dropped'));
  });
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100)
}

async function metrics(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(fugue_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

(hasPrlimit ? test : test.skip)('under ulimit -n 64: existing clients are served, the excess is turned away and counted, no spin, service resumes', async (t) => {
  t.timeout(60_000);
  const sock = join(tmpDir(t), 'f.sock');
  const s = spawnServer(t, { wrapper: ['prlimit', '--nofile=64:64', '--'], env: { FUGUE_SOCKET_PATH: sock, FUGUE_HANDSHAKE_TIMEOUT_MS: '60000' } });
  await s.ready();
  const listening = await s.waitLog((l) => l.msg === 'server listening', 'server listening');
  const effective = listening.maxClients as number;
  t.is(listening.openFilesLimit, 64);
  t.true(effective > 5 && effective < 64, `effective client limit ${effective}`);
  t.truthy(s.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('the open-files limit leaves room')));
  const port = await waitFor(() => httpPortOf(s), { what: 'sidecar port' });

  // 1. Far more connections than fds, in waves.
  const attempts = 150;
  const results: Array<{ outcome: Outcome; socket: Socket }> = [];
  for (let i = 0; i < attempts; i += 25) results.push(...(await Promise.all(Array.from({ length: 25 }, () => attempt(sock)))));
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  const served = results.filter((r) => r.outcome === 'served');
  t.is(served.length, effective, 'exactly the effective limit is served');
  t.is(count('served') + count('busy') + count('dropped'), attempts);
  t.log(`FDLIMIT: ulimit -n 64, effective limit ${effective}, ${attempts} attempts: ${count('served')} served, ${count('busy')} server_busy, ${count('dropped')} dropped by the connection cap`);

  // 2. No connection vanished uncounted: the server's counters match what the clients saw.
  const m = await waitFor(async () => {
    const v = await metrics(port);
    return v['fugue_connections_accepted_total'] === count('served') &&
      v['fugue_connections_rejected_total{reason="server_busy"}'] === count('busy') &&
      v['fugue_connections_rejected_total{reason="fd_limit"}'] === count('dropped') ? v : undefined;
  }, { what: 'metrics to match the clients', timeoutMs: 5000 }).catch(async () => metrics(port));
  t.is(m['fugue_connections_accepted_total'], count('served'));
  t.is(m['fugue_connections_rejected_total{reason="server_busy"}'], count('busy'));
  t.is(m['fugue_connections_rejected_total{reason="fd_limit"}'], count('dropped'));
  t.is(m['fugue_active_clients'], effective);

  // 3. Existing clients keep being served.
  const pings = await Promise.all(served.map((r) => new Promise<boolean>((resolve) => {
    const d = new FrameDecoder();
    r.socket.removeAllListeners('data');
    r.socket.on('data', (c: Buffer) => { for (const p of d.push(c)) resolve((JSON.parse(p.toString()) as ServerMessage).type === 'pong'); });
    r.socket.write(encodeFrame({ type: 'ping' }));
  })));
  t.true(pings.every(Boolean));

  // 4. At the limit and idle, the server does not spin.
  const pid = s.child.pid!;
  const c0 = cpuSeconds(pid);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 1000)); // measuring an interval, not synchronising
  const cpuShare = (cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000);
  t.log(`FDLIMIT: CPU at the limit ${(cpuShare * 100).toFixed(1)} %`);
  t.true(cpuShare < 0.2, `CPU ${cpuShare}`);

  // 5. When clients leave, new ones are served again.
  for (const r of served.slice(0, 5)) r.socket.destroy();
  await waitFor(async () => (await metrics(port))['fugue_active_clients'] === effective - 5, { what: 'five clients gone' });
  const again = await Promise.all(Array.from({ length: 5 }, () => attempt(sock)));
  t.deepEqual(again.map((r) => r.outcome), Array(5).fill('served'));
  const c = await FugueClient.connect(sock).catch((e: Error) => e);
  t.true(c instanceof Error || (await c.closed().then(() => true)), 'one more is still turned away');

  for (const r of [...results, ...again]) r.socket.destroy();
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
});
