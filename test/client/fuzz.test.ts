// Seeded fuzz of the client against a fake server that answers garbage (issue
// 13, point 6). For every case the request must settle in time, either with a
// reply that honours docs/protocol.md or with a FugueError of a documented
// client code; nothing may throw anything else, crash the process or hang. A
// sample runs the real fuguectl against the same fake server: a documented
// exit code and a one-line message, never a stack trace.
//
// Reproduce a failure with the seed it logged:
//   FUGUE_TEST_FUZZ_SEED=<seed> FUGUE_TEST_FUZZ_MS=<ms> npx ava dist/test/client/fuzz.test.js

import test from 'ava';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { FugueClient } from '../../src/client/client.js';
import { ERROR_CODES, FugueError } from '../../src/errors.js';
import type { ServerMessage } from '../../src/protocol/index.js';
import { frameOf, startFakeServer, type FakeConnection } from '../helpers/fake-server.js';
import { envInt, fuzzSeed, Random } from '../helpers/rng.js';
import { CTL_BIN } from '../helpers/spawn-server.js';
import { TIMED_OUT, within } from '../helpers/wait-for.js';
import { childEnv } from '../helpers/child-env.js';

const SEED = fuzzSeed();
const FUZZ_MS = envInt('FUGUE_TEST_FUZZ_MS', 3000);
const TIMEOUT_MS = 150;
/** Cases run even past FUGUE_TEST_FUZZ_MS on a slow or busy machine. */
const MIN_CASES = 40;
const CLIENT_CODES = new Set(['FUGUE_ERR_CLIENT_CONNECT', 'FUGUE_ERR_CLIENT_PROTOCOL', 'FUGUE_ERR_CLIENT_TIMEOUT', 'FUGUE_ERR_CLIENT_CLOSED', 'FUGUE_ERR_CLIENT_BAD_REPLY', 'FUGUE_ERR_CLIENT_REPLY_TOO_LARGE']);

type Action = (conn: FakeConnection, id: unknown) => void;

// Raw control characters: a hostile server must not reach the terminal through a message.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function deep(n: number): string {
  return `${'['.repeat(n)}${']'.repeat(n)}`;
}

