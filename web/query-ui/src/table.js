// Results of instant queries as a table: one row per series of a vector or matrix, or the one value of a
// scalar or string. All text goes in through textContent, never as HTML: label values are user data.

import { formatTime } from './time.js';

// Rows past this are not drawn: a browser slows to a crawl long before a user can read them.
export const maxTableRows = 1000;

// seriesName writes a label set as PromQL does: name{label="value", ...}.
export function seriesName(metric) {
  const { __name__: name = '', ...labels } = metric || {};
  const pairs = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  if (pairs.length === 0) return name || '{}';
  return `${name}{${pairs.join(', ')}}`;
}

// formatHistogram summarises a native histogram sample ({count, sum, buckets}).
function formatHistogram(h) {
  const buckets = Array.isArray(h?.buckets) ? h.buckets.length : 0;
  return `histogram: count=${h?.count} sum=${h?.sum} (${buckets} buckets)`;
}

function sampleText(sample) {
  if (sample.histogram) return formatHistogram(sample.histogram[1]);
  return String(sample.value?.[1]);
}

function matrixText(series) {
  const lines = (series.values || []).map(([t, v]) => `${v} @${formatTime(t)}`);
  for (const [t, h] of series.histograms || []) lines.push(`${formatHistogram(h)} @${formatTime(t)}`);
  return lines.join('\n');
}

function cell(tag, text, className) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (className) el.className = className;
  return el;
}

// renderTable draws an instant query's data into container and returns a sentence about what it shows.
export function renderTable(container, data) {
  const table = document.createElement('table');
  table.className = 'result-table';
  const head = table.createTHead().insertRow();
  const body = table.createTBody();
  const { resultType, result } = data;
  let rows = [];
  switch (resultType) {
    case 'vector':
      head.append(cell('th', 'Series'), cell('th', 'Value'));
      rows = result.map((s) => [seriesName(s.metric), sampleText(s)]);
      break;
    case 'matrix':
      head.append(cell('th', 'Series'), cell('th', 'Values'));
      rows = result.map((s) => [seriesName(s.metric), matrixText(s)]);
      break;
    case 'scalar':
    case 'string':
      head.append(cell('th', resultType === 'scalar' ? 'Scalar' : 'String'), cell('th', 'Time'));
      rows = [[String(result[1]), formatTime(result[0])]];
      break;
    default:
      throw new Error(`unknown result type "${resultType}"`);
  }
  for (const [first, second] of rows.slice(0, maxTableRows)) {
    const tr = body.insertRow();
    tr.append(cell('td', first, 'series'), cell('td', second, 'value'));
  }
  if (rows.length === 0) {
    const tr = body.insertRow();
    const td = cell('td', 'Empty result: no series matched at this time.', 'empty');
    td.colSpan = 2;
    tr.append(td);
  }
  container.replaceChildren(table);
  const shown = rows.length > maxTableRows ? `, showing the first ${maxTableRows}` : '';
  if (resultType === 'vector' || resultType === 'matrix') {
    return `${resultType}, ${rows.length} series${shown}`;
  }
  return resultType;
}
