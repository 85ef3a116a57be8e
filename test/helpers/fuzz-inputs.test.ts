// The fuzz's generators (fuzz-inputs.ts): deterministic per seed, judged by the
// model they are given, within the reply budget, and covering what they claim to.
import test from 'ava';
import { makeScript, replyCost, subSeed, type FuzzConfig, type Script } from './fuzz-inputs.js';
import { ConnectionModel, PROTOCOL_V1, withMessages, type Expect } from './protocol-model.js';
import { Random } from './rng.js';

const CONFIG: FuzzConfig = { spec: PROTOCOL_V1, maxFrameBytes: 65_536, replyBudget: 600_000 };
const SCRIPTS = 150;
const scripts = (config: FuzzConfig, n = SCRIPTS, master = 7): Script[] => Array.from({ length: n }, (_, i) => makeScript(config, i, subSeed(master, i)));
/** Generated once and shared: making scripts is most of this file's time. */
let coreScripts: Script[] | undefined;
const core = (): Script[] => (coreScripts ??= scripts(CONFIG, 400));
const expects = (s: Script): Expect[] => s.cases.flatMap((c) => (c.expect === undefined ? [] : [c.expect]));

/** The type of a frame's JSON payload, when it has one. */
function typeOf(frame: Buffer): unknown {
  try {
    return (JSON.parse(frame.subarray(4).toString('utf8')) as { type?: unknown }).type;
  } catch {
    return undefined;
  }
}

test('the same config, index and seed give the same script, byte for byte', (t) => {
  const a = makeScript(CONFIG, 3, 12345);
  const b = makeScript(CONFIG, 3, 12345);
  t.deepEqual(a, b);
  t.notDeepEqual(makeScript(CONFIG, 3, 12346).cases.map((c) => c.bytes), a.cases.map((c) => c.bytes));
});

test('each case carries what a fresh model predicts for the whole script, however its bytes are split', (t) => {
  for (const s of core().slice(0, 60)) {
    const bytes = Buffer.concat(s.cases.map((c) => c.bytes));
    const rng = new Random(s.seed);
    const model = new ConnectionModel(CONFIG.spec, { maxFrameBytes: CONFIG.maxFrameBytes });
    const predicted = [];
    for (let pos = 0; pos < bytes.length; ) {
      const n = 1 + Math.floor(rng.next() * 3000);
      predicted.push(...model.push(bytes.subarray(pos, pos + n)));
      pos += n;
    }
    t.deepEqual(predicted.flatMap((p) => (p.expect === undefined ? [] : [p.expect])), expects(s), `script ${s.index}`);
    t.is(model.closed, s.ending === 'closed', `script ${s.index} ends ${s.ending}`);
  }
});

test('the replies a script asks for stay within the reply budget', (t) => {
  for (const s of core()) {
    const total = expects(s).reduce((a, e) => a + replyCost(CONFIG, e), 0);
    t.true(total <= CONFIG.replyBudget, `script ${s.index}: ${total} bytes of replies`);
  }
});

test('no frame exceeds maxFrameBytes except the oversize case, which then ends the script', (t) => {
  for (const s of core()) {
    s.cases.forEach((c, i) => {
      const length = c.bytes.readUInt32BE(0);
      if (c.label.startsWith('oversize')) {
        t.true(length > CONFIG.maxFrameBytes, c.label);
        t.is(i, s.cases.length - 1, `script ${s.index}: the oversize case is last`);
      } else {
        t.is(c.bytes.length, 4 + length, `script ${s.index} case ${i} (${c.label}) is one whole frame`);
        t.true(length <= CONFIG.maxFrameBytes, `script ${s.index} case ${i} (${c.label})`);
      }
    });
  }
});

test('the scripts provoke every per-frame error code the model predicts, every reply type, and every ending', (t) => {
  const seen = new Set<string>();
  const endings = new Set<string>();
  for (const s of core()) {
    for (const e of expects(s)) for (const c of e.kind === 'error' ? e.codes : [e.type]) seen.add(c);
    endings.add(s.ending);
  }
  for (const c of ['bad_message', 'unknown_type', 'handshake_required', 'already_connected', 'unsupported_version', 'frame_too_large', 'connected', 'pong', 'echo', 'status']) t.true(seen.has(c), c);
  t.deepEqual([...endings].sort(), ['abort', 'chaos', 'closed', 'end', 'truncated-end', 'wait-destroy']);
});

test('a type added to the spec is sent as a well-formed message, and never as an unknown one', (t) => {
  const spec = withMessages(PROTOCOL_V1, { list_clients: { reply: 'clients' }, 'session.list': { reply: 'sessions' } });
  const config: FuzzConfig = { ...CONFIG, spec, replyBytes: { clients: 10_000 } };
  let served = 0;
  for (const s of scripts(config)) {
    for (const c of s.cases) {
      const type = typeOf(c.bytes);
      if (c.label === 'unknown-type') t.false(type === 'list_clients' || type === 'session.list', `unknown-type case sent ${String(type)}`);
      if (c.expect?.kind === 'reply' && c.expect.type === 'clients') served++;
    }
  }
  t.true(served > 0, 'list_clients was sent and expected to be answered');
  // Without it in the spec, it is never drawn.
  t.false(core().some((s) => s.cases.some((c) => typeOf(c.bytes) === 'list_clients')));
});

test('replyCost prices an echo by its data, a reply of unknown size by config.replyBytes, the rest at a fixed size', (t) => {
  const echo: Expect = { kind: 'reply', request: 'echo', type: 'echo', id: undefined, echo: { field: 'data', json: 'x'.repeat(1000) } };
  t.is(replyCost(CONFIG, echo), 1000 + 64);
  t.is(replyCost({ ...CONFIG, replyBytes: { clients: 5000 } }, { kind: 'reply', request: 'list_clients', type: 'clients', id: 'ab' }), 5000 + 2 + 16 + 64);
  t.is(replyCost(CONFIG, { kind: 'error', codes: ['bad_message'], id: undefined }), 400 + 64);
  t.is(replyCost(CONFIG, undefined), 0);
});
