// An in-process FugueServer on a temp socket, closed at teardown.
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { FugueServer, type FugueServerOptions } from '../../src/server/server.js';
import { tmpDir } from './tmp.js';

export async function startServer(t: ExecutionContext, options: Partial<FugueServerOptions> = {}): Promise<FugueServer> {
  const socketPath = options.socketPath ?? join(tmpDir(t), 'f.sock');
  const server = new FugueServer({ version: '0.0.0-test', ...options, socketPath });
  await server.start();
  t.teardown(() => { server.destroy(); });
  return server;
}
