// The query page: the tenant field, the editor and the query options, and the result as a table or a
// graph. The page's state (expression and options) lives in the URL's fragment so that a query can be
// shared as a link; the tenant does not, because the one who opens the link may be another tenant.

import './style.css';
import { APIError, getAPI } from './api.js';
import { StrataCompletionClient } from './completion.js';
import { createEditor } from './editor.js';
import { Graph } from './graph.js';
import { renderTable } from './table.js';
import { autoStep, formatDuration, parseDuration, parseTime } from './time.js';

const tenantStorageKey = 'strata.query.tenant';
// Autocompletion looks at least this far back, so names are offered for an instant query too.
const completionLookbackSeconds = 12 * 3600;

const $ = (id) => document.getElementById(id);
const form = $('query-form');
const tenantInput = $('tenant');
const rangeInput = $('range');
const startInput = $('start');
const endInput = $('end');
const stepInput = $('step');
const statusBox = $('status');
const errorBox = $('error');
const warningsList = $('warnings');
const resultBox = $('result');

function mode() {
  return form.elements.mode.value;
}

function setMode(value) {
  form.elements.mode.value = value === 'instant' ? 'instant' : 'range';
  document.body.dataset.mode = mode();
}

function loadTenant() {
  try {
    return localStorage.getItem(tenantStorageKey) || '';
  } catch {
    return ''; // storage may be disabled; the field still works for this visit
  }
}

function saveTenant(value) {
  try {
    localStorage.setItem(tenantStorageKey, value);
  } catch {
    // as above
  }
}

// queryTimes reads the time options; it throws an Error that names the bad field.
function queryTimes() {
  const now = Date.now() / 1000;
  const field = (name, fn) => {
    try {
      return fn();
    } catch (err) {
      throw new Error(`${name}: ${err.message}`);
    }
  };
  let end = field('End', () => parseTime(endInput.value, now));
  if (mode() === 'instant') return { time: endInput.value.trim() ? end : undefined, end };
  const explicitStart = startInput.value.trim() !== '';
  let start = explicitStart
    ? field('Start', () => parseTime(startInput.value, now))
    : end - field('Range', () => parseDuration(rangeInput.value || '1h'));
  if (!(start < end)) throw new Error('Start must be before end');
  const step = stepInput.value.trim() ? field('Step', () => parseDuration(stepInput.value)) : autoStep(end - start);
  if (!(step > 0)) throw new Error('Step must be more than zero');
  if (!explicitStart) {
    // A relative range is widened to whole steps: its points fall on round times, and the
    // query-frontend's results cache, which keeps step-aligned results, can answer repeated queries.
    start = Math.floor(start / step) * step;
    end = Math.ceil(end / step) * step;
  }
  return { start, end, step };
}

// completionWindow is the time range the autocompletion asks about: the query's own, widened to at
// least the last 12 hours before its end.
function completionWindow() {
  let times;
  try {
    times = queryTimes();
  } catch {
    times = { end: Date.now() / 1000 };
  }
  const end = times.end;
  const start = Math.min(times.start ?? end, end - completionLookbackSeconds);
  return { start, end };
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function showNotes(warnings, infos) {
  const items = [...warnings.map((w) => ['warning', w]), ...infos.map((i) => ['info', i])];
  warningsList.replaceChildren(
    ...items.map(([kind, text]) => {
      const li = document.createElement('li');
      li.className = kind;
      li.textContent = text;
      return li;
    }),
  );
  warningsList.hidden = items.length === 0;
}

function setStatus(state, text) {
  statusBox.dataset.state = state;
  statusBox.textContent = text;
}

function saveToURL(expr) {
  const params = new URLSearchParams({ expr, mode: mode() });
  for (const [name, input] of [['range', rangeInput], ['start', startInput], ['end', endInput], ['step', stepInput]]) {
    if (input.value.trim()) params.set(name, input.value.trim());
  }
  history.replaceState(null, '', `#${params}`);
}

function loadFromURL() {
  const params = new URLSearchParams(location.hash.slice(1));
  setMode(params.get('mode') || 'range');
  for (const [name, input] of [['range', rangeInput], ['start', startInput], ['end', endInput], ['step', stepInput]]) {
    if (params.has(name)) input.value = params.get(name);
  }
  return params.get('expr') || '';
}

const graph = new Graph(resultBox);
let inFlight = null;

async function run() {
  const expr = editor.text().trim();
  errorBox.hidden = true;
  showNotes([], []);
  if (!expr) {
    showError('Type a PromQL expression first.');
    return;
  }
  let times;
  try {
    times = queryTimes();
  } catch (err) {
    showError(err.message);
    return;
  }
  saveToURL(expr);
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  const tenant = tenantInput.value.trim();
  const params =
    mode() === 'instant'
      ? { query: expr, time: times.time }
      : { query: expr, start: times.start, end: times.end, step: times.step };
  setStatus('running', 'Running…');
  const began = performance.now();
  try {
    const { data, warnings, infos } = await getAPI(tenant, mode() === 'instant' ? 'query' : 'query_range', params, {
      signal: controller.signal,
    });
    const took = Math.round(performance.now() - began);
    let summary;
    if (mode() === 'range' && data.resultType === 'matrix') {
      summary = graph.render(data.result, times);
      summary += `, step ${formatDuration(times.step)}`;
    } else {
      graph.destroy();
      summary = renderTable(resultBox, data);
    }
    showNotes(warnings, infos);
    setStatus('done', `${summary} · ${took} ms`);
  } catch (err) {
    if (err.name === 'AbortError') return;
    graph.destroy();
    resultBox.replaceChildren();
    const prefix = err instanceof APIError && err.errorType ? `${err.errorType}: ` : '';
    showError(prefix + err.message);
    setStatus('error', 'The query failed.');
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

tenantInput.value = loadTenant();
tenantInput.addEventListener('input', () => saveTenant(tenantInput.value.trim()));

const completion = new StrataCompletionClient({
  tenant: () => tenantInput.value.trim(),
  window: completionWindow,
});

const editor = createEditor($('editor'), { doc: loadFromURL(), client: completion, onRun: run });

form.addEventListener('submit', (event) => {
  event.preventDefault();
  run();
});
form.addEventListener('change', (event) => {
  if (event.target.name === 'mode') setMode(event.target.value);
});
window.addEventListener('hashchange', () => {
  const expr = loadFromURL();
  if (expr !== editor.text()) {
    editor.view.dispatch({ changes: { from: 0, to: editor.view.state.doc.length, insert: expr } });
  }
});

if (editor.text()) run();
editor.focus();
document.body.dataset.ready = 'true';
