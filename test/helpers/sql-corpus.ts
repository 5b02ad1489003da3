/**
 * Collects the SQL statements kair's source sends: the string literal (or template literal) that
 * is the first argument of `.prepare(`, `.exec(`, `.run(`, `.get(` or `.all(` — better-sqlite3's
 * calls and the SqlExecutor's alike. A template literal whose `${…}` are constants of the same
 * file (and `.replace`/`.replaceAll` of them) is evaluated; one that depends on a run-time value
 * (`${spec.table}`) is returned as dynamic, with its template text, for the corpus test to expand.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface SqlSite {
  file: string;
  line: number;
  /** The evaluated statement, or the template text (with `${…}`) when `dynamic`. */
  sql: string;
  dynamic: boolean;
}

const SQL_START = /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|REPLACE|VACUUM)\b/i;

export function sourceFiles(root: string, dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.ts')) out.push(p);
    }
  };
  for (const d of dirs) walk(join(root, d));
  return out;
}

/** The end (exclusive) of the JS string/template literal starting at `i`. */
function literalEnd(src: string, i: number): number {
  const q = src[i]!;
  let j = i + 1;
  while (j < src.length) {
    const c = src[j]!;
    if (c === '\\') {
      j += 2;
      continue;
    }
    if (c === q) return j + 1;
    if (q === '`' && c === '$' && src[j + 1] === '{') {
      // Skip the expression, with nested braces and literals.
      let depth = 1;
      j += 2;
      while (j < src.length && depth > 0) {
        const d = src[j]!;
        if (d === "'" || d === '"' || d === '`') {
          j = literalEnd(src, j);
          continue;
        }
        if (d === '{') depth++;
        if (d === '}') depth--;
        j++;
      }
      continue;
    }
    j++;
  }
  throw new Error(`unterminated literal at ${i}`);
}

/** `const NAME = <literal>` of the file, evaluated where possible (in order, so later ones may use earlier ones). */
function fileConstants(src: string): Map<string, string> {
  const consts = new Map<string, string>();
  for (const m of src.matchAll(/(?:^|\n)\s*(?:export\s+)?const\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*(['"`])/g)) {
    const start = m.index! + m[0].length - 1;
    const raw = src.slice(start, literalEnd(src, start));
    const v = evaluate(raw, consts);
    if (v !== undefined) consts.set(m[1]!, v);
  }
  return consts;
}

function evaluate(raw: string, consts: Map<string, string>): string | undefined {
  try {
    // Our own source, in a test: the literal is evaluated with the file's constants in scope.
    const fn = new Function(...consts.keys(), `return ${raw};`) as (...a: string[]) => unknown;
    const v = fn(...consts.values());
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

export function sqlSitesOf(file: string, src: string): SqlSite[] {
  const consts = fileConstants(src);
  const out: SqlSite[] = [];
  // `stmt(db, '…')` is chain.ts's cache of prepared statements: the same as `.prepare(`.
  for (const m of src.matchAll(/\.(prepare|exec|run|get|all|iterate)\b|\bstmt\(\s*\w+\s*,/g)) {
    let i = m.index! + m[0].length;
    if (m[0].startsWith('stmt')) i--;
    else if (src[i] === '<') {
      // Type arguments: prepare<[string], Row>(
      let depth = 0;
      for (; i < src.length; i++) {
        if (src[i] === '<') depth++;
        if (src[i] === '>' && src[i - 1] !== '=') depth--;
        if (depth === 0) break;
      }
      i++;
    }
    if (src[i] !== '(' && src[i] !== ',') continue;
    i++;
    while (/\s/.test(src[i] ?? '')) i++;
    const q = src[i];
    if (q !== "'" && q !== '"' && q !== '`') {
      // A statement kept in a constant of the file: `sql.get(SELECT_STEP, [..])`.
      const id = /^([A-Za-z_$][\w$]*)\s*[,)]/.exec(src.slice(i, i + 200));
      const v = id ? consts.get(id[1]!) : undefined;
      if (v !== undefined && SQL_START.test(v)) out.push({ file, line: src.slice(0, i).split('\n').length, sql: v, dynamic: false });
      continue;
    }
    const end = literalEnd(src, i);
    const raw = src.slice(i, end);
    const line = src.slice(0, i).split('\n').length;
    const value = evaluate(raw, consts);
    const text = value ?? raw.slice(1, -1);
    if (!SQL_START.test(text)) continue;
    out.push({ file, line, sql: text, dynamic: value === undefined });
  }
  return out;
}

export function collectSqlSites(root: string, dirs: string[]): SqlSite[] {
  return sourceFiles(root, dirs).flatMap((f) => sqlSitesOf(relative(root, f), readFileSync(f, 'utf8')));
}
