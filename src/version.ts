declare const __KAIR_VERSION__: string | undefined;

/** Injected by the bundle; the fallback keeps unbundled test runs working. */
export const VERSION: string = typeof __KAIR_VERSION__ === 'string' ? __KAIR_VERSION__ : '0.0.0-dev';

export const SCHEMA_VERSIONS = {
  contract: 'kair.contract.v1',
  plan: 'kair.plan.v1',
  dpc: 'kair.dpc.v1',
  run_request: 'kair.run-request.v1',
  run_result: 'kair.run-result.v1',
  confirm: 'kair.confirm.v1',
} as const;
