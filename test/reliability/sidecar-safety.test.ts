// Sidecar safety (issue item "Sidecar safety"): the HTTP sidecar of an in-process
// App must stay on loopback, refuse oversized or malformed requests, shed slow and
// idle clients, and keep /healthz answering through all of it. Each test reports
// a number; each ends by checking that /healthz still answers 200.

import test, { type ExecutionContext } from 'ava';
import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { performance } from 'node:perf_hooks';
import { startApp } from '../helpers/app.js';
import { waitFor, TIMED_OUT, within } from '../helpers/wait-for.js';


/**
 * An answer within this many ms was not blocked. Blocked means waiting for the
 * sidecar's headers timeout (5 s, which Node checks every 1 s: 5-6 s); an
 * answer takes milliseconds, so 3 s leaves a loaded machine plenty and still
 * tells the two apart.
 */
const NOT_BLOCKED_MS = 3000;

/** GET /healthz on a fresh connection; asserts 200 and returns the latency in ms. */
async function healthz(t: ExecutionContext, baseUrl: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(5000), headers: { connection: 'close' } });
  t.is(r.status, 200, '/healthz answers 200');
  t.deepEqual(await r.json(), { status: 'ok' });
  return performance.now() - t0;
}

interface RawReply {
  /** Everything the server sent. */
  text: string;
  /** The status code of the first response, or 0. */
  status: number;
  /** ms from connect to the close. */
  ms: number;
  /** The connection ended with ECONNRESET/EPIPE rather than a clean FIN. */
  reset: boolean;
}

