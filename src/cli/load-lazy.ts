/**
 * Loads the commands the first bundle does not contain. The built CLI splits them by command
 * family (scripts/build.mjs, docs/decisions/010): `handlers` (lifecycle and run) in
 * dist/kair-lifecycle.cjs, every other export of lazy.ts in dist/kair-cmd.cjs, and a bundle is
 * required only when one of its exports is used. Unbundled (tests importing the source) it is an
 * ordinary dynamic import of lazy.ts.
 */
import type * as Lazy from './lazy.js';

declare const require: ((id: string) => unknown) | undefined;
declare const __dirname: string | undefined;
declare const __KAIR_BUNDLED__: boolean | undefined;

type LazyModule = typeof Lazy;
type Bundle = 'kair-cmd.cjs' | 'kair-lifecycle.cjs';

/** Exports served by a bundle other than kair-cmd.cjs (which has them all). */
const BUNDLE_OF: Partial<Record<keyof LazyModule, Bundle>> = { handlers: 'kair-lifecycle.cjs', localWrites: 'kair-lifecycle.cjs' };

function requireBundle(name: Bundle): LazyModule {
  // bin/kair.js compiles bundles with a V8 code cache; fall back to require without it.
  const cached = (globalThis as { __kairLoadCached?: (file: string) => unknown }).__kairLoadCached;
  if (cached && typeof __dirname === 'string') return cached(`${__dirname}/${name}`) as LazyModule;
  return (name === 'kair-lifecycle.cjs' ? require!('./kair-lifecycle.cjs') : require!('./kair-cmd.cjs')) as LazyModule;
}

let split: LazyModule | undefined;

export async function loadLazy(): Promise<LazyModule> {
  if (typeof __KAIR_BUNDLED__ === 'boolean' && typeof require === 'function') {
    const loaded = new Map<Bundle, LazyModule>();
    const bundle = (name: Bundle) => loaded.get(name) ?? loaded.set(name, requireBundle(name)).get(name)!;
    // A Proxy rather than one getter per export, so an export added to lazy.ts needs no change
    // here. `then` is what `await` probes: answering it would load a bundle for nothing.
    split ??= new Proxy({} as LazyModule, {
      get: (_, key) => (typeof key !== 'string' || key === 'then' ? undefined : bundle(BUNDLE_OF[key as keyof LazyModule] ?? 'kair-cmd.cjs')[key as keyof LazyModule]),
    });
    return split;
  }
  return import('./lazy.js');
}
