// The public surface is documented: every symbol src/index.ts exports has
// TSDoc, and so does every option (a property of an exported *Options
// interface), an optional one with its default (and unit, where it has one).
// Read with the TypeScript compiler API from the sources.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

const program = ts.createProgram([`${SRC}index.ts`], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, target: ts.ScriptTarget.ES2022, strict: true });
const checker = program.getTypeChecker();
const index = program.getSourceFile(`${SRC}index.ts`)!;
const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(index)!);

function resolved(symbol: ts.Symbol): ts.Symbol {
  return symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
}

function docOf(symbol: ts.Symbol): string {
  return ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
}

test('every symbol the package exports has TSDoc', (t) => {
  const missing = exported.filter((s) => docOf(resolved(s)) === '').map((s) => s.getName());
  t.true(exported.length > 40, `${exported.length} exports`);
  t.deepEqual(missing, [], `undocumented exports: ${missing.join(', ')}`);
});

test('every option of an exported *Options interface has TSDoc; an optional one says its default', (t) => {
  const problems: string[] = [];
  for (const s of exported.map(resolved)) {
    if (!(s.flags & ts.SymbolFlags.Interface) || !/Options$/.test(s.getName())) continue;
    const type = checker.getDeclaredTypeOfSymbol(s);
    for (const prop of type.getProperties()) {
      const doc = docOf(prop);
      const optional = (prop.flags & ts.SymbolFlags.Optional) !== 0;
      if (doc === '') problems.push(`${s.getName()}.${prop.getName()}: no TSDoc`);
      else if (optional && !/Default|default:/.test(doc)) problems.push(`${s.getName()}.${prop.getName()}: optional, but its TSDoc gives no default`);
    }
  }
  t.deepEqual(problems, []);
});
