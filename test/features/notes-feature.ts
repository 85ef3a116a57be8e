// A feature written the way docs/architecture.md says, in a module of its own
// that imports only the package's public API: shared notes. notes.add {text}
// -> notes.added {id} (too long: error notes.too_long); notes.watch ->
// notes.watching {notes}, then every new note is pushed as notes.note to the
// watchers (one serialisation for all of them). Its state lives in its scope:
// every server has its own notes.
import type { Feature } from '../../src/index.js';

export const MAX_NOTE_CHARS = 200;

export const notesFeature: Feature = {
  name: 'notes',
  errorCodes: ['notes.too_long'],
  sends: ['notes.added', 'notes.watching', 'notes.note'],
  streams: ['notes'],
  register(scope) {
    const notes: Array<{ id: number; by: number; text: string }> = [];
    const watchers = scope.stream('notes');
    scope.handle('notes.add', {
      validate: (msg) => (typeof msg.text === 'string' ? undefined : 'field "text" must be a string'),
      handle(msg, ctx) {
        const text = msg.text as string;
        if (text.length > MAX_NOTE_CHARS) return { type: 'error', code: 'notes.too_long', message: `a note holds at most ${MAX_NOTE_CHARS} characters; shorten it` };
        const note = { id: notes.length + 1, by: ctx.client.id, text };
        notes.push(note);
        watchers.publish({ type: 'notes.note', ...note });
        return { type: 'notes.added', id: note.id };
      },
    });
    scope.handle('notes.watch', {
      handle(_msg, ctx) {
        watchers.subscribe(ctx.client);
        return { type: 'notes.watching', notes };
      },
    });
  },
};
