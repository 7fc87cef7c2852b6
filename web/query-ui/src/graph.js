// Range query results as a time-series graph drawn by uPlot on a canvas: one line per series, a legend
// of label sets (click one to hide or show its line) and a tooltip with the series nearest the pointer.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { seriesName } from './table.js';
import { formatTime } from './time.js';

// Series past this are left out of the graph: their lines would be an unreadable mass and each costs a
// pass over every point on each redraw.
export const maxGraphSeries = 500;
const graphHeight = 380;

// color picks well-separated hues by stepping round the colour wheel by the golden angle.
function color(i) {
  return `hsl(${Math.round((i * 137.508 + 200) % 360)}, 70%, 42%)`;
}

// sampleValue turns a JSON sample value into a number uPlot can draw; NaN and infinities become gaps.
function sampleValue(text) {
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}

// align puts every series on the query's step grid, the x values uPlot needs to share across series.
function align(result, start, end, step) {
  const n = Math.floor((end - start) / step + 1e-9) + 1;
  const xs = new Array(n);
  for (let k = 0; k < n; k++) xs[k] = start + k * step;
  const ys = result.map((s) => {
    const column = new Array(n).fill(null);
    for (const [t, v] of s.values || []) {
      const k = Math.round((t - start) / step);
      if (k >= 0 && k < n) column[k] = sampleValue(v);
    }
    return column;
  });
  return [xs, ...ys];
}

function tooltipPlugin(names) {
  let tip;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement('div');
        tip.className = 'graph-tooltip';
        tip.hidden = true;
        u.over.append(tip);
      },
      setCursor: (u) => {
        const { idx, left, top } = u.cursor;
        if (idx == null || left < 0) {
          tip.hidden = true;
          return;
        }
        // The series whose point at this time is closest to the pointer, among those shown.
        let best = -1;
        let bestDistance = Infinity;
        for (let i = 1; i < u.series.length; i++) {
          const v = u.data[i][idx];
          if (!u.series[i].show || v == null) continue;
          const d = Math.abs(u.valToPos(v, 'y') - top);
          if (d < bestDistance) {
            best = i;
            bestDistance = d;
          }
        }
        if (best < 0) {
          tip.hidden = true;
          return;
        }
        const time = document.createElement('div');
        time.className = 'time';
        time.textContent = formatTime(u.data[0][idx]);
        const name = document.createElement('div');
        name.className = 'name';
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = color(best - 1);
        name.append(swatch, names[best - 1]);
        const value = document.createElement('div');
        value.className = 'value';
        value.textContent = String(u.data[best][idx]);
        tip.replaceChildren(time, name, value);
        tip.hidden = false;
        // Keep the tooltip inside the plot: flip it to the pointer's other side near the edges.
        const overWidth = u.over.clientWidth;
        const overHeight = u.over.clientHeight;
        const x = left + 12 + tip.offsetWidth > overWidth ? left - 12 - tip.offsetWidth : left + 12;
        const y = top + 12 + tip.offsetHeight > overHeight ? top - 12 - tip.offsetHeight : top + 12;
        tip.style.transform = `translate(${Math.max(0, x)}px, ${Math.max(0, y)}px)`;
      },
    },
  };
}

function renderLegend(u, names) {
  const list = document.createElement('ul');
  list.className = 'legend';
  names.forEach((name, i) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = color(i);
    item.append(swatch, name);
    item.title = 'Click to hide or show this series';
    item.addEventListener('click', () => {
      const show = !u.series[i + 1].show;
      u.setSeries(i + 1, { show });
      item.classList.toggle('hidden', !show);
    });
    list.append(item);
  });
  return list;
}

// Graph is the graph currently on the page; render replaces it.
export class Graph {
  constructor(container) {
    this.container = container;
    this.plot = null;
    this.resizeObserver = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.plotWidth(), height: graphHeight });
    });
    this.resizeObserver.observe(container);
  }

  plotWidth() {
    return Math.max(300, this.container.clientWidth);
  }

  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  // render draws a matrix result queried over [start, end] at step (Unix seconds) and returns a sentence
  // about what it shows.
  render(result, { start, end, step }) {
    this.destroy();
    const floats = result.filter((s) => (s.values || []).length > 0);
    const histogramsOnly = result.length - floats.length;
    const drawn = floats.slice(0, maxGraphSeries);
    const names = drawn.map((s) => seriesName(s.metric));
    const wrapper = document.createElement('div');
    wrapper.className = 'graph';
    const plotArea = document.createElement('div');
    wrapper.append(plotArea);
    this.container.replaceChildren(wrapper);
    if (drawn.length === 0) {
      const empty = document.createElement('p');
      empty.className = 'empty';
      empty.textContent = histogramsOnly > 0 ? 'The result holds native histograms only, which the graph does not draw; use the table (an instant query).' : 'Empty result: no series matched in this range.';
      wrapper.replaceChildren(empty);
      return `matrix, ${result.length} series`;
    }
    const opts = {
      width: this.plotWidth(),
      height: graphHeight,
      scales: { x: { time: true } },
      // Times in UTC, as the tooltip and the table show them: one clock on the whole page.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      series: [{}, ...names.map((name, i) => ({ label: name, stroke: color(i), width: 1.5 }))],
      axes: [{}, { size: 70 }],
      legend: { show: false },
      cursor: { drag: { x: true, y: false } },
      plugins: [tooltipPlugin(names)],
    };
    this.plot = new uPlot(opts, align(drawn, start, end, step), plotArea);
    wrapper.append(renderLegend(this.plot, names));
    let sentence = `matrix, ${result.length} series`;
    if (floats.length > maxGraphSeries) sentence += `, graphing the first ${maxGraphSeries}`;
    if (histogramsOnly > 0) sentence += `, ${histogramsOnly} of native histograms not graphed`;
    return sentence;
  }
}
