// The module compile cache (issue 17 point 1): on a Node that has it (22.1+),
// the daemon and fuguectl keep their compiled code in a directory of the
// user's, respecting NODE_COMPILE_CACHE and XDG_CACHE_HOME, and a directory
// that cannot be used never stops a start. On Node 20 the behaviour checked is
// that nothing is written (there is no cache).
import test from 'ava';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { join } from 'node:path';
import { compileCacheDir } from '../../src/cli/compile-cache.js';
import { ctl } from '../helpers/ctl.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';

const HAS_CACHE = typeof Reflect.get(nodeModule, 'enableCompileCache') === 'function';

test('the cache directory: NODE_COMPILE_CACHE, else $XDG_CACHE_HOME/fugue-server/compile, else ~/.cache/fugue-server/compile', (t) => {
  t.is(compileCacheDir({ NODE_COMPILE_CACHE: '/c' }), '/c');
  t.is(compileCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/fugue-server/compile');
  t.regex(compileCacheDir({ XDG_CACHE_HOME: 'relative' }), /\/\.cache\/fugue-server\/compile$/, 'a relative XDG_CACHE_HOME is ignored, as the spec says');
  t.regex(compileCacheDir({}), /\/\.cache\/fugue-server\/compile$/);
});

test(`the daemon and fuguectl fill the cache under XDG_CACHE_HOME (${HAS_CACHE ? 'this Node has the cache' : `${process.version} has none: nothing is written`}); an unusable directory never stops them`, async (t) => {
  const dir = tmpDir(t);
  const sock = join(dir, 'f.sock');
  const cache = join(dir, 'cache');
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock, XDG_CACHE_HOME: cache } });
  await s.ready();
  const ping = await ctl(['--socket', sock, 'ping'], { XDG_CACHE_HOME: cache });
  t.is(ping.code, 0, ping.stderr);
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  const files = existsSync(join(cache, 'fugue-server', 'compile')) ? readdirSync(join(cache, 'fugue-server', 'compile'), { recursive: true }) : [];
  if (HAS_CACHE) t.true(files.length > 0, 'compiled code was kept');
  else t.is(files.length, 0);

  // A cache path that is a file, and one others may write: the server starts all the same.
  const blocked = join(dir, 'blocked');
  writeFileSync(blocked, 'not a directory');
  const shared = join(dir, 'shared');
  mkdirSync(join(shared, 'fugue-server', 'compile'), { recursive: true });
  chmodSync(join(shared, 'fugue-server', 'compile'), 0o777);
  for (const xdg of [blocked, shared]) {
    const sock2 = join(dir, `${xdg === blocked ? 'b' : 's'}.sock`);
    const s2 = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock2, XDG_CACHE_HOME: xdg } });
    await s2.ready();
    s2.child.kill('SIGTERM');
    t.is((await s2.exited).code, 0);
  }
  t.deepEqual(readdirSync(join(shared, 'fugue-server', 'compile')), [], 'a directory others can write is not used');
});