/** Open a TCP connection, send `bytes`, and collect the reply until the server closes (or `timeoutMs`). */
function raw(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let text = '';
    let reset = false;
    const s = connect(port, '127.0.0.1', () => s.write(bytes));
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reset = true;
      else reject(err);
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the server did not close the connection within ${timeoutMs} ms; got ${JSON.stringify(text.slice(0, 200))}`));
    }, timeoutMs);
    s.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
      resolve({ text, status: m ? Number(m[1]) : 0, ms: performance.now() - t0, reset });
    });
  });
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

// --- (a) -------------------------------------------------------------------

test('(a) the sidecar binds 127.0.0.1 by default and is not reachable on other addresses', async (t) => {
  const { app, baseUrl } = await startApp(t); // default config, http.port 0
  t.is(app.config.http.host, '127.0.0.1');
  const addr = app.httpAddress!;
  t.is(addr.address, '127.0.0.1');
  t.is(addr.family, 'IPv4');
  // Every non-loopback address of this machine must refuse the port.
  const others = Object.values(networkInterfaces())
    .flat()
    .filter((i): i is NonNullable<typeof i> => i !== undefined && !i.internal && i.family === 'IPv4')
    .map((i) => i.address);
  const refused: string[] = [];
  for (const host of others) {
    const outcome = await new Promise<string>((resolve) => {
      const s = connect(addr.port, host);
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    t.not(outcome, 'connected', `the sidecar answers on ${host}`);
    refused.push(`${host}:${outcome}`);
  }
  t.log(`sidecar bound to ${addr.address}:${addr.port}; other addresses: ${refused.join(', ') || 'none on this machine'}`);
  await healthz(t, baseUrl);
});

// --- (b) -------------------------------------------------------------------

const HUGE_HEADERS = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ${'a'.repeat(64 * 1024)}\r\n\r\n`;

test('(b) a request with 64 KB of headers is refused with a 4xx and the connection closed; the sidecar keeps serving', async (t) => {
  const { app, baseUrl } = await startApp(t);
  const r = await raw(app.httpAddress!.port, HUGE_HEADERS);
  t.log(`64 KB header: status ${r.status} in ${Math.round(r.ms)} ms (reset: ${r.reset})`);
  t.true(r.status >= 400 && r.status < 500, `status ${r.status}: ${r.text.slice(0, 100)}`);
  t.false(r.text.includes('"status":"ok"'), 'the oversized request was not served');
  t.true(r.ms < NOT_BLOCKED_MS, `refused after ${r.ms} ms: at once, not after the headers timeout`);
  await healthz(t, baseUrl);
});

// Header overflow (HPE_HEADER_OVERFLOW) is 431, not the generic 400.
test('(b) a request with 64 KB of headers gets 431 Request Header Fields Too Large', async (t) => {
  const { app } = await startApp(t);
  const r = await raw(app.httpAddress!.port, HUGE_HEADERS);
  t.is(r.status, 431, r.text.split('\r\n')[0]);
});

// --- (c) -------------------------------------------------------------------

test('(c) malformed request lines get 400 and the sidecar keeps serving', async (t) => {
  const { app, baseUrl } = await startApp(t);
  const port = app.httpAddress!.port;
  const lines = [
    'THIS IS NOT HTTP\r\n\r\n',
    'GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n',
    '\x00\x01\x02\x03\r\n\r\n',
    'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET\r\n\r\n',
    'G\xe9T /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /heal thz HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /healthz HTTP/1.1\nHost: x\n\n',
    // malformed header section
    'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
  ];
  // Not listed: "GET  /healthz" (two spaces) is accepted by Node's own parser (llhttp), not the sidecar's doing.
  const statuses: number[] = [];
  for (const line of lines) {
    const r = await raw(port, Buffer.from(line, 'latin1')).catch((err: Error) => ({ status: -1, text: `${JSON.stringify(line)}: ${err.message}` }));
    statuses.push(r.status);
    t.is(r.status, 400, `${JSON.stringify(line)} -> ${JSON.stringify(r.text.slice(0, 80))}`);
  }
  t.log(`${lines.length} malformed request lines -> ${statuses.join(',')}`);
  await healthz(t, baseUrl);
});

// --- (d) -------------------------------------------------------------------

const PARTIAL_REQUEST = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ';

test('(d) clients stuck in the middle of their headers do not keep /healthz out: beyond the cap they are refused, and once silent for 1 s they make room', async (t) => {
  const { app, baseUrl } = await startApp(t);
  const port = app.httpAddress!.port;
  const slow = await Promise.all(Array.from({ length: 20 }, () => openSocket(port)));
  for (const s of slow) {
    s.on('error', () => {});
    s.write(PARTIAL_REQUEST);
  }
  // A fresh connection gets 1 s to send its request before it counts as idle:
  // until then the 16 half-sent requests hold every place.
  const t0 = performance.now();
  await waitFor(async () => (await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.status === 200, { what: '/healthz to get through', timeoutMs: 4000 });
  const firstOk = performance.now() - t0;
  const latencies: number[] = [];
  for (let i = 0; i < 10; i++) latencies.push(await healthz(t, baseUrl));
  t.log(`/healthz with 20 half-sent requests: first answered after ${Math.round(firstOk)} ms, then max ${Math.round(Math.max(...latencies))} ms over ${latencies.length} requests`);
  // Expected: about 1 s (the half-sent requests count as idle once silent for
  // 1 s, and make room). Blocked, /healthz would wait for the 5 s headers
  // timeout; 4 s leaves a loaded machine 3 s and still tells the two apart.
  t.true(firstOk < 4000, `through after ${firstOk} ms`);
  t.true(Math.max(...latencies) < NOT_BLOCKED_MS, 'then answered without being blocked each time');
  for (const s of slow) s.destroy();
});

// Node checks headersTimeout only every connectionsCheckingInterval (default
// 30 s); the sidecar sets it to 1 s, so a stalled request goes after ~5-6 s.
test('(d) a client that sends a partial request line and then nothing is closed within ~12 s (headersTimeout 5 s)', async (t) => {
  t.timeout(20_000);
  const { app, baseUrl } = await startApp(t);
  const port = app.httpAddress!.port;
  const s = await openSocket(port);
  s.on('error', () => {});
  const t0 = performance.now();
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const closed = new Promise<number>((resolve) => s.once('close', () => resolve(performance.now() - t0)));
  s.write('GET /heal');
  // Meanwhile the sidecar answers others quickly.
  let maxHealth = 0;
  for (let i = 0; i < 5; i++) maxHealth = Math.max(maxHealth, await healthz(t, baseUrl));
  t.true(maxHealth < NOT_BLOCKED_MS, `/healthz took ${maxHealth} ms while a slow client was open`);
  // Expected: 5-6 s. With Node's default connectionsCheckingInterval (30 s) it
  // would stay open for 30 s; 12 s leaves a loaded machine 6 s.
  const ms = await within(closed, 12_000);
  t.log(ms === TIMED_OUT ? 'the slow-header client was still open after 12 s' : `closed after ${Math.round(ms)} ms with ${JSON.stringify(text.split('\r\n')[0])}`);
  s.destroy();
  t.not(ms, TIMED_OUT, 'the server closed the slow-header connection within 12 s');
  if (ms !== TIMED_OUT) t.true(ms >= 4000, `closed after ${ms} ms, before headersTimeout`);
});

// --- (e) -------------------------------------------------------------------

test('(e) 200 parallel GET /metrics: up to http.maxConnections are served at once, the rest are refused and counted, and the sidecar keeps serving', async (t) => {
  const { baseUrl } = await startApp(t);
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: 200 }, async () => {
      try {
        // Served in milliseconds, or refused at once; those waiting in the accept
        // backlog on a loaded machine can take seconds. 30 s is a hang.
        const r = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(30_000) });
        return { status: r.status, body: await r.text() };
      } catch (err) {
        // Refused: the connection was closed before any response. A request that
        // got nothing for 30 s hung instead, and must not pass for a refusal.
        return { status: (err as Error).name === 'TimeoutError' ? -1 : 0, body: '' };
      }
    }),
  );
  const ms = performance.now() - t0;
  const ok = results.filter((r) => r.status === 200 && r.body.includes('fugue_active_clients')).length;
  const refused = results.filter((r) => r.status === 0).length;
  const hung = results.filter((r) => r.status === -1).length;
  t.log(`200 parallel GET /metrics: ${ok} ok, ${refused} refused at the cap, ${hung} hung, in ${Math.round(ms)} ms`);
  t.is(hung, 0, 'no request hung');
  t.is(ok + refused, 200, 'every request was either served or refused');
  t.true(ok >= 16, 'at least http.maxConnections served');
  const text = await (await fetch(`${baseUrl}/metrics`, { headers: { connection: 'close' } })).text();
  const counted = Number(/^fugue_http_connections_rejected_total\{reason="limit"\} (\d+)/m.exec(text)?.[1]);
  t.is(counted, refused, 'every refusal is counted');
  await healthz(t, baseUrl);
});

