// The Notifier against a real AF_UNIX SOCK_DGRAM receiver standing in for
// systemd (test/fixtures/notify_receiver.py): exact text and order of every
// message, socket files and abstract names, the watchdog's cadence and its
// silence while the event loop is blocked, the no-op without NOTIFY_SOCKET,
// and every failure path (logged, counted, never thrown). Issue 9 point 4.

import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { monotonicUsec, Notifier, type NotifyLogger } from '../../src/supervisor/notify.js';
import { koffiSenderFactory, NATIVE_UNLOADABLE, type SenderFactory } from '../../src/supervisor/unix-datagram.js';
import { tmpDir } from '../helpers/tmp.js';
import { childEnv } from '../helpers/child-env.js';
import { LogSink } from '../helpers/log-sink.js';
import { testNeeding } from '../helpers/needs.js';
import { startNotifyReceiver, type NotifyDatagram, type NotifyReceiver } from '../helpers/notify-receiver.js';
import { findExecutable } from '../helpers/executables.js';

interface Logged {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

function memoryLogger(): NotifyLogger & { lines: Logged[]; at(level: Logged['level']): Logged[] } {
  const lines: Logged[] = [];
  const at = (level: Logged['level']) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, obj, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), at: (level) => lines.filter((l) => l.level === level) };
}

function notifierFor(t: ExecutionContext, env: Record<string, string | undefined>, extra: { log?: NotifyLogger; senderFactory?: SenderFactory } = {}): Notifier {
  const n = new Notifier({ env, ...extra });
  t.teardown(() => n.close());
  return n;
}

const isPing = (m: Readonly<Record<string, string>>) => m.WATCHDOG === '1';
const pings = (rx: NotifyReceiver) => rx.datagrams.filter((d) => isPing(d.fields));

for (const abstract of [false, true]) {
  const kind = abstract ? 'an abstract-namespace socket' : 'a socket file';
  test(`every notification reaches ${kind} in order, with its exact text, from this process's pid`, async (t) => {
    const rx = await startNotifyReceiver(t, { abstract });
    const n = notifierFor(t, { NOTIFY_SOCKET: rx.address });
    t.is(n.state, 'open');
    t.regex(n.mechanism ?? '', /^koffi \d+\.\d+\.\d+: libc sendto\(\)$/);

    t.true(n.ready('serving; 0 clients'));
    t.true(n.status('serving; 3 clients'));
    t.true(n.reloading('reloading the configuration'));
    t.true(n.ready('serving; 3 clients'));
    t.true(n.stopping('draining: 3 clients, 30 s left'));
    t.true(n.extendTimeout(35_000));
    t.true(n.status('draining: 1 client, 12 s left'));
    t.true(n.notify([['ERRNO', '0'], ['BUSERROR', 'x.y']]));

    await rx.waitFor((m) => m.BUSERROR === 'x.y', 'the last message');
    const raw = rx.raw();
    t.is(raw.length, 8);
    t.regex(raw[2]!, /^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\nSTATUS=reloading the configuration$/);
    t.deepEqual([...raw.slice(0, 2), ...raw.slice(3)], [
      'READY=1\nSTATUS=serving; 0 clients',
      'STATUS=serving; 3 clients',
      'READY=1\nSTATUS=serving; 3 clients',
      'STOPPING=1\nSTATUS=draining: 3 clients, 30 s left',
      'EXTEND_TIMEOUT_USEC=35000000',
      'STATUS=draining: 1 client, 12 s left',
      'ERRNO=0\nBUSERROR=x.y',
    ]);
    // What systemd's NotifyAccess=main checks: the sender is the main process itself.
    t.deepEqual([...new Set(rx.datagrams.map((d) => d.pid))], [process.pid]);
    t.deepEqual(n.stats, { sent: 8, failed: 0, watchdogPings: 0, lastError: undefined });
  });
}

test('RELOADING=1 carries MONOTONIC_USEC read from CLOCK_MONOTONIC', async (t) => {
  const rx = await startNotifyReceiver(t);
  const n = notifierFor(t, { NOTIFY_SOCKET: rx.address });
  const before = monotonicUsec();
  n.reloading();
  const after = monotonicUsec();
  const d = await rx.waitFor((m) => m.RELOADING === '1', 'RELOADING=1');
  t.is(d.raw, `RELOADING=1\nMONOTONIC_USEC=${d.fields.MONOTONIC_USEC}`);
  const sent = BigInt(d.fields.MONOTONIC_USEC!);
  t.true(before <= sent && sent <= after);
  // The receiver read python's time.CLOCK_MONOTONIC on arrival: same clock, so it is
  // a little later, never earlier (CLOCK_BOOTTIME or the wall clock would differ by far more).
  t.true(d.monotonicUsec >= sent, `received at ${d.monotonicUsec}, sent ${sent}`);
  t.true(d.monotonicUsec - sent < 5_000_000n, `received at ${d.monotonicUsec}, sent ${sent}`);
});

