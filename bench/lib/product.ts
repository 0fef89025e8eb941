/**
 * The built server (server/dist, compiled by tsc) as the processes under test run it. Modules are
 * typed from their sources and loaded from the build, so a benchmark helper that runs product
 * code in process (the ceiling server, the signing loop) runs the same build as the gateway.
 */
export function distUrl(module: string): string {
  return new URL(`../../server/dist/${module}.js`, import.meta.url).href;
}

export async function loadBuilt<T>(module: string): Promise<T> {
  return (await import(distUrl(module))) as T;
}
