/**
 * Loads the second bundle. In the built CLI this is a plain require of dist/kair-cmd.cjs (a
 * dynamic import() would need a loader callback under the launcher's vm.Script); unbundled
 * (tests importing the source) it is an ordinary dynamic import.
 */
import type * as Lazy from './lazy.js';

declare const require: ((id: string) => unknown) | undefined;
declare const __dirname: string | undefined;
declare const __KAIR_BUNDLED__: boolean | undefined;

export async function loadLazy(): Promise<typeof Lazy> {
  if (typeof __KAIR_BUNDLED__ === 'boolean' && typeof require === 'function') {
    // bin/kair.js compiles bundles with a V8 code cache; fall back to require without it.
    const cached = (globalThis as { __kairLoadCached?: (file: string) => unknown }).__kairLoadCached;
    if (cached && typeof __dirname === 'string') return cached(`${__dirname}/kair-cmd.cjs`) as typeof Lazy;
    return require('./kair-cmd.cjs') as typeof Lazy;
  }
  return import('./lazy.js');
}