function garbage(r: Random, want: string): Action {
  const good: Record<string, Record<string, unknown>> = {
    connected: { type: 'connected', protocol_version: 1, server_version: '1.0.0', client_id: 3 },
    pong: { type: 'pong' },
    status: { type: 'status', server_version: '1.0.0', uptime_ms: 10, clients: 1, draining: false },
    echo: { type: 'echo', data: 'x' },
  };
  const base = good[want] ?? { type: want };
  const junk = () => r.pick<unknown>([null, 7, -1, 1.5, '', 'x', [], {}, true, r.text(8), 'y'.repeat(r.int(100, 5000))]);
  const choices: Array<() => Action> = [
    () => (c, id) => c.send({ ...base, id }), // well-formed
    () => (c, id) => c.send({ ...base, id, extra: r.text(6) }), // well-formed, with an unknown field
    () => (c, id) => { const k = r.pick(Object.keys(base)); c.send({ ...base, id, [k]: junk() }); }, // a field of the wrong type
    () => (c, id) => { const m: Record<string, unknown> = { ...base, id }; delete m[r.pick(Object.keys(base).filter((k) => k !== 'type').concat('type'))]; c.send(m); },
    () => (c, id) => c.send({ type: r.pick(['pong', 'status', 'echo', 'connected', 'error', 'shutdown', r.text(5)]), id, code: junk(), message: junk() }),
    () => (c) => c.raw(r.bytes(r.int(1, 64))), // unframed bytes
    () => (c) => c.frame(r.bytes(r.int(0, 64))), // a frame of random bytes
    () => (c) => c.frame(''), // empty frame
    () => (c) => c.frame(r.pick(['null', '[]', '42', '"s"', 'true', '{', '{"type":', '{"type":"pong","id":{}}'])),
    () => (c) => { const h = Buffer.alloc(4); h.writeUInt32BE(r.pick([0xffffffff, 0x7fffffff, 64 * 1024 * 1024]), 0); c.raw(h); },
    () => (c, id) => c.frame(`{"type":"${want}","id":${JSON.stringify(id)},"deep":${deep(r.int(1000, 100_000))}}`),
    () => (c, id) => c.frame(`{"type":"status","id":${JSON.stringify(id)},"server_version":"1","uptime_ms":1,"clients":${deep(r.int(5000, 50_000))},"draining":false}`),
    () => (c, id) => { const b = frameOf(JSON.stringify({ ...base, id })); const at = r.int(1, b.length - 1); c.raw(b.subarray(0, at)); setImmediate(() => c.raw(b.subarray(at))); }, // split
    () => (c, id) => { const b = frameOf(JSON.stringify({ ...base, id })); c.raw(b.subarray(0, r.int(0, b.length - 1))); c.socket.end(); }, // cut mid-frame
    () => (c) => c.socket.destroy(),
    () => (c, id) => { c.send({ type: 'shutdown', reason: 'bye', timeout_ms: r.pick<unknown>([10, 'soon', -1]) }); c.send({ ...base, id }); }, // unsolicited first
    () => (c, id) => c.send({ ...base, id: typeof id === 'number' ? id + 1000 : 'other' }), // wrong id: the request times out
    () => (c, id) => c.send({ type: 'error', id, code: 'internal', message: 'server says no' }),
    () => (c, id) => c.send({ type: 'error', id, code: '\u001b[2J', message: `\u001b]0;pwned\u0007${r.text(10)}` }), // terminal escapes
    () => (c, id) => c.raw(Buffer.concat([frameOf(JSON.stringify({ ...base, id })), r.bytes(r.int(1, 16))])), // reply, then trailing garbage
  ];
  return r.pick(choices)();
}

/** The contract of a reply that resolved: docs/protocol.md's fields with their types. */
function checkReply(reply: ServerMessage, want: string): string | undefined {
  if (reply.type === 'error') return typeof reply.code === 'string' && typeof reply.message === 'string' ? undefined : 'error without string code/message';
  if (reply.type !== want) return `type ${reply.type} where ${want} was due`;
  if (want === 'status' && !(typeof reply.server_version === 'string' && Number.isSafeInteger(reply.clients) && typeof reply.draining === 'boolean' && typeof reply.uptime_ms === 'number')) return 'status fields';
  if (want === 'echo' && !Object.hasOwn(reply, 'data')) return 'echo without data';
  return undefined;
}

interface Behaviour {
  handshake: Action;
  request: Action;
}