// --- (f) -------------------------------------------------------------------

test('(f) a POST with a 10 MB body to /metrics gets 405 before the body is sent, without buffering it or hanging', async (t) => {
  const { app, baseUrl } = await startApp(t);
  const port = app.httpAddress!.port;
  const BODY = 10 * 1024 * 1024;

  // Raw: announce 10 MB, send 64 KB; the 405 must come back before the rest is sent.
  const s = await openSocket(port);
  s.on('error', () => {});
  let text = '';
  const firstResponse = new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve();
    });
  });
  const t0 = performance.now();
  s.write(`POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BODY}\r\n\r\n`);
  let sent = 64 * 1024;
  s.write(Buffer.alloc(sent, 0x61));
  t.not(await within(firstResponse, 5000), TIMED_OUT, 'a response before the body was complete');
  const answeredMs = performance.now() - t0;
  const sentAtAnswer = sent;
  t.regex(text, /^HTTP\/1\.1 405 /);
  t.regex(text, /\r\nallow: GET, HEAD\r\n/i);
  // Then the rest of the body: the server discards it (or closes); either way it must not hang.
  const chunk = Buffer.alloc(1024 * 1024, 0x62);
  while (sent < BODY && !s.destroyed) {
    const n = Math.min(chunk.length, BODY - sent);
    sent += n;
    if (!s.write(chunk.subarray(0, n))) await within(new Promise((r) => { s.once('drain', r); s.once('close', r); }), 5000);
  }
  // If the connection survived, it is usable again: the body was consumed, not queued.
  let reuse = 'closed by the server';
  if (!s.destroyed) {
    text = '';
    const second = new Promise<void>((resolve) => {
      const check = () => {
        if (/\r\n\r\n[\s\S]*\}/.test(text)) resolve();
      };
      s.on('data', check);
      s.once('close', () => resolve());
    });
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    t.not(await within(second, 5000), TIMED_OUT, 'the connection neither answered nor closed after the body');
    if (text !== '') {
      t.regex(text, /^HTTP\/1\.1 200 /);
      reuse = 'reused: 200';
    }
  }
  s.destroy();

  // fetch: the whole 10 MB body, end to end.
  const t1 = performance.now();
  const r = await fetch(`${baseUrl}/metrics`, { method: 'POST', body: Buffer.alloc(BODY, 0x63), signal: AbortSignal.timeout(10_000) });
  t.is(r.status, 405);
  await r.text();
  const fetchMs = performance.now() - t1;
  t.log(`10 MB POST: 405 after ${Math.round(answeredMs)} ms with ${sentAtAnswer} of ${BODY} body bytes sent; connection afterwards ${reuse}; fetch with the full body answered in ${Math.round(fetchMs)} ms`);
  t.true(sentAtAnswer < BODY);
  await healthz(t, baseUrl);
});

// --- (g) -------------------------------------------------------------------

test('(g) idle keep-alive connections never keep /healthz out: at the cap the one idle longest makes room', async (t) => {
  const { app, baseUrl } = await startApp(t);
  const port = app.httpAddress!.port;
  // 100 connections, one after another: each makes one keep-alive request, reads the answer, then sits idle.
  const sockets: Socket[] = [];
  let served = 0;
  for (let i = 0; i < 100; i++) {
    const s = await openSocket(port);
    s.on('error', () => {});
    sockets.push(s);
    const answered = await new Promise<boolean>((resolve) => {
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (/\r\n\r\n[\s\S]*\}/.test(text)) resolve(true);
      });
      s.once('close', () => resolve(false));
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    });
    if (answered) served++;
  }
  const open = sockets.filter((s) => !s.destroyed).length;
  t.is(served, 100, 'every one was served: each new one made room by closing the one idle longest');
  t.true(open <= 16, `at most http.maxConnections held (${open})`);
  const latencies: number[] = [];
  for (let i = 0; i < 10; i++) latencies.push(await healthz(t, baseUrl));
  const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000), headers: { connection: 'close' } })).text();
  const shed = Number(/^fugue_http_connections_rejected_total\{reason="idle"\} (\d+)/m.exec(text)?.[1]);
  t.true(shed >= 100 - 16, `idle connections closed to make room are counted (${shed})`);
  t.log(`100 keep-alive connections: ${served} served, ${open} still open, ${shed} idle ones closed to make room; /healthz max ${Math.round(Math.max(...latencies))} ms`);
  t.true(Math.max(...latencies) < NOT_BLOCKED_MS, '/healthz answered without being blocked');
  for (const s of sockets) s.destroy();
  await waitFor(() => sockets.every((s) => s.destroyed), { what: 'sockets closed' });
  await healthz(t, baseUrl);
});