test('without NOTIFY_SOCKET every call is a no-op and nothing native is opened', (t) => {
  let opened = 0;
  const log = memoryLogger();
  const n = notifierFor(t, { WATCHDOG_USEC: '1000000' }, { log, senderFactory: () => (opened++, { mechanism: 'x', send() {}, close() {} }) });
  t.is(n.state, 'off');
  t.is(n.notifySocket, undefined);
  t.is(n.watchdogUsec, undefined);
  t.false(n.ready());
  t.false(n.reloading());
  t.false(n.stopping());
  t.false(n.status('x'));
  t.false(n.extendTimeout(1000));
  t.false(n.startWatchdog());
  n.close();
  t.is(n.state, 'off');
  t.is(opened, 0);
  t.deepEqual(n.stats, { sent: 0, failed: 0, watchdogPings: 0, lastError: undefined });
  t.deepEqual(log.lines, []);
});

test('importing the supervisor module and notifying without NOTIFY_SOCKET never loads koffi', (t) => {
  const index = new URL('../../src/supervisor/index.js', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const { Notifier } = await import(${JSON.stringify(index)});
    const n = new Notifier({ env: {} });
    n.ready(); n.startWatchdog(); n.close();
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('koffi'));
    process.stdout.write(JSON.stringify(loaded));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: childEnv({ PATH: process.env.PATH }) });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), []);
});

test('NOTIFY_SOCKET set but koffi missing: one clear error at construction, every notification a counted failure, nothing thrown', async (t) => {
  const rx = await startNotifyReceiver(t);
  const log = memoryLogger();
  const n = notifierFor(t, { NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '1000000' }, { log, senderFactory: koffiSenderFactory('fugue-test-no-such-native-package') });
  t.is(n.state, 'unavailable');
  t.false(n.ready());
  t.false(n.status('x'));
  t.false(n.startWatchdog(), 'no pings when nothing can be sent');
  const errors = log.at('error');
  t.is(errors.length, 1);
  t.is(errors[0]!.msg, `cannot notify the service manager: NOTIFY_SOCKET=${rx.address} is set but the optional dependency koffi, which sends the notifications, is not installed; reinstall fugue-server with optional dependencies, or run it with Type=simple`);
  t.is(errors[0]!.obj.notifySocket, rx.address);
  t.is(log.lines.length, 1, 'logged once, not per call');
  t.deepEqual(n.stats, { sent: 0, failed: 2, watchdogPings: 0, lastError: 'unavailable' });
  t.deepEqual(rx.datagrams, []);
});

test('koffi installed but unloadable here (no prebuilt for this platform): one clear error, nothing thrown', (t) => {
  const dir = tmpDir(t);
  const broken = join(dir, 'broken-koffi.cjs');
  writeFileSync(broken, "throw new Error('koffi.node: invalid ELF header');\n");
  const log = memoryLogger();
  const n = notifierFor(t, { NOTIFY_SOCKET: '@fugue-test-unloadable' }, { log, senderFactory: koffiSenderFactory(broken) });
  t.is(n.state, 'unavailable');
  t.false(n.ready());
  const errors = log.at('error');
  t.is(errors.length, 1);
  t.regex(errors[0]!.msg, /^cannot notify the service manager: NOTIFY_SOCKET=@fugue-test-unloadable is set but koffi, which sends the notifications, does not load on this platform \(cannot load .*broken-koffi\.cjs: koffi\.node: invalid ELF header\); run fugue-server with Type=simple$/);
  t.is((errors[0]!.obj.err as NodeJS.ErrnoException).code, NATIVE_UNLOADABLE);
});

test('a native failure other than a missing package is logged with its cause', (t) => {
  const log = memoryLogger();
  const n = notifierFor(t, { NOTIFY_SOCKET: '/run/x/notify' }, { log, senderFactory: () => {
    throw Object.assign(new Error('socket /run/x/notify failed: EMFILE'), { code: 'EMFILE' });
  } });
  t.is(n.state, 'unavailable');
  t.false(n.ready());
  t.regex(log.at('error')[0]!.msg, /no notification socket could be opened \(socket \/run\/x\/notify failed: EMFILE\)/);
  t.truthy(log.at('error')[0]!.obj.err);
});

