// The data source of the editor's autocompletion: codemirror-promql asks it for metric names, label
// names and label values, and it answers from Strata's label endpoints as the page's tenant. It is ours
// rather than the library's HTTP client so that each request carries the tenant header, narrows label
// lookups with match[] to the metric and matchers already typed, and looks at the time window the user
// is querying rather than a fixed one.

import { EqlRegex, EqlSingle, Neq, NeqRegex } from '@prometheus-io/lezer-promql';
import { getAPI } from './api.js';

// Answers are kept this long so that typing does not send a request per keystroke.
const cacheTTLMillis = 60_000;
// Completion lists longer than this are cut: the editor cannot usefully show more.
const maxValues = 10_000;

const matcherOperators = new Map([
  [EqlSingle, '='],
  [Neq, '!='],
  [EqlRegex, '=~'],
  [NeqRegex, '!~'],
]);

// selector builds the series selector for match[] from the metric name and matchers being typed; it is
// empty when nothing narrows the lookup, and leaves out the label being completed (its value is what the
// user is typing) and matchers that match the empty string (they would select every series).
export function selector(metricName, matchers = [], skipLabel = '') {
  const parts = [];
  for (const m of matchers) {
    if (m.name === skipLabel || m.name === '__name__' || m.matchesEmpty()) continue;
    const op = matcherOperators.get(m.type);
    if (!op) continue;
    parts.push(`${m.name}${op}${JSON.stringify(m.value)}`);
  }
  if (!metricName && parts.length === 0) return '';
  return `${metricName || ''}{${parts.join(',')}}`;
}

export class StrataCompletionClient {
  // tenant() returns the tenant to ask as; window() returns {start, end} in Unix seconds.
  constructor({ tenant, window, onError }) {
    this.tenant = tenant;
    this.window = window;
    this.onError = onError || (() => {});
    this.cache = new Map();
  }

  async cached(path, params) {
    const tenant = this.tenant();
    const { start, end } = this.window();
    // The window is rounded to the minute so that repeated lookups while typing share one answer.
    const all = { ...params, start: Math.floor(start / 60) * 60, end: Math.ceil(end / 60) * 60 };
    const key = JSON.stringify([tenant, path, all]);
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.value;
    const value = getAPI(tenant, path, all).then(
      ({ data }) => (Array.isArray(data) ? data.slice(0, maxValues) : data),
      (err) => {
        this.cache.delete(key);
        this.onError(err);
        return Array.isArray(hit?.value) ? hit.value : [];
      },
    );
    this.cache.set(key, { value, expires: Date.now() + cacheTTLMillis });
    return value;
  }

  metricNames() {
    // The prefix being typed is left to the editor's fuzzy matching: one list serves every keystroke.
    return this.cached('label/__name__/values', {});
  }

  labelNames(metricName) {
    const match = selector(metricName);
    return this.cached('labels', { 'match[]': match || undefined });
  }

  labelValues(labelName, metricName, matchers) {
    const match = selector(metricName, matchers, labelName);
    return this.cached(`label/${encodeURIComponent(labelName)}/values`, { 'match[]': match || undefined });
  }

  async metricMetadata() {
    const data = await this.cached('metadata', { limit_per_metric: 1 });
    return data && typeof data === 'object' && !Array.isArray(data) ? data : {};
  }

  async series(metricName, matchers, labelName) {
    const match = selector(metricName, matchers, labelName);
    if (!match) return [];
    const data = await this.cached('series', { 'match[]': match });
    return (data || []).map((labels) => new Map(Object.entries(labels)));
  }

  async flags() {
    // Strata has no flags endpoint; the library only uses flags for optional features.
    return {};
  }
}
