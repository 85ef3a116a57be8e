// The FUGUE_* variables fugue knows (issue 18 point 4): what the test suite
// and the benchmark read is reserved (FUGUE_TEST_*) or known, so a developer
// who sets one never stops a server started from the same shell.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CTL_ENV, knownEnvNames, RESERVED_ENV_PREFIX } from '../../src/config/env-names.js';
import { keySpecs } from '../../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every FUGUE_* variable the tests, the benchmark and the npm scripts read is reserved (FUGUE_TEST_*) or known to fugue', (t) => {
  const known = new Set(knownEnvNames(keySpecs('/x')));
  // Reads: process.env.NAME, process.env['NAME'], envInt('NAME', ...), positiveInt('NAME', ...); and NAME=... in package.json's scripts.
  const reads = /process\.env(?:\.|\[')(FUGUE_[A-Z0-9_]+)|(?:envInt|positiveInt)\('(FUGUE_[A-Z0-9_]+)'/g;
  const found = new Map<string, string>();
  for (const file of [...sources(join(ROOT, 'test')), ...sources(join(ROOT, 'bench'))]) {
    for (const m of readFileSync(file, 'utf8').matchAll(reads)) found.set((m[1] ?? m[2])!, file);
  }
  const scripts = Object.values((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts).join('\n');
  for (const m of scripts.matchAll(/\b(FUGUE_[A-Z0-9_]+)=/g)) found.set(m[1]!, 'package.json');
  t.true(found.size >= 5, 'the scan finds the suite\'s variables');
  for (const [name, file] of found) t.true(name.startsWith(RESERVED_ENV_PREFIX) || known.has(name), `${name} (read in ${file})`);
});

test('the variables fuguectl reads are known to the server\'s check', (t) => {
  const known = knownEnvNames(keySpecs('/x'));
  for (const name of CTL_ENV) t.true(known.includes(name), name);
  t.false(known.some((n) => n.startsWith(RESERVED_ENV_PREFIX)));
});
