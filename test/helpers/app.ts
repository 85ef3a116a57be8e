// An in-process App (server + observability + sidecar) on a temp socket and a free port.
import { join } from 'node:path';
import type { Tracer } from '@opentelemetry/api';
import type { ExecutionContext } from 'ava';
import { App } from '../../src/app.js';
import type { Feature } from '../../src/server/features.js';
import { loadConfig } from '../../src/config/load.js';
import { LogSink } from './log-sink.js';
import { tmpDir } from './tmp.js';

export interface TestApp {
  app: App;
  logs: LogSink;
  socketPath: string;
  baseUrl: string;
}

export async function startApp(t: ExecutionContext, options: { env?: NodeJS.ProcessEnv; tracer?: Tracer; features?: readonly Feature[] } = {}): Promise<TestApp> {
  const socketPath = join(tmpDir(t), 'f.sock');
  const env = { HOME: '/tmp', FUGUE_SOCKET_PATH: socketPath, FUGUE_HTTP_PORT: '0', FUGUE_LOG_LEVEL: 'debug', ...options.env };
  const { config } = loadConfig({ env });
  const logs = new LogSink();
  const app = new App({ config, version: '0.0.0-test', env, logDestination: logs, defaultMetrics: false, ...(options.tracer ? { tracer: options.tracer } : {}), ...(options.features ? { features: options.features } : {}) });
  await app.start();
  t.teardown(() => app.destroy());
  const port = app.httpAddress?.port ?? 0;
  return { app, logs, socketPath, baseUrl: `http://127.0.0.1:${port}` };
}
