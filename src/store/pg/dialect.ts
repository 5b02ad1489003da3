/**
 * The lanes' SQL, written for SQLite, run on PostgreSQL (decision 035). The lanes never name the
 * tenant and never know which engine they talk to; this module turns one of their statements into
 * one PostgreSQL statement that touches only the workspace's rows:
 *
 * - `?` placeholders become `$1…$n` (never inside a string literal, quoted identifier or
 *   comment); the tenant is one more parameter, `$n+1`, never text spliced into the SQL;
 * - every table read (after FROM or JOIN, or in a FROM list) becomes a per-tenant derived table
 *   `(SELECT <the local columns> FROM "schema"."t" WHERE tenant_id = $T) AS t`, so a SELECT *,
 *   a join, a subquery or a CTE sees only the tenant's rows, and a table that has no tenant
 *   column locally does not show the PostgreSQL one;
 * - INSERT gets the tenant: added as a column where the local table has none; where the local
 *   table has one the value the lane passes must be the tenant (checked when the statement runs);
 *   UPDATE and DELETE get `tenant_id = $T AND (…)` around their WHERE;
 * - `INSERT OR REPLACE` becomes `INSERT … ON CONFLICT (primary key) DO UPDATE SET` every other
 *   column, `INSERT OR IGNORE` `ON CONFLICT DO NOTHING`.
 *
 * It fails closed: a table name where no tenant filter can be put (a schema-qualified name, an
 * unknown table after FROM, a table in an unexpected position), a statement that is not
 * SELECT/WITH/INSERT/UPDATE/DELETE, more than one statement, or an UPDATE of tenant_id is
 * refused before anything is sent. It is a rewriter for the finite SQL kair sends (the corpus
 * test holds every statement in src/ to it), not a general SQL parser.
 */
import { kairError } from '../../domain/errors.js';

/** What the rewriter needs to know about one PostgreSQL table (read from the catalog once). */
export interface PgTable {
  /** Columns in table order. */
  columns: readonly string[];
  /** The primary key on PostgreSQL (tenant_id first). */
  primaryKey: readonly string[];
}

/**
 * Tables that have no tenant column in kair.db: PostgreSQL adds one (decision 031). Reads do not
 * show it and inserts add it, so the lanes' SQL and rows are the same on both engines.
 */
export const LOCAL_TENANTLESS: ReadonlySet<string> = new Set(['aec_refs', 'access_policy_versions', 'simulations', 'access_policy', 'execution_envelopes', 'kimi_execution_runs']);

/**
 * Columns only the PostgreSQL table has: left out of a row's canonical JSON so that row hashes and
 * anchors are the same on both engines. `rowid` is SQLite's implicit one made explicit (SELECT *
 * on SQLite does not return it); tenant_id where the local table has none.
 */
export function pgOnlyColumns(table: string): string[] {
  return LOCAL_TENANTLESS.has(table) ? ['tenant_id', 'rowid'] : ['rowid'];
}

/** A row as the local table would return it: the PostgreSQL-only columns removed. */
export function localRow(table: string, row: Record<string, unknown>): Record<string, unknown> {
  const out = { ...row };
  for (const c of pgOnlyColumns(table)) delete out[c];
  return out;
}

type Kind = 'ws' | 'comment' | 'str' | 'qident' | 'ident' | 'param' | 'num' | 'punct';

interface Token {
  kind: Kind;
  text: string;
  pos: number;
}

const refuse = (message: string, sql: string) =>
  kairError('INTERNAL_ERROR', `${message}; the statement was not sent to PostgreSQL`, { statement: sql.replace(/\s+/g, ' ').trim().slice(0, 200), hint: 'this is a bug in kair: report the statement (kair doctor shows the version)' });

