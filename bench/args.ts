/*
 * args.ts — `--name value` options of the benchmark scripts.
 */

/** The value after `--name` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

export function numberArg(name: string, fallback: number): number {
  return Number(arg(name, String(fallback)));
}
