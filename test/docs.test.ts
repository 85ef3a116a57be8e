// Docs stay complete: every error code, exit code, config key and metric is documented.
import test from 'ava';
import { RELOADABLE_KEYS } from '../src/app.js';
import { readFileSync } from 'node:fs';
import { CTL_EXIT, CTL_EXIT_MEANING } from '../src/cli/ctl.js';
import { keySpecs } from '../src/config/schema.js';
import { ERROR_CODES, EXIT } from '../src/errors.js';
import { ServerMetrics } from '../src/observability/metrics.js';
import { ERROR_CODES as PROTOCOL_ERRORS } from '../src/protocol/index.js';

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

test('docs/errors.md documents every FugueError code with its exit code, and nothing else', (t) => {
  const text = doc('errors.md');
  const documented = [...text.matchAll(/^\| `(FUGUE_ERR_[A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1], Number(m[2])]);
  t.deepEqual(Object.fromEntries(documented), { ...ERROR_CODES });
});

test('docs/errors.md documents every process exit code', (t) => {
  const text = doc('errors.md');
  for (const code of [...Object.values(EXIT), 130, 143]) t.regex(text, new RegExp(`^\\| ${code} \\|`, 'm'), `exit ${code}`);
});

test('docs/protocol.md documents every protocol error code', (t) => {
  const text = doc('protocol.md');
  for (const code of PROTOCOL_ERRORS) t.regex(text, new RegExp(`^\\| \`${code}\` \\|`, 'm'), code);
});

test('docs/configuration.md documents every config key with its env var and flag', (t) => {
  const text = doc('configuration.md');
  for (const [key, spec] of Object.entries(keySpecs('/x'))) {
    const row = text.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
    t.truthy(row, key);
    t.true(row!.includes(`\`${spec.env}\``) && row!.includes(`\`--${spec.flag}\``), key);
  }
});

test('docs/observability.md documents every fugue_ metric family', async (t) => {
  const text = doc('observability.md');
  const logStats = () => ({ linesWritten: 0, bytesWritten: 0, linesDropped: 0, bytesDropped: 0, bufferedBytes: 0 });
  const m = new ServerMetrics({ version: '0', maxClients: 1, shutdownTimeoutMs: 1, defaultMetrics: false, logStats });
  const names = [...(await m.render(false)).body.matchAll(/^# TYPE (fugue_\w+) /gm)].map((x) => x[1]!);
  t.true(names.length > 10);
  for (const name of names) t.true(text.includes(`\`${name}\``), name);
});

test('docs/configuration.md names every key a reload applies live, and only those', (t) => {
  const section = doc('configuration.md').split('## Reloading (SIGHUP)')[1]!.split('\n## ')[0]!;
  const live = section.split('| applied live |')[1]!.split('\n\n')[0]!;
  const named = new Set([...live.matchAll(/`([a-z]+\.[A-Za-z]+)`/g)].map((m) => m[1]!));
  t.deepEqual([...named].sort(), [...RELOADABLE_KEYS].sort());
});

test('docs/operations.md documents every fuguectl exit code with its meaning, and nothing else', (t) => {
  const text = doc('operations.md');
  const start = text.indexOf('### Exit codes of fuguectl');
  t.true(start !== -1, 'section "Exit codes of fuguectl"');
  const section = text.slice(start, text.indexOf('\n## ', start));
  const rows = [...section.matchAll(/^\| (\d+) \| ([^|]+) \|/gm)].map((m) => [Number(m[1]), m[2]!.trim()]);
  t.deepEqual(Object.fromEntries(rows), Object.fromEntries(Object.values(CTL_EXIT).map((code) => [code, CTL_EXIT_MEANING[code]])));
  // fuguectl exits with a client error's own exit code: each must be one of its documented codes.
  const exits = new Set<number>(Object.values(CTL_EXIT));
  for (const [code, exit] of Object.entries(ERROR_CODES)) if (code.startsWith('FUGUE_ERR_CLIENT_')) t.true(exits.has(exit), `${code} exits ${exit}`);
});
