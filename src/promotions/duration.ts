// Go-style durations as Stages write them (`30s`, `2m`, `1h30m`), in whole seconds: pods only take whole seconds.

const DURATION_RE = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Seconds, or undefined when the text is not a duration like `30s`, `2m` or `1h30m`. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  if (!m || text.trim() === '') return undefined;
  const [h, min, s] = [m[1], m[2], m[3]].map((v) => Number(v ?? 0)) as [number, number, number];
  return h * 3600 + min * 60 + s;
}

/** `2m`, `15m`, `1h30m`, `2s`, `0s`: the shortest text parseDuration reads back. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s === 0) return '0s';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${r ? `${r}s` : ''}`;
}
