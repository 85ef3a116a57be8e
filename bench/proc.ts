// Readings from /proc (Linux): memory and CPU of a process, the descriptor
// limit it got, and the busy time of the whole machine, from which the CPU used
// by processes other than ours follows. The machine may be shared (a build or a
// test run next to us): waitForQuiet() gives it a moment before each run.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { sleep } from './processes.js';

/**
 * Current and peak resident memory of a process, in KB, and the current one's
 * parts: anonymous (heaps, stacks) and file-backed (the node binary's and
 * libraries' pages, shared with every other process mapping them).
 */
export function procStatus(pid: number): { rssKb: number; hwmKb: number; anonKb: number; fileKb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM'), anonKb: field('RssAnon'), fileKb: field('RssFile') };
}

/** The soft RLIMIT_NOFILE a process runs with; NaN if unreadable. */
export function procNofile(pid: number): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine so far (first line of /proc/stat). */
export function machineBusyS(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle and iowait.
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / 100; // USER_HZ is 100 on Linux
}

/** utime+stime of a process in seconds (all threads), from /proc/PID/stat; 0 once it is gone. */
export function procCpuS(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds of this harness's children that have exited and been reaped
 * (cutime+cstime of /proc/self/stat): a short-lived child (a fuguectl call) is
 * gone from /proc by the time its exit is seen, and its CPU is counted here.
 */
export function reapedChildrenCpuS(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/**
 * CPU used by processes other than ours between start() and stop(), in cores:
 * machine busy time minus the given processes and this harness. The idle test
 * uses it to flag scrapes and drains that other processes disturbed.
 */
export function noiseMeter(pids: number[]): { stop(): number } {
  const meter = cpuMeter(pids);
  return {
    stop() {
      const { wallS, foreignS } = meter.stop();
      return wallS > 0 ? Math.max(0, foreignS / wallS) : 0;
    },
  };
}

/**
 * The parts of noiseMeter(): wall seconds, and CPU seconds of other processes
 * (unclipped: /proc counts in 10 ms ticks, so a short window can come out
 * slightly negative). Children that exit within the window count as ours
 * (reapedChildrenCpuS). The start-up rows add these over a pair of short starts
 * before dividing, which evens out the ticks.
 */
export function cpuMeter(pids: number[]): { stop(): { wallS: number; foreignS: number } } {
  const t0 = performance.now();
  const busy0 = machineBusyS();
  const own0 = pids.map(procCpuS);
  const me0 = process.cpuUsage();
  const reaped0 = reapedChildrenCpuS();
  return {
    stop() {
      const wallS = (performance.now() - t0) / 1000;
      const me = process.cpuUsage(me0);
      const ours = pids.reduce((a, pid, i) => a + procCpuS(pid) - (own0[i] as number), 0) + (me.user + me.system) / 1e6 + reapedChildrenCpuS() - reaped0;
      return { wallS, foreignS: machineBusyS() - busy0 - ours };
    },
  };
}

// Before each run, wait a little for the machine to be quiet; the loadgen
// measures what others used during the window anyway, and such runs are
// flagged NOISY.
let quietWaitS = 0;
const QUIET_WAIT_MAX_RUN_S = 5;
const QUIET_WAIT_MAX_TOTAL_S = 30;

/** Wait up to 5 s (30 s over the whole benchmark) for other processes to use < 0.3 cores. */
export async function waitForQuiet(): Promise<void> {
  const t0 = performance.now();
  while (quietWaitS < QUIET_WAIT_MAX_TOTAL_S && performance.now() - t0 < QUIET_WAIT_MAX_RUN_S * 1000) {
    const b0 = machineBusyS();
    await sleep(250);
    const cores = (machineBusyS() - b0) / 0.25;
    if (cores < 0.3) break;
  }
  quietWaitS += (performance.now() - t0) / 1000;
}

/** Seconds spent in waitForQuiet() so far. */
export const quietWaitedS = (): number => quietWaitS;
