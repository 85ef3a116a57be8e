// The benchmark's log consumer (issue 12, point 1): bench/logreader.c reads a
// real process's stdout and stderr through FIFOs and counts lines and bytes;
// the harness samples its counts while the writer runs and gets the final
// counts and the tail once the writer has exited.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { ensureHelpers } from '../../bench/build.js';
import { LogReader, countsBetween, total } from '../../bench/log-reader.js';
import { killAll } from '../../bench/processes.js';
import { waitFor } from '../helpers/wait-for.js';

test.before(() => ensureHelpers()); // compiles bench/build/logreader (needs cc)
test.after.always(() => killAll());

/** A writer that opens the FIFOs the way servers.ts makes fugue open them. */
function writer(r: LogReader, script: string) {
  const child = spawn('sh', ['-c', `out=$1 err=$2; shift 2; exec "$@" >"$out" 2>"$err"`, 'w', r.stdoutPath, r.stderrPath, 'sh', '-c', script], { stdio: 'ignore' });
  return new Promise<number | null>((resolve) => child.once('exit', resolve));
}

test('counts the lines and bytes of both streams, while the writer runs and after it exits', async (t) => {
  const dir = mkdtempSync('/tmp/fg-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await LogReader.start(dir);
  const before = await r.counts();
  t.deepEqual(before, { stdout: { lines: 0, bytes: 0 }, stderr: { lines: 0, bytes: 0 } }, 'nothing read, and no false end of file, before the writer opens');
  const exited = writer(r, 'printf "one\\ntwo\\n"; printf "oops\\n" >&2; sleep 0.3; i=0; while [ $i -lt 1000 ]; do echo "{\\"msg\\":\\"client connected\\",\\"clientId\\":$i}"; i=$((i+1)); done');
  const mid = await waitFor(async () => {
    const c = await r.counts();
    return c.stdout.lines === 2 && c.stderr.lines === 1 && c;
  }, { what: 'the first three lines', timeoutMs: 2000 });
  t.deepEqual(mid.stdout, { lines: 2, bytes: 8 });
  t.deepEqual(mid.stderr, { lines: 1, bytes: 5 });
  t.is(await exited, 0);
  const end = await r.ended;
  const body = Array.from({ length: 1000 }, (_, i) => `{"msg":"client connected","clientId":${i}}\n`).join('');
  t.deepEqual(end.stdout, { lines: 1002, bytes: 8 + body.length });
  t.deepEqual(countsBetween(mid, end), { stdout: { lines: 1000, bytes: body.length }, stderr: { lines: 0, bytes: 0 } });
  t.is(total(end).lines, 1003);
  t.deepEqual(await r.counts(), end, 'the final counts, once it is gone');
  t.true((await r.tail()).endsWith('"clientId":999}\n'));
});

test('keeps up with a fast writer: every byte of 20 MB arrives', async (t) => {
  const dir = mkdtempSync('/tmp/fg-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await LogReader.start(dir);
  // 200k lines of 100 bytes, written as fast as head can.
  t.is(await writer(r, 'yes "$(printf "%099d" 0)" | head -n 200000'), 0);
  t.deepEqual((await r.ended).stdout, { lines: 200_000, bytes: 20_000_000 });
});
