// Every documented snippet works when pasted (issue 18 point 4). Each block of
// commands in docs/operations.md and docs/deployment.md is marked: run by a
// test (`<!-- test: NAME -->`, run below or, for prometheus.yml, by
// test/observability/prometheus.test.ts), or not run and why, or shown output.
// The ones a developer's machine can run are run here, as written, by sh.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './helpers/child-env.js';
import { docBlocks, type DocBlock } from './helpers/doc-snippets.js';
import { findExecutable } from './helpers/executables.js';
import { testNeeding } from './helpers/needs.js';
import { alive } from './helpers/proc.js';
import { CTL_BIN, SERVER_BIN } from './helpers/spawn-server.js';
import { tmpDir } from './helpers/tmp.js';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = ['operations.md', 'deployment.md'];
/** Blocks another test runs, by name. */
const RUN_ELSEWHERE: Record<string, string> = { 'prometheus.yml': 'test/observability/prometheus.test.ts' };
/** Blocks this file runs. */
const RUN_HERE = ['script', 'npm-start'];

const blocks = (doc: string): DocBlock[] => docBlocks(join(CHECKOUT, 'docs', doc));

function snippet(name: string): string {
  const found = DOCS.flatMap(blocks).find((b) => b.test === name);
  if (found === undefined) throw new Error(`no block marked <!-- test: ${name} --> in docs/${DOCS.join(', docs/')}`);
  return found.text;
}

test('every block in docs/operations.md and docs/deployment.md is marked: run by a test, not run (and why), or output', (t) => {
  const names: string[] = [];
  for (const doc of DOCS) {
    for (const b of blocks(doc)) {
      t.truthy(b.mark, `docs/${doc}, line ${b.line}: an unmarked block (mark it <!-- test: NAME -->, <!-- not run: WHY -->, <!-- output: WHAT --> or # [not run here: WHY])`);
      if (b.mark?.startsWith('not run')) t.regex(b.mark, /^not run(?: here)?: \S.{8,}/, `docs/${doc}, line ${b.line}: say why it is not run`);
      if (b.test !== undefined) names.push(b.test);
    }
  }
  t.deepEqual(names.sort(), [...RUN_HERE, ...Object.keys(RUN_ELSEWHERE)].sort(), 'every block marked to run is run by a test, and nothing else');
});

interface ShRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `script` with sh, in its own process group (killed at teardown with everything it started). */
function sh(t: ExecutionContext, script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<ShRun> {
  const child = spawn('sh', ['-c', script], { env: childEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  t.teardown(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** A directory with `fugue-server` and `fuguectl` as an installed package has them: the built CLIs, on this process's node. */
function binDir(t: ExecutionContext): string {
  const dir = tmpDir(t);
  for (const [name, bin] of [['fugue-server', SERVER_BIN], ['fuguectl', CTL_BIN]] as const) {
    writeFileSync(join(dir, name), `#!/bin/sh\nexec '${process.execPath}' '${bin}' "$@"\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

testNeeding({ missing: findExecutable('jq') === undefined ? 'needs jq (apt-get install jq)' : undefined, providedByCi: true }, 'operations.md\'s script (start from a config file, wait, status, stop) runs as written with /etc/fugue/server.yaml replaced by a test config', async (t) => {
  const dir = tmpDir(t);
  const config = join(dir, 'server.yaml');
  writeFileSync(config, 'socket:\n  path: run/fugue.sock   # relative to this file\nhttp:\n  port: 0\nlog:\n  level: warn\n');
  const sock = join(dir, 'run', 'fugue.sock');
  const text = snippet('script');
  t.true(text.includes('/etc/fugue/server.yaml'));
  const r = await sh(t, text.replaceAll('/etc/fugue/server.yaml', config), { PATH: `${binDir(t)}:${process.env.PATH}`, HOME: dir }, dir);
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, new RegExp(`^ready: ${sock} answered after \\d+ ms$`, 'm'));
  t.regex(r.stdout, /^1$/m, 'jq .clients: fuguectl itself');
  const pid = Number(new RegExp(`^stopped: the server at ${sock} \\(pid (\\d+)\\) exited after \\d+ ms$`, 'm').exec(r.stdout)?.[1]);
  t.true(pid > 1, r.stdout);
  t.false(alive(pid), 'the server has exited');
  t.false(existsSync(sock), 'its socket is gone');
});

test('operations.md\'s npm start snippet runs as written in a checkout: npm passes SIGTERM on, the server drains, and wait returns npm\'s 0', async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, FUGUE_SOCKET_PATH: sock, FUGUE_HTTP_PORT: '0', npm_config_update_notifier: 'false' };
  const r = await sh(t, snippet('npm-start'), env, CHECKOUT);
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, new RegExp(`^ready: ${sock} answered after \\d+ ms$`, 'm'));
  const logs = r.stdout.split('\n').flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });
  t.like(logs.find((l) => l.msg === 'received shutdown signal, draining'), { signal: 'SIGTERM' });
  t.like(logs.find((l) => l.msg === 'drain finished'), { forced: 0 });
  const pid = logs.find((l) => l.msg === 'fugue-server stopped')?.pid as number;
  t.true(pid > 1);
  t.false(alive(pid));
  t.false(existsSync(sock));
  t.false(existsSync(`${sock}.pid`));
  t.is(readFileSync(join(CHECKOUT, 'package.json'), 'utf8').includes('"start": "exec node dist/bin/fugue-server.js"'), true, 'the start script execs the server');
});
