/** The pure parts of hostile-input handling: bounded JSON parsing, escaping, the env allow-list. */
import { describe, expect, it } from 'vitest';
import { escapeControls, oneLine } from '../../src/cli/render/text.js';
import { validateConfig, defaultConfig } from '../../src/domain/config.js';
import { nestedDeeperThan, parseJsonInput, syntaxErrorOffset } from '../../src/domain/json-input.js';
import { commandEnv } from '../../src/lanes/aec/executor.js';

describe('parseJsonInput', () => {
  it.each([
    ['root:x:0:0:root:/root', 'not valid JSON at line 1, column 1'],
    ['{"a": 1,\n  "b": s3cr3t}', 'not valid JSON at line 2, column 8'],
    ['{"a": [1, 2', 'not valid JSON: it ends too early'],
    ['{"a": 1} x', 'not valid JSON at line 1, column 10'],
    ['"tab\tinside"', 'not valid JSON at line 1, column 5'],
    ['', 'not valid JSON: it ends too early'],
  ])('%j → %s (position only, never the text)', (text, message) => {
    const r = parseJsonInput(text);
    expect(r).toEqual({ ok: false, message });
  });

  it('agrees with JSON.parse on what is valid', () => {
    for (const t of ['{}', '[]', '0', '-1.5e+3', '"\\u00e9\\n"', '{"a":[true,false,null,{"b":"]"}]}', ' [ 1 , 2 ] ']) {
      expect(syntaxErrorOffset(t), t).toBe(-1);
      expect(parseJsonInput(t)).toEqual({ ok: true, value: JSON.parse(t) });
    }
  });

  it('depth: 64 levels pass, 65 do not; brackets inside strings do not count', () => {
    expect(nestedDeeperThan('['.repeat(64) + ']'.repeat(64), 64)).toBe(false);
    expect(nestedDeeperThan('['.repeat(65) + ']'.repeat(65), 64)).toBe(true);
    expect(nestedDeeperThan(`["${'['.repeat(100)}\\"${'{'.repeat(100)}"]`, 64)).toBe(false);
    expect(parseJsonInput('['.repeat(3000) + ']'.repeat(3000))).toEqual({ ok: false, message: 'nested deeper than 64 levels' });
  });
});

describe('escapeControls / oneLine', () => {
  it('escapes ESC, BEL, CR, C1 and bidi overrides; keeps layout newlines and tabs', () => {
    expect(escapeControls('a\u001b[2J\u001b]0;x\u0007\r\n\tb\u009b\u202e', false)).toBe('a\\x1b[2J\\x1b]0;x\\x07\\r\n\tb\\x9b\\u202e');
  });

  it("keeps kair's colour codes only when colour is on", () => {
    expect(escapeControls('\u001b[32mok\u001b[39m', true)).toBe('\u001b[32mok\u001b[39m');
    expect(escapeControls('\u001b[32mok\u001b[39m', false)).toBe('\\x1b[32mok\\x1b[39m');
    expect(escapeControls('\u001b[2J', true)).toBe('\\x1b[2J');
    // Only the codes kair's painter emits, not any SGR (this one could hide text).
    expect(escapeControls('\u001b[8m\u001b[38;5;1m', true)).toBe('\\x1b[8m\\x1b[38;5;1m');
  });

  it('oneLine also escapes line breaks', () => {
    expect(oneLine('a\nb\r\tc')).toBe('a\\nb\\r\\tc');
  });
});

describe('commandEnv', () => {
  it('passes the fixed allow-list, the env_allow names and the KAIR_* values only', () => {
    const from = { PATH: '/bin', HOME: '/h', GITHUB_TOKEN: 't', AWS_SECRET_ACCESS_KEY: 's', EXTRA: 'e', NODE_OPTIONS: '--require x', KAIR_ACTOR: 'a' };
    expect(commandEnv(from, ['EXTRA', 'MISSING'], { KAIR_STEP_ID: 's1' })).toEqual({ PATH: '/bin', HOME: '/h', EXTRA: 'e', KAIR_STEP_ID: 's1' });
  });
});

describe('config limits', () => {
  it('limits is optional; max_input_bytes must be a positive integer', () => {
    const c = defaultConfig('ws_x');
    expect(validateConfig(c)).toEqual([]);
    expect(validateConfig({ ...c, limits: {} })).toEqual([]);
    expect(validateConfig({ ...c, limits: { max_input_bytes: 2048 } })).toEqual([]);
    expect(validateConfig({ ...c, limits: { max_input_bytes: 0 } })).toEqual([{ path: 'limits.max_input_bytes', message: 'expected a positive integer' }]);
    expect(validateConfig({ ...c, limits: { other: 1 } })).toEqual([{ path: 'limits.other', message: 'unknown key' }]);
  });
});
