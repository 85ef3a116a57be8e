// sd_listen_fds(3) semantics of the LISTEN_* variables (the real-CLI tests are in test/cli/supervisor.test.ts).
import test from 'ava';
import { listenFds } from '../../src/supervisor/listen-fds.js';

test('not activated: no LISTEN_FDS, or LISTEN_PID naming another process', (t) => {
  t.deepEqual(listenFds({}, 42), { kind: 'none' });
  t.deepEqual(listenFds({ LISTEN_FDS: '1', LISTEN_PID: '41' }, 42), { kind: 'none' });
  t.deepEqual(listenFds({ LISTEN_FDS: '1' }, 42), { kind: 'none' }, 'no LISTEN_PID: not ours');
  t.deepEqual(listenFds({ LISTEN_FDS: '1', LISTEN_PID: '042' }, 42), { kind: 'none' }, 'not a canonical pid');
});

test('one descriptor: fd 3, with its name when given', (t) => {
  t.deepEqual(listenFds({ LISTEN_FDS: '1', LISTEN_PID: '42' }, 42), { kind: 'fd', fd: 3, name: undefined, count: 1 });
  t.deepEqual(listenFds({ LISTEN_FDS: '1', LISTEN_PID: '42', LISTEN_FDNAMES: 'fugue' }, 42), { kind: 'fd', fd: 3, name: 'fugue', count: 1 });
});

test('several descriptors: the one named "fugue", else a clear error', (t) => {
  t.deepEqual(listenFds({ LISTEN_FDS: '3', LISTEN_PID: '42', LISTEN_FDNAMES: 'metrics:fugue:other' }, 42), { kind: 'fd', fd: 4, name: 'fugue', count: 3 });
  const r = listenFds({ LISTEN_FDS: '2', LISTEN_PID: '42', LISTEN_FDNAMES: 'a:b' }, 42);
  t.is(r.kind, 'error');
  if (r.kind === 'error') t.regex(r.reason, /none is named "fugue".*FileDescriptorName=fugue/);
});

test('malformed counts are errors that say what was wrong', (t) => {
  for (const [fds, re] of [['0', /passed no socket/], ['x', /not a count/], ['-1', /not a count/]] as const) {
    const r = listenFds({ LISTEN_FDS: fds, LISTEN_PID: '42' }, 42);
    t.is(r.kind, 'error', fds);
    if (r.kind === 'error') t.regex(r.reason, re);
  }
});

test('the variables are removed once read, whatever the outcome (nothing the server spawns inherits them)', (t) => {
  for (const env of [{ LISTEN_FDS: '1', LISTEN_PID: '42', LISTEN_FDNAMES: 'fugue' }, { LISTEN_FDS: '1', LISTEN_PID: '7' }, { LISTEN_FDS: 'x', LISTEN_PID: '42' }]) {
    const e: Record<string, string | undefined> = { ...env, OTHER: 'kept' };
    listenFds(e, 42);
    t.deepEqual(e, { OTHER: 'kept' });
  }
  const kept: Record<string, string | undefined> = { LISTEN_FDS: '1', LISTEN_PID: '42' };
  listenFds(kept, 42, false);
  t.deepEqual(kept, { LISTEN_FDS: '1', LISTEN_PID: '42' }, 'unless asked not to');
});
