// Imports point one way (docs/architecture.md). Checked on the compiled output's sources.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  // Type-only imports vanish at build time: they do not count.
  return [...text.matchAll(/^(?:import|export)(?! type )[^'"]*from\s+'([^']+)'/gm)].map((m) => m[1]!);
}

const all = files(SRC).map((f) => ({ file: relative(SRC, f), imports: importsOf(f) }));
const inDir = (dir: string) => all.filter((f) => f.file.startsWith(`${dir}/`));
const resolveLocal = (from: string, spec: string) => relative(SRC, join(SRC, from, '..', spec));

test('src/protocol is pure: no node:net, fs, timers, http or child_process', (t) => {
  for (const { file, imports } of inDir('protocol')) {
    for (const spec of imports) t.false(/^node:(net|fs|timers|http|child_process|dgram|tls)/.test(spec), `${file} imports ${spec}`);
    t.false(imports.some((s) => s.startsWith('.') && !resolveLocal(file, s).startsWith('protocol/') && resolveLocal(file, s) !== 'errors.js'), `${file} reaches outside protocol/`);
  }
});

test('errors.ts and host.ts import nothing local', (t) => {
  for (const leaf of ['errors.ts', 'host.ts']) t.deepEqual(all.find((f) => f.file === leaf)!.imports.filter((s) => s.startsWith('.')), [], leaf);
});

test('src/server never imports observability, http, config, app or cli', (t) => {
  for (const { file, imports } of inDir('server')) {
    for (const spec of imports.filter((s) => s.startsWith('.'))) {
      const target = resolveLocal(file, spec);
      t.false(/^(observability|http|config|cli|client)\/|^app\.js$/.test(target), `${file} imports ${target}`);
    }
  }
});

test('only src/server listens with node:net (the client library only connects; the log sink only wraps stdout)', (t) => {
  const users = all.filter((f) => f.imports.includes('node:net')).map((f) => (f.file.startsWith('observability/') ? f.file : f.file.split('/')[0]));
  t.deepEqual([...new Set(users)].sort(), ['client', 'observability/log-sink.ts', 'server']);
  for (const f of inDir('client')) t.false(readFileSync(join(SRC, f.file), 'utf8').includes('createServer'), f.file);
  t.false(/createServer|createConnection|\.connect\(|\.listen\(/.test(readFileSync(join(SRC, 'observability/log-sink.ts'), 'utf8')), 'the log sink opens no socket');
});

test('only src/config reads config files and FUGUE_* variables', (t) => {
  for (const { file } of all) {
    if (file.startsWith('config/') || file.startsWith('cli/')) continue;
    t.false(/process\.env\.FUGUE_/.test(readFileSync(join(SRC, file), 'utf8')), file);
  }
});

test('features use only the extension API (server/extension.ts) and the protocol, nothing else of the server', (t) => {
  t.true(inDir('features').length > 0);
  for (const { file } of inDir('features')) {
    // Type-only imports too: a feature's types come from the extension API as well.
    const every = [...readFileSync(join(SRC, file), 'utf8').matchAll(/^(?:import|export)[^'"]*from\s+'([^']+)'/gm)].map((m) => m[1]!);
    for (const spec of every.filter((s) => s.startsWith('.'))) {
      const target = resolveLocal(file, spec);
      t.true(target === 'server/extension.js' || target.startsWith('protocol/'), `${file} imports ${spec}`);
    }
  }
  for (const { file, imports } of all) {
    if (file === 'app.ts' || file === 'index.ts' || file.startsWith('features/')) continue;
    t.false(imports.some((s) => s.startsWith('.') && resolveLocal(file, s).startsWith('features/')), `${file} imports a feature`);
  }
});

test('the http sidecar and observability never import the server implementation: only its events, channels and view', (t) => {
  const seam = ['server/events.js', 'server/channels.js', 'server/view.js'];
  for (const { file, imports } of [...inDir('http'), ...inDir('observability')]) {
    for (const spec of imports.filter((s) => s.startsWith('.'))) {
      const target = resolveLocal(file, spec);
      t.false(target.startsWith('server/') && !seam.includes(target), `${file} imports ${target}`);
    }
  }
});

test('src/supervisor imports only node: built-ins and itself; koffi only lazily, and only there', (t) => {
  for (const { file, imports } of inDir('supervisor')) {
    for (const spec of imports) {
      if (spec.startsWith('node:')) continue;
      t.true(spec.startsWith('.') && resolveLocal(file, spec).startsWith('supervisor/'), `${file} imports ${spec}`);
    }
  }
  // koffi (native) is required at run time only when NOTIFY_SOCKET is set: never a static import, anywhere.
  for (const { file, imports } of all) t.false(imports.includes('koffi'), `${file} imports koffi statically`);
  const lazy = all.filter((f) => /createRequire\(import\.meta\.url\)\(specifier\)/.test(readFileSync(join(SRC, f.file), 'utf8'))).map((f) => f.file);
  t.deepEqual(lazy, ['supervisor/unix-datagram.ts']);
});

test('src/supervisor never reads process.env (the environment is injected)', (t) => {
  for (const { file } of inDir('supervisor')) t.false(/process\.env/.test(readFileSync(join(SRC, file), 'utf8')), file);
});
