// afos serve: the overlay page. Three uPlot charts sharing x (f, f′, f″) of the functions the page names,
// the baselines switched on and off by their boxes, and a slider per learnable constant that asks the
// server for the function's values again with the constant's new value.
// What is drawn comes as JSON (the page's data block and /api/functions/values); labels reach uPlot,
// which writes them as text: this script never builds markup from text.
(function () {
  "use strict";

  const PANELS = [["f", "overlay-f", "f(x)"], ["df", "overlay-df", "f′(x)"], ["d2f", "overlay-d2f", "f″(x)"]];
  const GREY = "#7f7f7f";
  const BASELINE_DASHES = [[6, 4], [2, 3], [10, 3, 2, 3], [1, 4]];
  const POINTS = "401";

  function chartWidth(element) {
    return Math.max(300, Math.min(element.parentElement.clientWidth || 600, 1100));
  }

  function checksum(values) {
    let sum = 0;
    for (const v of values) if (v !== null && isFinite(v)) sum += Math.abs(v);
    return sum.toFixed(6);
  }

  function overlay() {
    const holder = document.getElementById("overlay-data");
    const box = document.getElementById("overlay");
    const form = document.getElementById("overlay-range");
    if (!holder || !box || !form) return;
    const data = JSON.parse(holder.textContent);
    const note = document.getElementById("overlay-note");
    const params = data.functions.map(function (fn) { return Object.assign({}, fn.params); });
    const asked = data.functions.map(function () { return 0; });
    let values = [];
    let charts = [];
    let draws = 0;

    async function valuesOf(expr, constants) {
      const query = new URLSearchParams({expr: expr, lo: form.lo.value, hi: form.hi.value, n: POINTS});
      for (const name of Object.keys(constants || {})) query.set(name, String(constants[name]));
      const answer = await fetch("/api/functions/values?" + query.toString(), {credentials: "same-origin"});
      const body = await answer.json();
      if (!answer.ok) throw new Error(body.error || String(answer.status));
      return body;
    }

    function shownBaselines() {
      const shown = {};
      for (const box of document.querySelectorAll("input.baseline")) shown[box.value] = box.checked;
      return shown;
    }

    function columns(panel) {
      return [values[0].x].concat(values.map(function (v) { return v[panel]; }));
    }

    function marked() {
      draws += 1;
      box.dataset.draws = String(draws);
      box.dataset.checksum = data.functions.length ? checksum(values[0].f) : "";
    }

    function build() {
      for (const chart of charts) chart.destroy();
      charts = [];
      const shown = shownBaselines();
      for (const [panel, id, label] of PANELS) {
        const element = document.getElementById(id);
        element.textContent = "";
        const series = [{label: "x"}];
        data.functions.forEach(function (fn, i) {
          const dash = data.dashes[i % data.dashes.length];
          series.push({label: fn.label, stroke: data.colours[panel][Math.floor(i / data.dashes.length) % 2], width: 2,
                       dash: dash.length ? dash : undefined, points: {show: false}});
        });
        data.baselines.forEach(function (name, j) {
          series.push({label: name, stroke: GREY, width: 1.2, dash: BASELINE_DASHES[j % BASELINE_DASHES.length],
                       show: shown[name] !== false, points: {show: false}});
        });
        charts.push(new uPlot({width: chartWidth(element), height: panel === "f" ? 300 : 190, series: series,
                               scales: {x: {time: false}}, cursor: {sync: {key: "afos-overlay"}},
                               legend: {live: false},  // names, never "--" before the cursor is over a chart
                               axes: [{label: "x"}, {label: label}]}, columns(panel), element));
      }
      marked();
    }

    async function drawAll() {
      try {
        const texts = data.functions.map(function (fn, i) { return valuesOf(fn.expr, params[i]); })
          .concat(data.baselines.map(function (name) { return valuesOf(name, {}); }));
        values = await Promise.all(texts);
        note.textContent = "";
        build();
      } catch (error) {
        note.textContent = "Cannot draw: " + error.message;
      }
    }

    async function redraw(index) {
      const ticket = ++asked[index];
      try {
        const fresh = await valuesOf(data.functions[index].expr, params[index]);
        if (ticket !== asked[index]) return;  // a later move of a slider already asked again
        values[index] = fresh;
        charts.forEach(function (chart, k) { chart.setData(columns(PANELS[k][0])); });
        note.textContent = "";
        marked();
      } catch (error) {
        note.textContent = "Cannot draw: " + error.message;
      }
    }

    const pending = {};
    for (const slider of document.querySelectorAll("input.slider")) {
      slider.addEventListener("input", function () {
        const index = Number(slider.dataset.curve);
        params[index][slider.dataset.name] = Number(slider.value);
        const output = slider.parentElement.querySelector("output");
        if (output) output.textContent = Number(slider.value).toFixed(2);
        clearTimeout(pending[index]);
        pending[index] = setTimeout(function () { redraw(index); }, 120);
      });
    }
    for (const toggle of document.querySelectorAll("input.baseline")) {
      toggle.addEventListener("change", function () {
        const at = 1 + data.functions.length + data.baselines.indexOf(toggle.value);
        for (const chart of charts) chart.setSeries(at, {show: toggle.checked});
      });
    }
    form.addEventListener("submit", function (event) { event.preventDefault(); drawAll(); });
    drawAll();
  }

  document.addEventListener("DOMContentLoaded", overlay);
})();
