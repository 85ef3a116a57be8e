// Collect pino's NDJSON in memory, parsed, for assertions.
import { Writable } from 'node:stream';
import { waitFor } from './wait-for.js';

export type LogLine = Record<string, unknown> & { msg: string; level: string };

export class LogSink extends Writable {
  readonly lines: LogLine[] = [];
  #partial = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const text = this.#partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.#partial = parts.pop() ?? '';
    for (const p of parts) if (p.trim() !== '') this.lines.push(JSON.parse(p) as LogLine);
    cb();
  }
  find(msg: string): LogLine[] {
    return this.lines.filter((l) => l.msg === msg);
  }
  waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs = 5000): Promise<LogLine> {
    return waitFor(() => this.lines.find(pred), { what, timeoutMs });
  }
}