test('an unusable NOTIFY_SOCKET is logged once, naming the value, and nothing is sent', (t) => {
  for (const value of ['', 'relative/notify.sock', 'vsock:2:9999', '@']) {
    const log = memoryLogger();
    let opened = 0;
    const n = notifierFor(t, { NOTIFY_SOCKET: value }, { log, senderFactory: () => (opened++, { mechanism: 'x', send() {}, close() {} }) });
    t.is(n.state, 'unavailable', value);
    t.false(n.ready(), value);
    t.is(opened, 0, value);
    t.is(log.at('error').length, 1, value);
    t.true(log.at('error')[0]!.msg.startsWith(`cannot notify the service manager: NOTIFY_SOCKET=${JSON.stringify(value)} is unusable: `), value);
  }
});

test('a manager that went away: ECONNREFUSED is counted, logged once per outage, never thrown; delivery resumes when it is back', async (t) => {
  let rx = await startNotifyReceiver(t, { abstract: true });
  const address = rx.address;
  const log = memoryLogger();
  const n = notifierFor(t, { NOTIFY_SOCKET: address }, { log });
  t.true(n.ready());
  await rx.waitFor((m) => m.READY === '1', 'READY=1');
  await rx.close();

  t.false(n.status('one'));
  t.false(n.status('two'));
  t.false(n.stopping());
  t.like(n.stats, { sent: 1, failed: 3, lastError: 'ECONNREFUSED' });
  const warnings = log.at('warn');
  t.is(warnings.length, 1);
  t.is(warnings[0]!.obj.code, 'ECONNREFUSED');
  t.is(warnings[0]!.obj.message, 'STATUS=one');
  t.regex(warnings[0]!.msg, /not delivered; further failures are counted, not logged/);

  rx = await startNotifyReceiver(t, { address });
  t.true(n.status('back'));
  await rx.waitFor((m) => m.STATUS === 'back', 'STATUS=back');
  t.is(log.at('info').filter((l) => /delivered again/.test(l.msg)).length, 1);
});

test('a socket file that does not exist is ENOENT, counted and logged, not thrown', (t) => {
  const log = memoryLogger();
  const n = notifierFor(t, { NOTIFY_SOCKET: '/tmp/fugue-no-such-dir/notify.sock' }, { log });
  t.is(n.state, 'open', 'opening an unbound datagram socket succeeds; sending finds out');
  t.false(n.ready());
  t.like(n.stats, { failed: 1, lastError: 'ENOENT' });
  t.is(log.at('warn').length, 1);
});

test('unsetEnvironment removes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (and nothing else) after reading them', async (t) => {
  const rx = await startNotifyReceiver(t);
  const env: Record<string, string | undefined> = { NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '5000000', WATCHDOG_PID: String(process.pid), LISTEN_FDS: '1', HOME: '/h' };
  const n = new Notifier({ env, unsetEnvironment: true });
  t.teardown(() => n.close());
  t.deepEqual(env, { LISTEN_FDS: '1', HOME: '/h' });
  t.is(n.watchdogUsec, 5_000_000);
  t.true(n.ready());
  await rx.waitFor((m) => m.READY === '1', 'READY=1');

  const kept: Record<string, string | undefined> = { NOTIFY_SOCKET: rx.address };
  new Notifier({ env: kept }).close();
  t.deepEqual(kept, { NOTIFY_SOCKET: rx.address }, 'the default leaves env alone');
});

test('STATUS sent from any text is one line that fits systemd\'s 4096-byte read', async (t) => {
  const rx = await startNotifyReceiver(t);
  const n = notifierFor(t, { NOTIFY_SOCKET: rx.address });
  n.status(`line one\nline two ${'é'.repeat(5000)}`);
  const d = await rx.waitFor((m) => m.STATUS !== undefined, 'STATUS');
  t.false(d.truncated);
  t.false(d.fields.STATUS!.includes('\n'));
  t.true(d.fields.STATUS!.startsWith('line one line two é'));
});

test('programming errors in arguments throw TypeError/RangeError (they are bugs, not delivery failures)', (t) => {
  const n = notifierFor(t, {});
  t.throws(() => n.extendTimeout(-1), { instanceOf: RangeError });
  t.throws(() => n.extendTimeout(Number.NaN), { instanceOf: RangeError });
  t.throws(() => n.notify([['ready', '1']]), { instanceOf: TypeError });
  t.throws(() => n.notify([['STATUS', 'a\nREADY=1']]), { instanceOf: TypeError });
});

