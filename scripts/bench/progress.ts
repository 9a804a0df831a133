/*
 * progress.ts — the progress bar on stderr while the runs go (cli-progress).
 *
 * The bar counts runs, each worth RUN_UNITS, and moves within a run as its target reports
 * (a fraction of its duration or transactions). It is drawn only when stderr is a terminal:
 * piped or redirected output gets no control characters. Nothing else prints while it is
 * drawn: bench.ts reports after stop().
 */
import cliProgress from 'cli-progress';

const RUN_UNITS = 1000;

export interface Progress {
  /** Run `index` (0-based) of the total is under way, `fraction` done. */
  update(index: number, fraction: number, label: string): void;
  stop(): void;
}

export function progressBar(totalRuns: number, enabled: boolean): Progress {
  if (!enabled || process.stderr.isTTY !== true) {
    return { update: () => {}, stop: () => {} };
  }
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: ' {bar} {percentage}% | run {run}/{runs} | {label} | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  bar.start(totalRuns * RUN_UNITS, 0, { run: 0, runs: totalRuns, label: 'starting' });
  return {
    update: (index, fraction, label) => {
      const within = Math.min(1, Math.max(0, fraction));
      bar.update(Math.round((index + within) * RUN_UNITS), { run: index + 1, runs: totalRuns, label });
    },
    stop: () => bar.stop(),
  };
}
