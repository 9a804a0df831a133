/*
 * svg.ts — the latency chart --svg writes: p50 and p99 commit latency bars per
 * synchronous_commit level, on a log scale, written as SVG text by hand.
 *
 * One group of bars per (clients, synchronous_standby_names, mode) combination, in the
 * order the runs were made; within a group a p50 and a p99 bar per system (walship, and
 * PostgreSQL when compared). Under the modes, each run of groups with the same clients and
 * synchronous_standby_names is captioned once. The y axis spans whole decades of milliseconds around the
 * data. Every bar carries a <title> with its value, so a browser shows it on hover.
 */
import { formatMillis } from './latency.js';
import type { CombinationResult } from './report.js';
import type { SystemName } from './target.js';

const BAR_WIDTH = 16;
const BAR_GAP = 2;
const GROUP_GAP = 28;
const PLOT_HEIGHT = 300;
const MARGIN = { top: 56, right: 24, bottom: 96, left: 72 };
/** Wide enough for the title. */
const MIN_WIDTH = 600;
/** A generous width of one character of a 12px sans-serif label, to keep labels apart. */
const LABEL_CHAR_WIDTH = 7.5;
const FONT = 'font-family="sans-serif"';

const COLOURS: Record<SystemName, { p50: string; p99: string }> = {
  walship: { p50: '#2f6db5', p99: '#9cc3ec' },
  postgresql: { p50: '#c0392b', p99: '#f1a39a' },
};

export function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;');
}

interface Group {
  readonly label: string;
  /** "1 client, FIRST 1 (s1, s2)": shared by the groups of one section. */
  readonly section: string;
  readonly bars: { system: SystemName; percentile: 'p50' | 'p99'; us: number }[];
}

function groupsOf(results: readonly CombinationResult[]): Group[] {
  const groups = new Map<string, Group>();
  for (const r of results) {
    const key = JSON.stringify([r.clients, r.standbyNames, r.mode]);
    let group = groups.get(key);
    if (group === undefined) {
      const section = `${r.clients} client${r.clients === 1 ? '' : 's'}, synchronous_standby_names = '${r.standbyNames}'`;
      group = { label: r.mode, section, bars: [] };
      groups.set(key, group);
    }
    group.bars.push({ system: r.system, percentile: 'p50', us: r.latency.p50Us }, { system: r.system, percentile: 'p99', us: r.latency.p99Us });
  }
  return [...groups.values()];
}

/** 10^decade µs in ms, as written on the axis: 0.01, 0.1, 1, 10, ... */
function decadeLabel(decade: number): string {
  return decade >= 3 ? String(10 ** (decade - 3)) : `0.${'0'.repeat(2 - decade)}1`;
}

/** The chart of `results` as a complete SVG document. */
export function latencySvg(results: readonly CombinationResult[], subtitle: string): string {
  const groups = groupsOf(results);
  const values = groups.flatMap((g) => g.bars.map((b) => Math.max(1, b.us)));
  const lowDecade = Math.floor(Math.log10(Math.min(...values, 1000)));
  const highDecade = Math.max(lowDecade + 1, Math.ceil(Math.log10(Math.max(...values, 1))));
  const y = (us: number): number => MARGIN.top + PLOT_HEIGHT * (1 - (Math.log10(Math.max(1, us)) - lowDecade) / (highDecade - lowDecade));
  const barsWidth = (g: Group): number => g.bars.length * (BAR_WIDTH + BAR_GAP) - BAR_GAP;
  const groupWidth = (g: Group): number => Math.max(barsWidth(g), g.label.length * LABEL_CHAR_WIDTH);
  const plotWidth = Math.max(MIN_WIDTH - MARGIN.left - MARGIN.right, groups.reduce((sum, g) => sum + groupWidth(g) + GROUP_GAP, GROUP_GAP));
  const width = MARGIN.left + plotWidth + MARGIN.right;
  const height = MARGIN.top + PLOT_HEIGHT + MARGIN.bottom;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="22" ${FONT} font-size="15" font-weight="bold">Commit latency by synchronous_commit (p50 and p99, log scale)</text>`,
    `<text x="${MARGIN.left}" y="40" ${FONT} font-size="12" fill="#555555">${escapeXml(subtitle)}</text>`,
  ];
  for (let decade = lowDecade; decade <= highDecade; decade++) {
    const at = y(10 ** decade);
    out.push(`<line x1="${MARGIN.left}" y1="${at.toFixed(1)}" x2="${MARGIN.left + plotWidth}" y2="${at.toFixed(1)}" stroke="#dddddd"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${(at + 4).toFixed(1)}" ${FONT} font-size="12" text-anchor="end">${decadeLabel(decade)} ms</text>`);
  }
  let x = MARGIN.left + GROUP_GAP;
  let sectionStart = x;
  for (const [g, group] of groups.entries()) {
    for (const [i, bar] of group.bars.entries()) {
      const left = x + (groupWidth(group) - barsWidth(group)) / 2 + i * (BAR_WIDTH + BAR_GAP);
      const top = y(bar.us);
      out.push(`<rect x="${left}" y="${top.toFixed(1)}" width="${BAR_WIDTH}" height="${(MARGIN.top + PLOT_HEIGHT - top).toFixed(1)}" fill="${COLOURS[bar.system][bar.percentile]}">` +
        `<title>${escapeXml(`${bar.system} ${group.label} ${bar.percentile}: ${formatMillis(bar.us)} ms`)}</title></rect>`);
    }
    const centre = x + groupWidth(group) / 2;
    out.push(`<text x="${centre}" y="${MARGIN.top + PLOT_HEIGHT + 18}" ${FONT} font-size="12" text-anchor="middle">${escapeXml(group.label)}</text>`);
    x += groupWidth(group) + GROUP_GAP;
    if (groups[g + 1]?.section !== group.section) {
      const sectionEnd = x - GROUP_GAP;
      const below = MARGIN.top + PLOT_HEIGHT + 28;
      out.push(`<line x1="${sectionStart}" y1="${below}" x2="${sectionEnd}" y2="${below}" stroke="#999999"/>`);
      out.push(`<text x="${(sectionStart + sectionEnd) / 2}" y="${below + 14}" ${FONT} font-size="11" text-anchor="middle" fill="#555555">${escapeXml(group.section)}</text>`);
      sectionStart = x;
    }
  }
  out.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top + PLOT_HEIGHT}" x2="${MARGIN.left + plotWidth}" y2="${MARGIN.top + PLOT_HEIGHT}" stroke="#333333"/>`);
  out.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + PLOT_HEIGHT}" stroke="#333333"/>`);
  const systems = [...new Set(results.map((r) => r.system))];
  let legendX = MARGIN.left;
  const legendY = height - 16;
  for (const system of systems) {
    for (const percentile of ['p50', 'p99'] as const) {
      out.push(`<rect x="${legendX}" y="${legendY - 10}" width="12" height="12" fill="${COLOURS[system][percentile]}"/>`);
      out.push(`<text x="${legendX + 16}" y="${legendY}" ${FONT} font-size="12">${system} ${percentile}</text>`);
      legendX += 130;
    }
  }
  out.push('</svg>', '');
  return out.join('\n');
}
