// Times and durations as the user types them, and the step chosen for a range query.

const unitSeconds = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

// parseDuration reads a Prometheus duration ("90s", "1h30m", "2d") or a number of seconds, and returns
// seconds, or throws an Error naming the bad input.
export function parseDuration(text) {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+)(ms|s|m|h|d|w|y)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * unitSeconds[m[2]];
    consumed = re.lastIndex;
  }
  if (s === '' || consumed !== s.length) {
    throw new Error(`"${text}" is not a duration: use units ms, s, m, h, d, w, y (like 1h30m) or seconds`);
  }
  return total;
}

// formatDuration writes seconds the way Prometheus does ("1h30m", "15s").
export function formatDuration(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  let rest = Math.round(seconds);
  let out = '';
  for (const [unit, size] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out || '0s';
}

// parseTime reads a time: empty means now; a number is Unix seconds; otherwise RFC 3339 or anything
// Date.parse accepts (a date-time without a zone is local time). It returns Unix seconds.
export function parseTime(text, now = Date.now() / 1000) {
  const s = text.trim();
  if (s === '' || s === 'now') return now;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const millis = Date.parse(s);
  if (Number.isNaN(millis)) {
    throw new Error(`"${text}" is not a time: use RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds`);
  }
  return millis / 1000;
}

// Steps are picked from this list so that queries over the same range share step-aligned cached results
// in the query-frontend, and the graph's points fall on round times.
const niceSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

// autoStep returns a step giving about `points` points over the range.
export function autoStep(rangeSeconds, points = 250) {
  const raw = rangeSeconds / points;
  for (const step of niceSteps) {
    if (step >= raw) return step;
  }
  return Math.ceil(raw / 86400) * 86400;
}

// formatTime writes Unix seconds as an RFC 3339 time in UTC, to the millisecond when it has any.
export function formatTime(seconds) {
  const iso = new Date(seconds * 1000).toISOString();
  return iso.endsWith('.000Z') ? iso.replace('.000Z', 'Z') : iso;
}