test('close() is idempotent; afterwards nothing is sent', async (t) => {
  const rx = await startNotifyReceiver(t);
  const n = new Notifier({ env: { NOTIFY_SOCKET: rx.address } });
  t.true(n.ready());
  n.close();
  n.close();
  t.is(n.state, 'closed');
  t.false(n.status('after close'));
  t.false(n.startWatchdog());
  await rx.waitFor((m) => m.READY === '1', 'READY=1');
  // The receiver reads in order: a marker sent after close() from a second notifier arrives after anything the first sent.
  const marker = notifierFor(t, { NOTIFY_SOCKET: rx.address });
  marker.status('marker');
  await rx.waitFor((m) => m.STATUS === 'marker', 'the marker');
  t.deepEqual(rx.raw(), ['READY=1', 'STATUS=marker']);
  t.like(n.stats, { sent: 1, failed: 0 });
});

test('a pino logger is a NotifyLogger', async (t) => {
  const sink = new LogSink();
  const n = notifierFor(t, { NOTIFY_SOCKET: 'nope' }, { log: pino({ level: 'debug' }, sink) });
  t.is(n.state, 'unavailable');
  const line = await sink.waitFor((l) => l.msg.startsWith('cannot notify the service manager'), 'the error line');
  t.is(line.notifySocket, 'nope');
});

// ---------------------------------------------------------------------------
// Watchdog. Serial, so the other tests in this file do not share the event loop
// with the measurements (and the blocking test does not stall them).

test.serial('the watchdog pings WATCHDOG=1 at once and then every WATCHDOG_USEC/2, and stops when asked', async (t) => {
  const rx = await startNotifyReceiver(t);
  const log = memoryLogger();
  const n = notifierFor(t, { NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) }, { log });
  t.is(n.watchdogUsec, 200_000);
  t.true(n.startWatchdog());
  t.true(n.startWatchdog(), 'idempotent: still one interval');
  t.like(log.at('info')[0]?.obj ?? {}, { watchdogUsec: 200_000, intervalMs: 100 });
  const first = await rx.waitFor(isPing, 'the first ping', { timeoutMs: 2000 });

  await delay(1000); // a measurement window, not a synchronisation
  n.stopWatchdog();
  const sentPings = n.stats.watchdogPings;
  await rx.waitFor(() => pings(rx).length >= sentPings, `${sentPings} pings received`);
  const received = pings(rx);
  const spanMs = Number(received.at(-1)!.monotonicUsec - first.monotonicUsec) / 1000;
  // 100 ms period: about 10 pings after the first in 1 s. Generous bounds for a busy
  // machine; a second interval (no idempotence) or a wrong period would break them.
  t.true(received.length >= 4 && received.length <= 13, `${received.length} pings in ${spanMs} ms`);
  t.true(spanMs / (received.length - 1) >= 90, `mean gap ${spanMs / (received.length - 1)} ms`);
  t.is(received.every((d) => d.raw === 'WATCHDOG=1' && d.pid === process.pid), true);

  await delay(300); // three periods with the watchdog stopped
  t.is(pings(rx).length, received.length, 'no pings after stopWatchdog()');
});

test.serial('a blocked event loop sends no pings, so the manager\'s watchdog would fire', async (t) => {
  const rx = await startNotifyReceiver(t);
  const n = notifierFor(t, { NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '100000' });
  t.true(n.startWatchdog());
  await rx.waitFor(() => pings(rx).length >= 3, 'three pings');

  n.status('blocking');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600); // the loop is stuck for 600 ms
  n.status('unblocked');
  const after = await rx.waitFor((m) => m.STATUS === 'unblocked', 'STATUS=unblocked');
  const resumed = await rx.waitFor(isPing, 'a ping after the block', { after, timeoutMs: 2000 });

  const all = rx.datagrams;
  const blockStart = all.findIndex((d) => d.fields.STATUS === 'blocking');
  const between = all.slice(blockStart + 1, all.indexOf(after));
  t.deepEqual(between.map((d) => d.raw), [], 'nothing between the two STATUS lines: the pings come from the event loop');
  const lastBefore = all.slice(0, blockStart).filter((d) => isPing(d.fields)).at(-1) as NotifyDatagram;
  const gapMs = Number(resumed.monotonicUsec - lastBefore.monotonicUsec) / 1000;
  t.true(gapMs >= 550, `gap between pings ${gapMs} ms; WATCHDOG_USEC is 100 ms, so systemd would have fired`);
});

