// Every socket-directory error's advice is safe and applies to the case
// (issue 18 point 4): never a chmod of a shared sticky directory such as /tmp,
// ownership problems say how to fix ownership, one errno once, and following
// the advice as written makes the real server start.
import test from 'ava';
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testNeeding } from '../helpers/needs.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { tmpDir } from '../helpers/tmp.js';

const uid = process.getuid?.() ?? 0;

/** Start the real server on `sock`; resolves with its exit (or 'serving', having stopped it with SIGTERM). */
async function tryServer(t: Parameters<typeof tmpDir>[0], sock: string): Promise<{ code: number | null | 'serving'; stderr: string }> {
  const s = spawnServer(t, { env: { FUGUE_SOCKET_PATH: sock } });
  const started = await Promise.race([s.ready().then(() => true), s.exited.then(() => false)]);
  if (!started) return { code: (await s.exited).code, stderr: s.stderr };
  s.child.kill('SIGTERM');
  t.is((await s.exited).code, 0);
  return { code: 'serving', stderr: s.stderr };
}

test('/tmp itself (shared, sticky): exit 77, no chmod of it, and the directory of its own it suggests works', async (t) => {
  const tmp = await tryServer(t, `/tmp/fg-advice-${process.pid}.sock`);
  t.is(tmp.code, 77);
  t.regex(tmp.stderr, /socket directory \/tmp is shared: every user may create files in it \(mode 1777, sticky, like \/tmp\)/);
  t.regex(tmp.stderr, new RegExp(`Do not change the mode of a shared directory: set socket\\.path to a path in a directory of its own, such as /tmp/fugue-${uid}/fugue\\.sock`));
  t.notRegex(tmp.stderr, /chmod|chown/);
  // The same advice for a sticky directory of our own, followed as written.
  const shared = join(tmpDir(t), 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  const refused = await tryServer(t, join(shared, 'f.sock'));
  t.is(refused.code, 77);
  const suggested = new RegExp(`such as (${shared}/fugue-${uid}/fugue\\.sock) `).exec(refused.stderr)?.[1];
  t.truthy(suggested, refused.stderr);
  t.is((await tryServer(t, suggested!)).code, 'serving');
  t.is(statSync(shared).mode & 0o7777, 0o1777, 'the shared directory is untouched');
  t.is(statSync(join(shared, `fugue-${uid}`)).mode & 0o777, 0o700);
});

test('a directory of ours that its group may write to: chmod go-w, which, followed, lets the server start', async (t) => {
  const dir = join(tmpDir(t), 'd');
  mkdirSync(dir);
  chmodSync(dir, 0o770);
  const refused = await tryServer(t, join(dir, 'f.sock'));
  t.is(refused.code, 77);
  t.regex(refused.stderr, new RegExp(`socket directory ${dir} is writable by its group \\(mode 0770\\), so another user could replace the socket\\. If ${dir} is this server's alone, take that permission away: chmod go-w ${dir}; otherwise`));
  chmodSync(dir, statSync(dir).mode & ~0o022); // chmod go-w
  t.is((await tryServer(t, join(dir, 'f.sock'))).code, 'serving');
});

testNeeding({ missing: uid === 0 ? undefined : 'needs root, to give the directory to another user' }, 'a directory owned by another user: the fix is ownership (chown), not chmod; followed, the server starts', async (t) => {
  const dir = join(tmpDir(t), 'd');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, 65534, 65534);
  const refused = await tryServer(t, join(dir, 'f.sock'));
  t.is(refused.code, 77);
  t.regex(refused.stderr, new RegExp(`socket directory ${dir} is owned by uid 65534, not by this server's uid ${uid}, so another user could replace the socket\\. If ${dir} is meant for this server alone .*as root: chown ${uid} ${dir}; otherwise set socket\\.path to a path in a directory this user owns`));
  t.notRegex(refused.stderr, /chmod/);
  chownSync(dir, uid, uid);
  t.is((await tryServer(t, join(dir, 'f.sock'))).code, 'serving');
});

test('a path component that is a file: exit 73 naming it, the errno once, and no advice to create what cannot be created', async (t) => {
  const root = tmpDir(t);
  writeFileSync(join(root, 'afile'), 'keep me');
  const r = await tryServer(t, join(root, 'afile', 'sub', 'f.sock'));
  t.is(r.code, 73);
  t.regex(r.stderr, new RegExp(`cannot create socket directory ${root}/afile/sub: ${root}/afile is not a directory \\(ENOTDIR\\), so nothing can be created under it; fugue-server never moves or deletes it: set socket\\.path to a path in another directory, or move ${root}/afile away yourself`));
  t.is(r.stderr.match(/ENOTDIR/g)?.length, 1, 'the errno once');
  t.notRegex(r.stderr, /create it yourself/);
});