/** Splits SQL into tokens; string literals, quoted identifiers and comments are single tokens. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const start = i;
    if (/\s/.test(c)) {
      while (i < n && /\s/.test(sql[i]!)) i++;
      out.push({ kind: 'ws', text: sql.slice(start, i), pos: start });
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      out.push({ kind: 'comment', text: sql.slice(start, i), pos: start });
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw refuse('an unterminated comment', sql);
      i = end + 2;
      out.push({ kind: 'comment', text: sql.slice(start, i), pos: start });
    } else if (c === "'" || c === '"' || c === '`') {
      // SQL doubles the quote inside: 'it''s', "a""b".
      i++;
      for (;;) {
        if (i >= n) throw refuse('an unterminated quoted string', sql);
        if (sql[i] === c) {
          if (sql[i + 1] === c) {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      if (c === '`') throw refuse('a backquoted identifier (SQLite-only)', sql);
      out.push({ kind: c === "'" ? 'str' : 'qident', text: sql.slice(start, i), pos: start });
    } else if (c === '?') {
      i++;
      while (i < n && /[0-9]/.test(sql[i]!)) i++;
      out.push({ kind: 'param', text: sql.slice(start, i), pos: start });
    } else if ((c === '@' || c === ':' || c === '$') && /[A-Za-z_]/.test(sql[i + 1] ?? '') && !(c === ':' && sql[i - 1] === ':')) {
      throw refuse(`a named parameter (${sql.slice(i, i + 20).split(/\W/)[0] ?? c}…): pass positional ? parameters`, sql);
    } else if (/[A-Za-z_]/.test(c)) {
      while (i < n && /[A-Za-z0-9_$]/.test(sql[i]!)) i++;
      out.push({ kind: 'ident', text: sql.slice(start, i), pos: start });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      while (i < n && /[0-9.eE]/.test(sql[i]!)) i++;
      out.push({ kind: 'num', text: sql.slice(start, i), pos: start });
    } else {
      // Two-character operators stay together (<=, >=, <>, !=, ||, ::).
      const two = sql.slice(i, i + 2);
      i += ['<=', '>=', '<>', '!=', '||', '::', '=='].includes(two) ? 2 : 1;
      out.push({ kind: 'punct', text: sql.slice(start, i), pos: start });
    }
  }
  return out;
}

/** Keywords that end a FROM item (so the identifier before them is not an alias). */
const CLAUSE_WORDS = new Set([
  'where', 'group', 'order', 'limit', 'offset', 'having', 'window', 'union', 'except', 'intersect', 'join', 'inner', 'left', 'right', 'full', 'cross',
  'natural', 'outer', 'on', 'using', 'set', 'values', 'select', 'returning', 'from', 'as', 'default', 'when', 'then', 'else', 'end',
]);
const FROM_LIST_END = new Set(['where', 'group', 'order', 'limit', 'offset', 'having', 'window', 'union', 'except', 'intersect', 'on', 'using', 'returning', 'set', 'values', 'select']);

const lower = (t: Token | undefined) => (t && t.kind === 'ident' ? t.text.toLowerCase() : '');
const qi = (ident: string) => `"${ident.replace(/"/g, '""')}"`;

/** The translation of one statement. */
export interface Translated {
  text: string;
  /** How many `?` the statement has: the lane's parameters; the tenant is $count+1. */
  params: number;
  /** For INSERTs into a table with a local tenant column: which lane parameters carry tenant_id (checked at run time). */
  tenantParams: number[];
  /** Whether result rows keep a `rowid` column (only when the select list names it, as on SQLite). */
  keepRowid: boolean;
  /** Whether the text uses the tenant parameter (PostgreSQL refuses a parameter the statement does not use). */
  usesTenant: boolean;
}

export interface DialectContext {
  schema: string;
  tables: ReadonlyMap<string, PgTable>;
}

/**
 * Translates one statement (see the header). Throws INTERNAL_ERROR for anything it cannot
 * translate with the tenant filter in place.
 */
