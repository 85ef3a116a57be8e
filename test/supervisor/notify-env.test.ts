// The pure rules for NOTIFY_SOCKET, WATCHDOG_USEC/WATCHDOG_PID and message text
// (src/supervisor/notify-env.ts), as libsystemd's sd-daemon.c applies them.
import test from 'ava';
import { formatMessage, parseNotifySocket, parseWatchdog, statusText, STATUS_MAX_CHARS, watchdogIntervalMs } from '../../src/supervisor/notify-env.js';
import { encodeSockaddrUn } from '../../src/supervisor/unix-datagram.js';

test('NOTIFY_SOCKET unset means "no manager", not an error', (t) => {
  t.is(parseNotifySocket(undefined), undefined);
});

test('an absolute path and an @abstract name are accepted', (t) => {
  t.deepEqual(parseNotifySocket('/run/systemd/notify'), { ok: true, address: { kind: 'path', path: '/run/systemd/notify', text: '/run/systemd/notify' } });
  t.deepEqual(parseNotifySocket('@/org/freedesktop/systemd1/notify/42'), {
    ok: true,
    address: { kind: 'abstract', name: '/org/freedesktop/systemd1/notify/42', text: '@/org/freedesktop/systemd1/notify/42' },
  });
});

test('relative paths, empty values, vsock addresses and over-long names are refused with a reason', (t) => {
  for (const bad of ['', 'notify.sock', '@', 'vsock:2:1234', `/${'x'.repeat(107)}`, `@${'x'.repeat(108)}`]) {
    const r = parseNotifySocket(bad);
    t.false(r?.ok, bad);
    if (r && !r.ok) t.true(r.reason.length > 10, bad);
  }
  // The longest that fit: 107 path bytes + NUL, or NUL + 107 name bytes.
  t.true(parseNotifySocket(`/${'x'.repeat(106)}`)?.ok);
  t.true(parseNotifySocket(`@${'x'.repeat(107)}`)?.ok);
});

test('the sockaddr of an abstract name is NUL + name with no padding; a path keeps its NUL', (t) => {
  const abs = encodeSockaddrUn({ kind: 'abstract', name: 'ab', text: '@ab' });
  t.is(abs.length, 2 + 1 + 2);
  t.deepEqual([...abs.subarray(2)], [0, 0x61, 0x62]);
  const path = encodeSockaddrUn({ kind: 'path', path: '/a', text: '/a' });
  t.deepEqual([...path.subarray(2)], [0x2f, 0x61, 0]);
  t.is(path.readUInt16LE(0), 1); // AF_UNIX (x86-64 and arm64 are little-endian)
});

test('the watchdog is ours only with a valid WATCHDOG_USEC and a WATCHDOG_PID that is unset or ours', (t) => {
  t.deepEqual(parseWatchdog(undefined, undefined, 10), { enabled: false });
  t.deepEqual(parseWatchdog('30000000', undefined, 10), { enabled: true, usec: 30_000_000 });
  t.deepEqual(parseWatchdog('30000000', '10', 10), { enabled: true, usec: 30_000_000 });
  const other = parseWatchdog('30000000', '11', 10);
  t.false(other.enabled);
  t.false(!other.enabled && other.invalid === true, 'another pid is not an error, just not ours');
});

test('invalid watchdog values are reported as invalid, naming the variable and the value', (t) => {
  for (const [usec, pid] of [['0', undefined], ['-5', undefined], ['1.5', undefined], ['abc', undefined], ['', undefined], ['18446744073709551615', undefined], ['99999999999999999999', undefined], ['1000', '0'], ['1000', 'x'], ['1000', '-3']] as const) {
    const r = parseWatchdog(usec, pid, 10);
    t.false(r.enabled, `${usec} ${pid}`);
    if (!r.enabled) {
      t.true(r.invalid, `${usec} ${pid}`);
      t.regex(r.reason ?? '', pid === undefined ? /WATCHDOG_USEC/ : /WATCHDOG_PID/);
    }
  }
});

test('pings come at half the watchdog timeout, at least 1 ms, and never overflow setInterval', (t) => {
  t.is(watchdogIntervalMs(30_000_000), 15_000);
  t.is(watchdogIntervalMs(1), 1);
  t.is(watchdogIntervalMs(18446744073709551614), 0x7fff_ffff);
});

test('messages are KEY=value lines with no trailing newline, like libsystemd', (t) => {
  t.is(formatMessage([['READY', '1'], ['STATUS', 'serving']]), 'READY=1\nSTATUS=serving');
});

test('STATUS text is one bounded line', (t) => {
  t.is(statusText('draining:\n2 clients\r\nleft'), 'draining: 2 clients left');
  const long = statusText('x'.repeat(10_000));
  t.is(long.length, STATUS_MAX_CHARS);
  t.true(long.endsWith('…'));
});
