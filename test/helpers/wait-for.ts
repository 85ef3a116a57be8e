import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  timeoutMs?: number;
  /** What is awaited, for the failure message. */
  what: string;
  intervalMs?: number;
}

/** Poll `cond` until it is truthy or the deadline passes (then throw, naming `what`). */
export async function waitFor<T>(cond: () => T | undefined | null | false | Promise<T | undefined | null | false>, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    const v = await cond();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs ?? 5000} ms waiting for ${options.what}`);
    await delay(options.intervalMs ?? 10);
  }
}

/** Resolve with the first event `name` on `emitter`, or reject at the deadline. */
export function onceWithin<T = unknown>(emitter: NodeJS.EventEmitter, name: string, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const onEvent = (v: T) => {
      clearTimeout(timer);
      resolve(v);
    };
    emitter.once(name, onEvent);
  });
}

export const TIMED_OUT = Symbol('timed out');

/** `p`, or TIMED_OUT after `ms`; the timer is always cleared (nothing keeps the worker alive). */
export function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
