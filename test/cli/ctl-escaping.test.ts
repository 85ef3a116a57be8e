// What fuguectl prints is safe to read (fugue-server issue 18, point 3): every
// text a client or the server chose reaches the terminal with C0/C1 controls,
// Unicode bidirectional and other format controls, line separators and lone
// surrogates shown as visible escapes; --json stays exact JSON. Hostile names
// go through the real server (in this process) and the real fuguectl binary.
import test from 'ava';
import { FugueClient } from '../../src/client/client.js';
import { startApp } from '../helpers/app.js';
import { ctl } from '../helpers/ctl.js';
import { afterHandshake, startFakeServer } from '../helpers/fake-server.js';

/** One hostile character of each class the issue names, with the escape fuguectl must show. */
const HOSTILE: Array<[cls: string, ch: string, shown: string]> = [
  ['C0: ESC (starts a terminal escape sequence)', '\u001b', '\\u{1b}'],
  ['C0: BEL', '\u0007', '\\u{7}'],
  ['C0: newline (fakes a second line)', '\n', '\\n'],
  ['C0: carriage return (overwrites the line)', '\r', '\\r'],
  ['DEL', '\u007f', '\\u{7f}'],
  ['C1: CSI', '\u009b', '\\u{9b}'],
  ['C1: NEL', '\u0085', '\\u{85}'],
  ['ALM, U+061C', '\u061c', '\\u{61c}'],
  ['zero width space, U+200B', '\u200b', '\\u{200b}'],
  ['LRM, U+200E', '\u200e', '\\u{200e}'],
  ['RLM, U+200F', '\u200f', '\\u{200f}'],
  ['line separator, U+2028', '\u2028', '\\u{2028}'],
  ['paragraph separator, U+2029', '\u2029', '\\u{2029}'],
  ['LRE, U+202A', '\u202a', '\\u{202a}'],
  ['RLE, U+202B', '\u202b', '\\u{202b}'],
  ['PDF, U+202C', '\u202c', '\\u{202c}'],
  ['LRO, U+202D', '\u202d', '\\u{202d}'],
  ['RLO, U+202E', '\u202e', '\\u{202e}'],
  ['word joiner, U+2060', '\u2060', '\\u{2060}'],
  ['U+2065 (unassigned, among the invisible operators)', '\u2065', '\\u{2065}'],
  ['LRI, U+2066', '\u2066', '\\u{2066}'],
  ['RLI, U+2067', '\u2067', '\\u{2067}'],
  ['FSI, U+2068', '\u2068', '\\u{2068}'],
  ['PDI, U+2069', '\u2069', '\\u{2069}'],
  ['BOM / ZWNBSP, U+FEFF', '\ufeff', '\\u{feff}'],
  ['another format character: soft hyphen, U+00AD', '\u00ad', '\\u{ad}'],
  ['another format character: a tag character, U+E0041 (astral)', '\u{e0041}', '\\u{e0041}'],
  ['lone high surrogate', '\ud800', '\\u{d800}'],
  ['lone low surrogate', '\udc00', '\\u{dc00}'],
  ['backslash (so that an escape cannot be forged)', '\\', '\\\\'],
  ['double quote (the name is shown between quotes)', '"', '\\"'],
];

/** A character fuguectl must never print raw (newline aside, which ends its own lines). */
// eslint-disable-next-line no-control-regex
const RAW = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u2060-\u206f]|\p{Cs}/u;

function rawIn(text: string): string | undefined {
  const m = RAW.exec(text.replace(/\n/g, ''));
  return m === null ? undefined : `U+${(m[0].codePointAt(0) as number).toString(16)} at ${m.index}`;
}

test('clients: every hostile name is shown escaped, one line each, and --json gives the exact names back', async (t) => {
  const { socketPath } = await startApp(t);
  const names = HOSTILE.map(([, ch], i) => `n${i}<${ch}>`);
  const held: FugueClient[] = [];
  t.teardown(() => { for (const c of held) c.destroy(); });
  for (const name of names) held.push(await FugueClient.connect(socketPath, { clientName: name }));
  const text = await ctl(['--socket', socketPath, 'clients']);
  t.is(text.code, 0, text.stderr);
  t.is(rawIn(text.stdout), undefined, 'no raw control, format or separator character on stdout');
  const lines = text.stdout.trimEnd().split('\n');
  t.is(lines.length, names.length + 1, 'one line per client, fuguectl included: no name broke a line');
  HOSTILE.forEach(([cls, , shown], i) => {
    t.true(lines[i]!.includes(` "n${i}<${shown}>" since `), `${cls}: ${lines[i]}`);
  });
  const json = await ctl(['--socket', socketPath, 'clients', '--json']);
  t.is(json.code, 0, json.stderr);
  t.is(json.stdout.split('\n').length, 2, 'one line of JSON');
  const list = JSON.parse(json.stdout) as Array<{ name: string }>;
  t.deepEqual(list.map((c) => c.name).slice(0, names.length), names, 'the exact names, lone surrogates included');
});

test('status, health, echo and error replies: server-chosen text is escaped in human output, exact in --json', async (t) => {
  const evil = `9.9\u202e${'\u001b[2J'}\u2066x\u2069`;
  const fake = await startFakeServer(t, afterHandshake((msg, conn) => {
    if (msg.type === 'status') conn.send({ type: 'status', id: msg.id, server_version: evil, uptime_ms: 1, clients: 0, draining: false });
    else if (msg.type === 'echo') conn.send({ type: 'echo', id: msg.id, data: `back\u202e\u0085` });
    else conn.send({ type: 'error', id: msg.id, code: `internal\u2067`, message: `it\u202ebroke\r\nfuguectl: all good` });
  }));
  const shownVersion = '9.9\\u{202e}\\u{1b}[2J\\u{2066}x\\u{2069}';
  const status = await ctl(['--socket', fake.path, 'status']);
  t.is(status.code, 0, status.stderr);
  t.true(status.stdout.includes(`  version   ${shownVersion}\n`), status.stdout);
  t.is(rawIn(status.stdout), undefined);
  const json = await ctl(['--socket', fake.path, 'status', '--json']);
  t.is((JSON.parse(json.stdout) as { server_version: string }).server_version, evil, '--json is exact');
  const health = await ctl(['--socket', fake.path, 'health']);
  t.is(health.code, 0, health.stderr);
  t.true(health.stdout.includes(`(server ${shownVersion}, 0 clients)`), health.stdout);
  t.is(rawIn(health.stdout), undefined);
  const echo = await ctl(['--socket', fake.path, 'echo', 'x']);
  t.is(echo.stdout, 'back\\u{202e}\\u{85}\n');
  const error = await ctl(['--socket', fake.path, 'ping']);
  t.is(error.code, 76);
  t.is(error.stderr, `fuguectl: the server at ${fake.path} replied internal\\u{2067}: it\\u{202e}broke\\r\\nfuguectl: all good\n`, 'one line: the fake second line is escaped');
});
