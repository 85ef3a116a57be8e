// The fan-out rows' machinery (issue 17, item 3), end to end with the real
// processes the bench runs: the load generator's fanout mode (bench/loadgen.c)
// against bench/bare-server.ts and against fugue with the bench feature
// (bench/fanout-server.ts, the real App), every reading subscriber's sequence
// checked by the generator; and what each server does with a subscriber
// that never reads. Counts only: no rate or time is asserted.
import test from 'ava';
import { ensureHelpers } from '../../bench/build.js';
import { startLoadgen, type LoadgenResult } from '../../bench/loadgen.js';
import { ROOT } from '../../bench/paths.js';
import { killAll } from '../../bench/processes.js';
import { metricSample, scrape } from '../../bench/scrape.js';
import { BARE, FUGUE_FANOUT, FUGUE_FANOUT_DISCONNECT, startServer, type RunningServer, type ServerSpec } from '../../bench/servers.js';

test.before(() => ensureHelpers()); // compiles bench/build/loadgen (needs cc)
test.after.always(() => killAll());

/** A short fanout run; every subscriber reads at once (probes) unless told otherwise. */
function fanout(server: RunningServer, conns: number, ...more: string[]): Promise<LoadgenResult> {
  const args = ['fanout', '--socket', server.socket, '--conns', String(conns), '--probes', String(conns), '--inflight', '2', '--seconds', '0.3', '--warmup', '0.1', ...more];
  return startLoadgen(args, 60_000).done;
}

async function started(t: { teardown(fn: () => Promise<unknown>): void }, spec: ServerSpec): Promise<RunningServer> {
  const server = await startServer({ ...spec, root: ROOT }, { core: 0 });
  t.teardown(() => server.stop());
  return server;
}

for (const spec of [BARE, FUGUE_FANOUT]) {
  test.serial(`${spec.id}: every reading subscriber gets every message, in order, each publish reaching all of them`, async (t) => {
    const server = await started(t, spec);
    // 20 subscribers, 5 of them reading at once and 15 at intervals, as in the bench.
    const r = await fanout(server, 20, '--probes', '5', '--size', '100');
    t.is(r.errors, 0, JSON.stringify(r.err));
    t.true((r.published as number) > 0, 'publishes were answered');
    t.is(r.pub_sent, (r.published as number) * 20, 'each publish was queued for every subscriber');
    t.is(r.pub_dropped, 0);
    t.is(r.missed_notices, 0);
    t.true((r.sub_min as number) > 0, 'every subscriber got messages in the window');
    t.true(r.replies >= (r.sub_min as number) * 20, 'deliveries: at least the fewest one subscriber got, times 20');
  });
}

// With --stalled, the first window is the subscribers alone; the stopped one comes after it.
test.serial('fugue (drop): a subscriber that stops reading is skipped and its messages counted; the others miss nothing', async (t) => {
  const server = await started(t, FUGUE_FANOUT);
  const r = await fanout(server, 4, '--stalled', '1', '--size', '16384', '--stall-wait-s', '30');
  t.is(r.errors, 0, JSON.stringify(r.err));
  t.is(r.alone?.pub_dropped, 0, 'nothing was dropped before it came');
  t.true((r.alone?.replies ?? 0) > 0 && r.replies > 0, 'both windows measured deliveries');
  t.false(r.stall_wait_capped, 'the drop came before the wait ran out');
  t.not(r.first_drop_ms, null);
  t.true((r.pub_dropped as number) > 0);
  t.is(r.missed_notices, 0, 'no reading subscriber was skipped');
  t.is(r.stalled_cut, 0, 'drop does not cut it off');
  const body = (await scrape(server.httpPort as number)).body;
  t.is(metricSample(body, 'fugue_stream_dropped_total', 'stream', 'bench'), r.pub_dropped as number, 'fugue counted what its publishes reported');
  t.is(metricSample(body, 'fugue_stream_pauses_total', 'stream', 'bench'), 1, 'paused once: it never caught up');
});

test.serial('fugue (disconnect): a subscriber that stops reading is cut off as a slow consumer; nothing is dropped', async (t) => {
  const server = await started(t, FUGUE_FANOUT_DISCONNECT);
  const r = await fanout(server, 4, '--stalled', '1', '--size', '16384', '--on-slow', 'disconnect', '--stall-wait-s', '30');
  t.is(r.errors, 0, JSON.stringify(r.err));
  t.is(r.stalled_cut, 1);
  t.not(r.stalled_cut_ms, null);
  t.false(r.stall_wait_capped);
  t.is(r.pub_dropped, 0);
  const body = (await scrape(server.httpPort as number)).body;
  t.is(metricSample(body, 'fugue_connections_closed_total', 'reason', 'slow_consumer'), 1);
});

test.serial('bare: a subscriber that stops reading is neither cut off nor skipped (it has no bound)', async (t) => {
  const server = await started(t, BARE);
  const r = await fanout(server, 4, '--stalled', '1', '--size', '16384');
  t.is(r.errors, 0, JSON.stringify(r.err));
  t.is(r.stalled_cut, 0);
  t.is(r.pub_dropped, 0);
  t.true((r.pub_sent as number) > (r.published as number) * 4, 'publishes were written to the stopped one too');
  t.true((r.published_since_stall as number) > 0, 'publishing went on after it subscribed');
});

test('metricSample picks the sample with the label asked for, wherever the label is', (t) => {
  const body = ['# HELP x', 'fugue_stream_dropped_total{stream="events"} 3', 'fugue_stream_dropped_total{stream="bench"} 17', 'fugue_c_total{a="1",reason="slow_consumer",z="2"} 4', 'fugue_c_total{reason="slow"} 9'].join('\n');
  t.is(metricSample(body, 'fugue_stream_dropped_total', 'stream', 'bench'), 17);
  t.is(metricSample(body, 'fugue_c_total', 'reason', 'slow_consumer'), 4);
  t.is(metricSample(body, 'fugue_c_total', 'reason', 'timeout'), undefined);
});
