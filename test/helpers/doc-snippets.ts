// The fenced code blocks of a docs page, with how each is marked: an HTML
// comment on the line before the fence (`<!-- test: NAME ... -->`, `<!-- not
// run: WHY -->`, `<!-- output: WHAT -->`), or a `[not run here: WHY]` /
// `[tested: WHERE]` note on the block's first line, as a reader sees it.

import { readFileSync } from 'node:fs';

/** One fenced block. */
export interface DocBlock {
  /** 1-based line of the opening fence. */
  line: number;
  /** The text between the fences, indentation as in the block. */
  text: string;
  /** `test: NAME` marks a block a test runs, by NAME. */
  test?: string;
  /** Why it is not run, or what it shows, from its marker; undefined when unmarked. */
  mark?: string;
}

/** Every fenced block of the file at `path`. */
export function docBlocks(path: string): DocBlock[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```/.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!;
    let end = i + 1;
    while (end < lines.length && !new RegExp(`^${indent}\`\`\`\\s*$`).test(lines[end]!)) end++;
    const body = lines.slice(i + 1, end).map((l) => l.slice(indent.length));
    const before = lines[i - 1]?.trim() ?? '';
    const comment = /^<!-- (test|not run|output): ?(.*?) ?-->$/.exec(before);
    const note = /\[(not run here: [^\]]+|tested: [^\]]+)\]/.exec(body[0] ?? '');
    const block: DocBlock = { line: i + 1, text: `${body.join('\n')}\n` };
    if (comment?.[1] === 'test') block.test = comment[2]!.split(' ')[0];
    if (comment !== null) block.mark = `${comment[1]}: ${comment[2]}`;
    else if (note !== null) block.mark = note[1];
    blocks.push(block);
    i = end;
  }
  return blocks;
}