test('fuzz: the client survives a server that answers garbage, with typed errors only (seeded)', async (t) => {
  t.timeout(120_000);
  t.log(`fuzz seed ${SEED} (reproduce: FUGUE_TEST_FUZZ_SEED=${SEED} FUGUE_TEST_FUZZ_MS=${FUZZ_MS})`);
  const r = new Random(SEED);
  let current: Behaviour | undefined;
  const fake = await startFakeServer(t, (msg, conn) => {
    if (current === undefined || msg === undefined) return;
    if (msg.type === 'connect') current.handshake(conn, msg.id);
    else if (msg.type === 'detach') conn.socket.end();
    else current.request(conn, msg.id);
  });
  const stats = { cases: 0, resolved: 0 } as Record<string, number>;
  const t0 = performance.now();
  while (stats.cases! < MIN_CASES || performance.now() - t0 < FUZZ_MS) {
    const index = stats.cases!++;
    const op = r.pick(['ping', 'status', 'echo', 'other'] as const);
    const want = op === 'ping' ? 'pong' : op === 'other' ? 'unknown_to_the_client' : op;
    current = { handshake: r.bool(0.8) ? (c, id) => c.connected({ id }) : garbage(r, 'connected'), request: garbage(r, want) };
    const where = `seed ${SEED} case #${index} (${op})`;
    const attempt = (async () => {
      const c = await FugueClient.connect(fake.path, { timeoutMs: TIMEOUT_MS, maxReplyBytes: 1024 * 1024 });
      try {
        const reply = op === 'ping' ? await c.ping() : op === 'status' ? await c.status() : op === 'echo' ? await c.echo('x') : await c.request({ type: 'other' });
        return reply;
      } finally {
        await c.detach();
      }
    })();
    const settled = await within(attempt.then((reply) => ({ reply }), (err: unknown) => ({ err })), TIMEOUT_MS * 4 + 500);
    if (settled === TIMED_OUT) {
      t.fail(`${where}: did not settle within ${TIMEOUT_MS * 4 + 500} ms`);
      break;
    }
    if ('reply' in settled) {
      const wrong = op === 'other' ? (typeof settled.reply.type === 'string' ? undefined : 'no type') : checkReply(settled.reply, want);
      if (wrong !== undefined) t.fail(`${where}: resolved with a reply that breaks the contract (${wrong}): ${safeJson(settled.reply)}`);
      stats.resolved!++;
    } else {
      const err = settled.err;
      t.true(err instanceof FugueError && CLIENT_CODES.has(err.code), `${where}: rejected with ${String(err).slice(0, 300)}`);
      if (err instanceof FugueError) {
        stats[err.code] = (stats[err.code] ?? 0) + 1;
        t.true(err.message.length < 1000, `${where}: a message of ${err.message.length} characters`);
        t.false(CONTROL.test(err.message), `${where}: raw control characters in ${JSON.stringify(err.message)}`);
        t.is(err.exitCode, ERROR_CODES[err.code], where);
      }
    }
  }
  t.log(`CLIENT_FUZZ: seed=${SEED} ${Object.entries(stats).map(([k, v]) => `${k.replace('FUGUE_ERR_CLIENT_', '').toLowerCase()}=${v}`).join(' ')}`);
  t.true(stats.cases! >= MIN_CASES, `only ${stats.cases} cases`);
  t.true(stats.resolved! > 0 && (stats.FUGUE_ERR_CLIENT_BAD_REPLY ?? 0) > 0, JSON.stringify(stats));

  // The real fuguectl against the same garbage: a documented exit code and message, never a stack trace.
  const exits = new Set<number>();
  const samples: Array<[string[], string]> = [[['ping'], 'pong'], [['status'], 'status'], [['status', '--json'], 'status'], [['echo', 'hi'], 'echo'], [['health'], 'status']];
  for (let i = 0; i < 8; i++) {
    const [args, want] = r.pick(samples);
    const op = args[0] as string;
    current = { handshake: r.bool(0.5) ? (c, id) => c.connected({ id }) : garbage(r, 'connected'), request: garbage(r, want) };
    const res = await ctl(['--socket', fake.path, '--timeout', '300', ...args]);
    const where = `seed ${SEED} fuguectl sample ${i} (${args.join(' ')}): exit ${res.code}, stderr ${res.stderr.slice(0, 500)}`;
    t.notRegex(res.stderr, /^\s+at /m, where);
    t.true(op === 'health' ? [0, 1].includes(res.code!) : [0, 69, 75, 76].includes(res.code!), where);
    if (res.code !== 0) t.regex(res.stderr, /^fuguectl: [^\n]+\n$/, where);
    t.false(CONTROL.test(res.stderr.slice(0, -1)), `${where}: raw control characters`);
    exits.add(res.code!);
  }
  t.log(`fuguectl exits seen: ${[...exits].sort().join(', ')}`);
});

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v).slice(0, 200);
  } catch {
    return '(too deep to print)';
  }
}

function ctl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CTL_BIN, ...args], { env: childEnv({ PATH: process.env.PATH, HOME: '/tmp' }), timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
