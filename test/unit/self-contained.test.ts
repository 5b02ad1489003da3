/**
 * What users read is self-contained: help, README.md, docs/*.md, docs/errors/*.md, the JSON
 * schemas and every string in src/ (error messages and hints, help text, schema descriptions)
 * never send the reader to documents they do not have — the product spec ("SPEC", "§9.3") or
 * the seed documents ("seed 001"). Comments in src/ and docs/decisions/ (the team's design
 * records) may cite them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { helpText } from '../../src/cli/help.js';
import { COMMANDS } from '../../src/cli/registry.js';

const ROOT = join(import.meta.dirname, '..', '..');
const FORBIDDEN = [/\bSPEC\b/, /§\s*\d/, /\bseeds? 0\d*/i];

export function offending(text: string): string[] {
  return text.split('\n').filter((line) => FORBIDDEN.some((re) => re.test(line)));
}

function files(dir: string, ext: string, recurse: boolean): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return recurse ? files(p, ext, true) : [];
    return p.endsWith(ext) ? [p] : [];
  });
}

const LITERALS = new Set([ts.SyntaxKind.StringLiteral, ts.SyntaxKind.NoSubstitutionTemplateLiteral, ts.SyntaxKind.TemplateHead, ts.SyntaxKind.TemplateMiddle, ts.SyntaxKind.TemplateTail]);

/** Every string and template literal of a TypeScript file (comments excluded), read from its syntax tree. */
function stringLiterals(source: string): string[] {
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (LITERALS.has(node.kind)) out.push((node as ts.LiteralLikeNode).text);
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, true));
  return out;
}

describe('user-facing text never cites the spec or the seeds', () => {
  it('the pattern catches what it must and nothing else', () => {
    expect(offending('see SPEC §9.3\nseed 001 says\n(§17)\nfine: a seed-shaped object, section 3')).toEqual(['see SPEC §9.3', 'seed 001 says', '(§17)']);
  });

  it('help of the root and of every command', () => {
    const hits = [null, ...COMMANDS].flatMap((c) => offending(helpText(c, '0.0.0')).map((l) => `${c?.name ?? 'kair'} --help: ${l.trim()}`));
    expect(hits).toEqual([]);
  });

  it('README.md, docs/*.md, docs/errors/*.md and docs/schemas', () => {
    const docs = [join(ROOT, 'README.md'), ...files(join(ROOT, 'docs'), '.md', false), ...files(join(ROOT, 'docs', 'errors'), '.md', false), ...files(join(ROOT, 'docs', 'schemas'), '.json', false)];
    const hits = docs.flatMap((f) => offending(readFileSync(f, 'utf8')).map((l) => `${relative(ROOT, f)}: ${l.trim()}`));
    expect(hits).toEqual([]);
  });

  it('every string in src/ (messages, hints, help, schema descriptions); comments may cite the spec', () => {
    // SQL comments inside migration strings are notes for the team, like code comments (and
    // editing a shipped migration's text is not worth it).
    const hits = files(join(ROOT, 'src'), '.ts', true).flatMap((f) =>
      stringLiterals(readFileSync(f, 'utf8')).flatMap((s) =>
        offending(s)
          .filter((l) => !l.trim().startsWith('--'))
          .map((l) => `${relative(ROOT, f)}: ${l.trim()}`),
      ),
    );
    expect(hits).toEqual([]);
  });

  it('the scanner reads strings and templates, not comments', () => {
    expect(stringLiterals("// SPEC §1\nconst a = 'x §2'; /* §3 */ const b = `y ${a} §4 ${a} z`;")).toEqual(['x §2', 'y ', ' §4 ', ' z']);
  });
});