export function translate(sql: string, ctx: DialectContext): Translated {
  const all = tokenize(sql);
  // Drop a trailing semicolon; refuse a second statement.
  let end = all.length;
  while (end > 0 && (all[end - 1]!.kind === 'ws' || all[end - 1]!.kind === 'comment')) end--;
  if (end > 0 && all[end - 1]!.text === ';') end--;
  const toks = all.slice(0, end);
  if (toks.some((t) => t.kind === 'punct' && t.text === ';')) throw refuse('more than one statement', sql);
  const sig: number[] = []; // indexes of significant tokens
  toks.forEach((t, i) => {
    if (t.kind !== 'ws' && t.kind !== 'comment') sig.push(i);
  });
  if (sig.length === 0) throw refuse('an empty statement', sql);

  // Numbered placeholders, in order of appearance (`?NNN` keeps its number).
  let count = 0;
  let maxNumbered = 0;
  for (const t of toks) {
    if (t.kind !== 'param') continue;
    if (t.text.length > 1) maxNumbered = Math.max(maxNumbered, Number(t.text.slice(1)));
    else count++;
  }
  if (maxNumbered > 0 && count > 0) throw refuse('a mix of ? and ?NNN parameters', sql);
  const params = Math.max(count, maxNumbered);
  const T = `$${params + 1}`;

  const out: string[] = toks.map((t) => t.text);
  let seen = 0;
  toks.forEach((t, i) => {
    if (t.kind === 'param') out[i] = t.text.length > 1 ? `$${t.text.slice(1)}` : `$${++seen}`;
  });

  const first = lower(toks[sig[0]!]);
  if (!['select', 'with', 'insert', 'update', 'delete'].includes(first)) throw refuse(`a ${first.toUpperCase() || toks[sig[0]!]!.text} statement (only SELECT, WITH, INSERT, UPDATE and DELETE run on PostgreSQL)`, sql);

  const depthAt: number[] = [];
  let d = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'punct' && t.text === ')') d--;
    depthAt[i] = d;
    if (t.kind === 'punct' && t.text === '(') d++;
    if (d < 0) throw refuse('unbalanced parentheses', sql);
  }
  if (d !== 0) throw refuse('unbalanced parentheses', sql);

  // Whether each parenthesis opens a query (`(SELECT …`, `(WITH …`): FROM inside other parentheses
  // is function syntax (`substring(x FROM 2)`), not a clause; depth 0 is the statement itself.
  const queryAt: boolean[] = [];
  sig.forEach((i, k) => {
    if (toks[i]!.text === '(') queryAt[depthAt[i]! + 1] = ['select', 'with'].includes(lower(toks[sig[k + 1] ?? -1]));
  });
  queryAt[0] = true;

  const prevSig = (k: number) => (k > 0 ? sig[k - 1] : undefined);
  const nextSig = (k: number) => (k + 1 < sig.length ? sig[k + 1] : undefined);

  // CTE names (WITH name AS (…), name AS (…)) may be read like tables.
  const ctes = new Set<string>();
  for (let k = 0; k < sig.length; k++) {
    const i = sig[k]!;
    const w = lower(toks[i]);
    if (w !== 'with' && !(toks[i]!.text === ',' && ctes.size > 0)) continue;
    let j = k + 1;
    if (lower(toks[sig[j] ?? -1]) === 'recursive') j++;
    const name = toks[sig[j] ?? -1];
    if (name?.kind === 'ident' && lower(toks[sig[j + 1] ?? -1]) === 'as' && toks[sig[j + 2] ?? -1]?.text === '(') ctes.add(name.text.toLowerCase());
  }

  const tenantParams: number[] = [];
  const readDerived = (table: string): string => {
    const info = ctx.tables.get(table)!;
    const cols = LOCAL_TENANTLESS.has(table) ? info.columns.filter((c) => c !== 'tenant_id') : info.columns;
    return `(SELECT ${cols.map(qi).join(', ')} FROM ${qi(ctx.schema)}.${qi(table)} WHERE tenant_id = ${T})`;
  };

  // FROM-list state per depth: true between FROM and the clause that ends the list.
  const inFrom: boolean[] = [];
  let target: { k: number; table: string; kind: 'insert' | 'update' | 'delete' } | undefined;

  for (let k = 0; k < sig.length; k++) {
    const i = sig[k]!;
    const t = toks[i]!;
    const depth = depthAt[i]!;
    const w = lower(t);
    // `IS DISTINCT FROM x` and FROM in a function's parentheses name no table.
    const clause = queryAt[depth] === true && lower(toks[prevSig(k) ?? -1]) !== 'distinct';
    if ((w === 'from' || w === 'join') && clause) {
      inFrom[depth] = w === 'from' || inFrom[depth] === true;
      continue;
    }
    if (FROM_LIST_END.has(w)) inFrom[depth] = false;
    if (t.kind === 'qident' && ctx.tables.has(t.text.slice(1, -1).replace(/""/g, '"').toLowerCase())) throw refuse(`the quoted table name ${t.text}`, sql);
    if (t.kind !== 'ident') continue;
    const name = w;
    const p = prevSig(k);
    const nx = nextSig(k);
    const prevClause = p !== undefined && queryAt[depthAt[p]!] === true && lower(toks[prevSig(k - 1) ?? -1]) !== 'distinct';
    const prevWord = (lower(toks[p ?? -1]) === 'from' || lower(toks[p ?? -1]) === 'join') && !prevClause ? '' : lower(toks[p ?? -1]);
    const nextText = nx === undefined ? '' : toks[nx]!.text;
    const isTable = ctx.tables.has(name);
    // A schema-qualified name would bypass the tenant filter: refuse any `x.y` after FROM/JOIN/INTO/UPDATE.
    // `ON CONFLICT … DO UPDATE SET`: UPDATE there names no table.
    const doUpdate = prevWord === 'update' && p !== undefined && lower(toks[prevSig(k - 1) ?? -1]) === 'do';
    const tablePosition = prevWord === 'from' || prevWord === 'join' || prevWord === 'into' || (prevWord === 'update' && !doUpdate) || (toks[p ?? -1]?.text === ',' && inFrom[depth] === true);
    if (tablePosition && nextText === '.') throw refuse(`a schema-qualified table (${name}.…)`, sql);
    if (!isTable) {
      if (tablePosition && prevWord !== 'into' && prevWord !== 'update' && !ctes.has(name) && !(nextText === '(')) {
        throw refuse(`the table ${name}, which PostgreSQL does not have (or that is SQLite-only)`, sql);
      }
      if (tablePosition && (prevWord === 'into' || prevWord === 'update')) throw refuse(`the table ${name}, which PostgreSQL does not have`, sql);
      continue;
    }
    // A qualifier (`l.row_id`) names the derived table's alias: fine.
    if (nextText === '.') continue;
    if (!tablePosition) {
      // A column may share a name with no table here; a table name anywhere else is unexpected.
      throw refuse(`the table ${name} in a position where no tenant filter can be applied`, sql);
    }
    if (prevWord === 'into') {
      if (first !== 'insert' || depth !== 0 || target) throw refuse(`INTO ${name} outside an INSERT`, sql);
      target = { k, table: name, kind: 'insert' };
      continue;
    }
    if (prevWord === 'update') {
      if (first !== 'update' || depth !== 0 || target) throw refuse(`UPDATE ${name} inside another statement`, sql);
      target = { k, table: name, kind: 'update' };
      continue;
    }
    if (first === 'delete' && depth === 0 && !target && prevWord === 'from') {
      target = { k, table: name, kind: 'delete' };
      continue;
    }
    // A read: the tenant's rows only. Keep an alias if one follows, else alias it by its name.
    const aliased = nx !== undefined && (lower(toks[nx]) === 'as' || (toks[nx]!.kind === 'ident' && !CLAUSE_WORDS.has(lower(toks[nx]))));
    out[i] = aliased ? readDerived(name) : `${readDerived(name)} AS ${qi(name)}`;
  }

  if (first === 'insert') insertRewrite();
  else if (first === 'update' || first === 'delete') whereRewrite();
  else if (target) throw refuse('a write inside a read', sql);

  // SQLite's SELECT * does not return its implicit rowid; PostgreSQL's explicit one would show.
  // It is kept only when the select list names it.
  let keepRowid = false;
  let inList = false;
  for (const i of sig) {
    if (depthAt[i] !== 0) continue;
    const w = lower(toks[i]);
    if (w === 'select') inList = true;
    else if (w === 'from') inList = false;
    else if (inList && w === 'rowid') keepRowid = true;
  }
  const text = out.join('');
  return { text, params, tenantParams, keepRowid, usesTenant: new RegExp(`\\$${params + 1}(?![0-9])`).test(text) };

  function whereRewrite(): void {
    if (!target || target.kind === 'insert') throw refuse(`${first.toUpperCase()} of a table PostgreSQL does not have`, sql);
    const tk = target.k;
    const after = sig[tk + 1];
    const nextWord = lower(toks[after ?? -1]);
    if (after !== undefined && nextWord !== 'set' && nextWord !== 'where' && nextWord !== 'returning') throw refuse(`an alias or clause after ${target.table} (${toks[after]!.text})`, sql);
    out[sig[tk]!] = `${qi(ctx.schema)}.${qi(target.table)}`;
    let whereK = -1;
    let returningK = -1;
    for (let k = tk + 1; k < sig.length; k++) {
      const i = sig[k]!;
      if (depthAt[i] !== 0) continue;
      const w = lower(toks[i]);
      if (w === 'where' && whereK < 0) whereK = k;
      if (w === 'returning') returningK = k;
      if (w === 'from' && target.kind === 'update') throw refuse('UPDATE … FROM', sql);
    }
    if (target.kind === 'update') {
      // SET tenant_id = … would move a row to another tenant.
      const setEnd = whereK >= 0 ? whereK : returningK >= 0 ? returningK : sig.length;
      for (let k = tk + 1; k < setEnd; k++) {
        const i = sig[k]!;
        if (depthAt[i] === 0 && lower(toks[i]) === 'tenant_id' && toks[sig[k + 1] ?? -1]?.text === '=') throw refuse('an UPDATE of tenant_id', sql);
      }
    }
    const cond = `${qi(target.table)}.tenant_id = ${T}`;
    if (whereK >= 0) {
      const wi = sig[whereK]!;
      out[wi] = `WHERE ${cond} AND (`;
      const closeAt = returningK >= 0 ? sig[returningK]! : toks.length;
      if (closeAt === toks.length) out.push(')');
      else out[closeAt] = `) ${out[closeAt]}`;
    } else if (returningK >= 0) {
      const ri = sig[returningK]!;
      out[ri] = `WHERE ${cond} ${out[ri]}`;
    } else {
      out.push(` WHERE ${cond}`);
    }
  }

  function insertRewrite(): void {
    // INSERT [OR REPLACE | OR IGNORE] INTO t (cols) <VALUES … | SELECT … | WITH …>
    let k = 1;
    let mode: 'plain' | 'replace' | 'ignore' = 'plain';
    if (lower(toks[sig[k]!]) === 'or') {
      const m = lower(toks[sig[k + 1] ?? -1]);
      if (m !== 'replace' && m !== 'ignore') throw refuse(`INSERT OR ${m.toUpperCase()}`, sql);
      mode = m;
      out[sig[k]!] = '';
      out[sig[k + 1]!] = '';
      // drop the whitespace after them too
      for (let i = sig[k]! + 1; i < sig[k + 2]!; i++) out[i] = '';
      k += 2;
    }
    if (lower(toks[sig[k] ?? -1]) !== 'into' || !target || target.k !== k + 1) throw refuse('an INSERT whose target PostgreSQL does not have', sql);
    const table = target.table;
    const info = ctx.tables.get(table)!;
    out[sig[k + 1]!] = `${qi(ctx.schema)}.${qi(table)}`;
    const open = sig[k + 2];
    if (open === undefined || toks[open]!.text !== '(') throw refuse(`an INSERT INTO ${table} without a column list`, sql);
    // The column list.
    const cols: string[] = [];
    let kk = k + 3;
    for (; kk < sig.length; kk++) {
      const t = toks[sig[kk]!]!;
      if (t.text === ')') break;
      if (t.text === ',') continue;
      if (t.kind !== 'ident') throw refuse(`an INSERT INTO ${table} column list with ${t.text}`, sql);
      const c = t.text.toLowerCase();
      if (!info.columns.includes(c)) throw refuse(`the column ${c}, which ${table} does not have on PostgreSQL`, sql);
      cols.push(c);
    }
    const closeK = kk;
    const srcK = closeK + 1;
    const srcWord = lower(toks[sig[srcK] ?? -1]);
    // An upsert clause (SQLite's and PostgreSQL's syntax are the same): its conflict target gets
    // tenant_id, which leads every primary key and unique index on PostgreSQL.
    let conflictK = -1;
    for (let j = srcK; j < sig.length; j++) {
      const i = sig[j]!;
      if (depthAt[i] !== 0) continue;
      if (lower(toks[i]) === 'returning') throw refuse('RETURNING in an INSERT', sql);
      if (lower(toks[i]) === 'on' && lower(toks[sig[j + 1] ?? -1]) === 'conflict' && conflictK < 0) conflictK = j;
    }
    if (conflictK >= 0) {
      if (mode !== 'plain') throw refuse(`INSERT OR ${mode.toUpperCase()} with an ON CONFLICT clause`, sql);
      const p = sig[conflictK + 2];
      if (p !== undefined && toks[p]!.text === '(') {
        const target: string[] = [];
        for (let j = conflictK + 3; j < sig.length && toks[sig[j]!]!.text !== ')'; j++) if (toks[sig[j]!]!.kind === 'ident') target.push(lower(toks[sig[j]!]));
        if (!target.includes('tenant_id')) out[p] = '(tenant_id, ';
      }
      for (let j = conflictK; j < sig.length; j++) {
        const i = sig[j]!;
        if (depthAt[i] === 0 && lower(toks[i]) === 'tenant_id' && toks[sig[j + 1] ?? -1]?.text === '=') throw refuse('an upsert that sets tenant_id', sql);
      }
    }
    const srcEnd = conflictK >= 0 ? conflictK : sig.length;
    const tenantless = LOCAL_TENANTLESS.has(table);
    if (!tenantless && !cols.includes('tenant_id')) throw refuse(`an INSERT INTO ${table} without tenant_id`, sql);
    if (tenantless && cols.includes('tenant_id')) throw refuse(`an INSERT INTO ${table} naming tenant_id, which the local table does not have`, sql);
    const allCols = tenantless ? ['tenant_id', ...cols] : cols;
    if (tenantless) out[open] = `(tenant_id, `;
    if (srcWord === 'values') {
      // Each top-level tuple: the tenant prepended, or its tenant_id slot checked.
      const tIdx = cols.indexOf('tenant_id');
      for (let j = srcK + 1; j < srcEnd; j++) {
        const i = sig[j]!;
        if (depthAt[i] !== 0) continue;
        const tok = toks[i]!;
        if (tok.text === ',') continue;
        if (tok.text !== '(') throw refuse(`${tok.text} after VALUES`, sql);
        if (tenantless) {
          out[i] = `(${T}, `;
        } else {
          // Find the tIdx-th element of this tuple.
          let el = 0;
          let found: Token | undefined;
          let multi = false;
          for (let m = j + 1; m < sig.length; m++) {
            const ti = sig[m]!;
            const tt = toks[ti]!;
            if (depthAt[ti] === 0 && tt.text === ')') break;
            if (depthAt[ti] === 1 && tt.text === ',') {
              el++;
              continue;
            }
            if (el === tIdx) {
              if (found) multi = true;
              found = tt;
            }
          }
          if (!found || multi) throw refuse(`a tenant_id in INSERT INTO ${table} that is not a single ? parameter`, sql);
          if (found.kind === 'param') {
            const idx = toks.slice(0, toks.indexOf(found)).filter((x) => x.kind === 'param').length + 1;
            tenantParams.push(found.text.length > 1 ? Number(found.text.slice(1)) : idx);
          } else {
            throw refuse(`a tenant_id in INSERT INTO ${table} that is not a ? parameter`, sql);
          }
        }
        // Skip to the end of this tuple.
        let m = j + 1;
        while (m < sig.length && !(depthAt[sig[m]!] === 0 && toks[sig[m]!]!.text === ')')) m++;
        j = m;
      }
    } else if (srcWord === 'select' || srcWord === 'with') {
      const from = sig[srcK]!;
      out[from] = tenantless
        ? `SELECT ${T}, kair_src.* FROM (${out[from]}`
        : `SELECT * FROM (${out[from]}`;
      // Rows whose tenant_id is not the tenant's are not inserted (every source read is tenant-filtered already).
      const close = tenantless ? ') AS kair_src' : `) AS kair_src (${cols.map(qi).join(', ')}) WHERE kair_src.tenant_id = ${T}`;
      if (conflictK >= 0) out[sig[conflictK]!] = `${close} ${out[sig[conflictK]!]}`;
      else out.push(close);
    } else {
      throw refuse(`an INSERT INTO ${table} whose rows come from ${srcWord.toUpperCase() || 'nothing'}`, sql);
    }
    if (mode === 'ignore') out.push(' ON CONFLICT DO NOTHING');
    if (mode === 'replace') {
      const pk = info.primaryKey;
      if (!pk.every((c) => allCols.includes(c))) throw refuse(`INSERT OR REPLACE INTO ${table} without its whole primary key (${pk.join(', ')})`, sql);
      const rest = allCols.filter((c) => !pk.includes(c));
      out.push(rest.length ? ` ON CONFLICT (${pk.map(qi).join(', ')}) DO UPDATE SET ${rest.map((c) => `${qi(c)} = EXCLUDED.${qi(c)}`).join(', ')}` : ` ON CONFLICT (${pk.map(qi).join(', ')}) DO NOTHING`);
    }
  }
}
