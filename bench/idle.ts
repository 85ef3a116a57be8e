// The idle test: memory per idle client, fugue's /metrics scrape time with many
// clients, and its graceful drain of them (bench/README.md, "What runs").

import type { LogCounts } from './log-reader.js';
import { startLoadgen } from './loadgen.js';
import type { Options } from './options.js';
import { noiseMeter, procStatus } from './proc.js';
import { sleep } from './processes.js';
import { scrape, seriesCount, type Scrape } from './scrape.js';
import { nodeOf, startServer, type ServerSpec } from './servers.js';
import { median } from './stats.js';

export interface IdleRun {
  server: string;
  rep: number;
  conns: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  kbPerConn: number;
  openS: number;
  loadgen: Record<string, unknown>;
  nofile: number;
  metrics?: {
    idle: { medianMs: number; bytes: number; series: number };
    loaded: { medianMs: number; allMs: number[]; bytes: number; series: number };
  };
  drain?: { sigtermToExitMs: number; loadgenDrainMs: number; closedAfterShutdown: number };
  /** Cores used by other processes during the timed scrapes (NOISY above NOISE_CORES). */
  foreignCpu?: number;
  /** fugue: what its log consumer read over the whole test (a line per connect and per disconnect at info). */
  logs?: LogCounts;
}

export async function runIdle(spec: ServerSpec, rep: number, opts: Options): Promise<IdleRun> {
  const server = await startServer(spec, { maxClients: 20_000, ...nodeOf(opts) });
  const httpPort = server.httpPort;
  try {
    if (server.nofile < opts.idleConns + 100) throw new Error(`server descriptor limit ${server.nofile} is too low for ${opts.idleConns} clients`);
    // Baseline RSS first, the same way for both servers: started, settled, no client yet.
    await sleep(500);
    const rssBeforeKb = procStatus(server.pid).rssKb;
    // Then 1000 clients connect and leave (both servers, so memory is comparable),
    // so that every series the 10k clients produce in fugue's /metrics (message
    // types, close reasons, and the minor-GC histogram, which appears after the
    // first scavenge) already exists: the 0-client and 10k-client bodies then
    // differ only by what depends on the number of clients.
    const prime = startLoadgen(['idle', '--conns', '1000', '--socket', server.socket], 30_000);
    await prime.ready;
    prime.send('quit\n');
    await prime.done;
    const idleScrapes: Scrape[] = [];
    if (httpPort !== undefined) {
      // These also warm the scrape path up before the timed scrapes with 10k clients.
      for (let i = 0; i < 3; i++) idleScrapes.push(await scrape(httpPort));
    }
    const lg = startLoadgen(['idle', '--conns', String(opts.idleConns), '--socket', server.socket, '--server-pid', String(server.pid)], 120_000);
    const ready = await lg.ready;
    await sleep(1000); // let allocation settle (lazy buffers, young-generation GC)
    const rssAfterKb = procStatus(server.pid).rssKb;
    const run: IdleRun = {
      server: spec.id,
      rep,
      conns: opts.idleConns,
      rssBeforeKb,
      rssAfterKb,
      kbPerConn: (rssAfterKb - rssBeforeKb) / opts.idleConns,
      openS: Number(ready.open_s),
      loadgen: {},
      nofile: server.nofile,
    };
    if (httpPort !== undefined) {
      const loaded: Scrape[] = [];
      const scrapeNoise = noiseMeter([server.pid, lg.pid, ...(server.logs === undefined ? [] : [server.logs.pid])]);
      for (let i = 0; i < 5; i++) loaded.push(await scrape(httpPort));
      run.foreignCpu = scrapeNoise.stop();
      const last = loaded[loaded.length - 1] as Scrape;
      const idleLast = idleScrapes[idleScrapes.length - 1] as Scrape;
      run.metrics = {
        idle: { medianMs: median(idleScrapes.map((s) => s.ms)), bytes: idleLast.bytes, series: seriesCount(idleLast.body) },
        loaded: { medianMs: median(loaded.map((s) => s.ms)), allMs: loaded.map((s) => Math.round(s.ms * 100) / 100), bytes: last.bytes, series: seriesCount(last.body) },
      };
      // Graceful drain: the loadgen answers each `shutdown` with `detach`.
      const sigtermToExitMs = await server.stop();
      run.loadgen = (await lg.done) as unknown as Record<string, unknown>;
      run.drain = { sigtermToExitMs, loadgenDrainMs: Number(run.loadgen.drain_ms), closedAfterShutdown: Number(run.loadgen.closed_after_shutdown) };
      if (server.logs !== undefined) run.logs = await server.logs.ended;
    } else {
      lg.send('quit\n');
      run.loadgen = (await lg.done) as unknown as Record<string, unknown>;
    }
    return run;
  } catch (err) {
    await server.stop();
    throw new Error(`idle/${spec.id}: ${(err as Error).message}\nserver output:\n${await server.output()}`);
  } finally {
    await server.stop();
  }
}