test.serial('WATCHDOG_PID of another process means no pings (the variables were inherited, not meant for us)', async (t) => {
  const rx = await startNotifyReceiver(t);
  const log = memoryLogger();
  const n = notifierFor(t, { NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid + 1) }, { log });
  t.is(n.watchdogUsec, undefined);
  t.false(n.startWatchdog());
  t.is(log.at('warn').length, 0);
  t.regex(String(log.at('debug').find((l) => /not ours/.test(l.msg))?.obj.reason), /WATCHDOG_PID \d+ is another process/);
  n.status('marker');
  await rx.waitFor((m) => m.STATUS === 'marker', 'the marker');
  await delay(250); // 5 would-be periods
  t.deepEqual(rx.raw(), ['STATUS=marker']);
});

test.serial('an invalid WATCHDOG_USEC is logged as a warning and disables pings; notifications still work', async (t) => {
  const rx = await startNotifyReceiver(t);
  for (const value of ['0', 'soon', '-1', '18446744073709551615']) {
    const log = memoryLogger();
    const n = notifierFor(t, { NOTIFY_SOCKET: rx.address, WATCHDOG_USEC: value }, { log });
    t.false(n.startWatchdog(), value);
    t.is(log.at('warn').length, 1, value);
    t.regex(String(log.at('warn')[0]!.obj.reason), new RegExp(`WATCHDOG_USEC.*${JSON.stringify(value)}`), value);
    t.true(n.status(value));
  }
  await rx.waitFor((m) => m.STATUS === '18446744073709551615', 'the last status');
  t.is(pings(rx).length, 0);
});

// ---------------------------------------------------------------------------
// Interop with systemd's own sender.


const SYSTEMD_NOTIFY = findExecutable('systemd-notify');
const SETPRIV = findExecutable('setpriv');
const NOTIFY_MISSING = SYSTEMD_NOTIFY === undefined ? 'systemd-notify is not installed; apt-get install systemd' : undefined;

testNeeding({ missing: NOTIFY_MISSING, providedByCi: true }, 'our READY/STATUS datagram is byte-for-byte what systemd-notify sends, and comes from the main pid', async (t) => {
  const rx = await startNotifyReceiver(t, { abstract: true });
  const r = spawnSync(SYSTEMD_NOTIFY!, ['--ready', '--status=serving; 0 clients'], { env: { NOTIFY_SOCKET: rx.address }, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const theirs = await rx.waitFor((m) => m.READY === '1', 'systemd-notify READY=1');
  const n = notifierFor(t, { NOTIFY_SOCKET: rx.address });
  n.ready('serving; 0 clients');
  const ours = await rx.waitFor((m) => m.READY === '1', 'our READY=1', { after: theirs });
  t.is(ours.raw, theirs.raw);
  t.is(ours.pid, process.pid);
});

// systemd-notify claims its parent's pid, but the kernel allows that only with
// CAP_SYS_ADMIN. Run as the unprivileged user a service runs as, its datagram
// carries its own pid, which systemd drops under NotifyAccess=main (the
// Type=notify default). That is why it is not the mechanism.
const UNPRIVILEGED_NOTIFY = SYSTEMD_NOTIFY === undefined ? undefined : process.getuid?.() !== 0 ? [SYSTEMD_NOTIFY] : SETPRIV === undefined ? undefined : [SETPRIV, '--reuid=65534', '--regid=65534', '--clear-groups', SYSTEMD_NOTIFY];
testNeeding(
  { missing: NOTIFY_MISSING ?? (UNPRIVILEGED_NOTIFY === undefined ? 'running as root without setpriv (util-linux) to drop privileges' : undefined), providedByCi: true },
  'systemd-notify run as an unprivileged user sends from its own pid, not the main pid',
  async (t) => {
    // Abstract: no file permissions, so an unprivileged systemd-notify can reach it.
    const rx = await startNotifyReceiver(t, { abstract: true });
    const [cmd, ...args] = UNPRIVILEGED_NOTIFY as [string, ...string[]];
    const u = spawnSync(cmd, [...args, '--ready', '--status=unprivileged'], { env: { NOTIFY_SOCKET: rx.address }, encoding: 'utf8' });
    t.is(u.status, 0, u.stderr);
    const unprivileged = await rx.waitFor((m) => m.STATUS === 'unprivileged', 'the unprivileged systemd-notify READY=1');
    t.not(unprivileged.pid, process.pid);
  },
);
