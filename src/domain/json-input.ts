/**
 * JSON that people hand to kair (plans, simulations, configs): bounded in size and depth, and
 * reported without echoing its contents. Pure: the reading lives in store/fs/input.ts.
 */

/** `limits.max_input_bytes` when the config does not set it. */
export const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024;
/** Deeper input is refused before it is parsed: nothing kair reads nests anywhere near this. */
export const MAX_INPUT_DEPTH = 64;

/** True when `text` opens more than `max` arrays/objects inside each other (strings skipped). */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Offset of the first JSON syntax error in `text` (-1 when there is none). Node's JSON.parse
 * message quotes the text around the error, which may be a secret (a parse error on /etc/passwd
 * printed `root:x:0:0`), so kair reports only where the error is. Only called on text already
 * checked by nestedDeeperThan, so the recursion is shallow.
 */
export function syntaxErrorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw new RangeError(String(i));
  };
  const space = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = () => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 34) return void i++;
      if (c < 0x20) fail();
      if (c === 92) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail();
      } else i++;
    }
    fail();
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          space();
          if (text[i] !== '"') fail();
          string();
          space();
          if (text[i] !== ':') fail();
          i++;
        }
        value();
        space();
        if (text[i] === ',') i++;
        else if (text[i] === close) return void i++;
        else fail();
      }
    }
    if (c === '"') return string();
    for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) return void (i += lit.length);
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) return void (i = NUMBER.lastIndex);
    fail();
  };
  try {
    value();
    space();
    if (i < text.length) fail();
    return -1;
  } catch (e) {
    if (e instanceof RangeError && /^\d+$/.test(e.message)) return Number(e.message);
    throw e;
  }
}

/** "line L, column C" of an offset (both from 1). */
export function lineColumn(text: string, offset: number): string {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return `line ${line}, column ${col}`;
}

export type JsonParse = { ok: true; value: unknown } | { ok: false; message: string };

/** Parses untrusted JSON text; a failure says what is wrong and where, never what is there. */
export function parseJsonInput(text: string, maxDepth = MAX_INPUT_DEPTH): JsonParse {
  if (nestedDeeperThan(text, maxDepth)) return { ok: false, message: `nested deeper than ${maxDepth} levels` };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    const at = syntaxErrorOffset(text);
    return { ok: false, message: at < 0 ? 'not valid JSON' : at >= text.length ? 'not valid JSON: it ends too early' : `not valid JSON at ${lineColumn(text, at)}` };
  }
}

/** JSON text parsed; null when missing or unparsable (what a stored copy that may be absent or torn reads as). */
export function parsedOrNull(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
