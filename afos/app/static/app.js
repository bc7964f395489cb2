// afos serve: charts, mathematics, sortable tables, and live sections.
// Everything shown comes from the server already escaped (HTML) or as data (JSON, drawn by uPlot);
// this script never builds markup from text.
(function () {
  "use strict";

  const COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#7f7f7f"];
  // Generations and trainings are whole numbers: ticks at 1, 2, 5, 10, 20, ...
  const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  function chartWidth(element) {
    return Math.max(280, Math.min(element.parentElement.clientWidth || 480, 900));
  }

  function lineChart(element, spec) {
    const names = Object.keys(spec.series);
    let colour = 0;
    const series = [{label: spec.xlabel}].concat(names.map(function (name) {
      const reference = name === "ReLU";
      return {label: name, stroke: reference ? "#000" : COLOURS[colour++ % COLOURS.length], width: reference ? 1 : 2,
              dash: reference ? [6, 4] : undefined, spanGaps: true, points: {show: spec.x.length < 40}};
    }));
    const data = [spec.x].concat(names.map(function (name) { return spec.series[name]; }));
    element.textContent = "";
    return new uPlot({width: chartWidth(element), height: 240, series: series, scales: {x: {time: false}},
                      axes: [{label: spec.xlabel, incrs: WHOLE}, {label: spec.ylabel}]}, data, element);
  }

  function drawCharts(root) {
    for (const holder of root.querySelectorAll("script.chart-data")) {
      const charts = JSON.parse(holder.textContent);
      for (const element of holder.parentElement.querySelectorAll("[data-chart]")) {
        const spec = charts[element.dataset.chart];
        if (spec) lineChart(element, spec);
      }
    }
  }

  function drawMath(root) {
    for (const element of root.querySelectorAll("[data-tex]")) {
      katex.render(element.dataset.tex, element, {displayMode: true, throwOnError: false});
    }
  }

  function sortKey(cell, numeric) {
    const text = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    if (!numeric) return text;
    const number = parseFloat(text);
    return isNaN(number) ? -Infinity : number;
  }

  function makeSortable(root) {
    for (const table of root.querySelectorAll("table.sortable")) {
      table.querySelectorAll("th").forEach(function (header, column) {
        header.addEventListener("click", function () {
          const numeric = header.dataset.type === "number";
          const ascending = header.dataset.order !== "asc";
          table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
          header.dataset.order = ascending ? "asc" : "desc";
          const body = table.tBodies[0];
          const rows = Array.from(body.rows);
          rows.sort(function (a, b) {
            const x = sortKey(a.cells[column], numeric), y = sortKey(b.cells[column], numeric);
            return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
          });
          rows.forEach(function (row) { body.appendChild(row); });
        });
      });
    }
  }

  // A page of a run polls the run's version; when it changed, the page is fetched again and every live
  // section whose content differs is swapped in place (scroll position and the rest of the page stay).
  function poll() {
    const body = document.body;
    if (!body.dataset.poll) return;
    setInterval(async function () {
      try {
        const answer = await fetch(body.dataset.poll, {cache: "no-store", credentials: "same-origin"});
        if (!answer.ok) return;
        const now = (await answer.json()).version;
        if (now === body.dataset.version) return;
        const page = await fetch(location.href, {cache: "no-store", credentials: "same-origin"});
        if (!page.ok) return;
        const fresh = new DOMParser().parseFromString(await page.text(), "text/html");
        for (const section of fresh.querySelectorAll("[data-live]")) {
          const old = document.getElementById(section.id);
          if (!old || old.innerHTML === section.innerHTML) continue;
          const adopted = document.adoptNode(section);
          old.replaceWith(adopted);
          drawCharts(adopted);
          makeSortable(adopted);
        }
        body.dataset.version = now;
        body.dataset.updated = String(Date.now());
      } catch (error) {
        // the server is gone for a moment: the next tick tries again
      }
    }, 2000);
  }

  function functionPlot() {
    const element = document.getElementById("function-chart");
    const form = document.getElementById("range");
    if (!element || !form) return;
    const note = document.getElementById("plot-note");
    let chart = null;
    async function draw() {
      const query = new URLSearchParams({expr: element.dataset.expr, lo: form.lo.value, hi: form.hi.value, n: "401"});
      const answer = await fetch("/api/functions/values?" + query.toString(), {credentials: "same-origin"});
      const values = await answer.json();
      if (!answer.ok) { note.textContent = values.error; return; }
      note.textContent = "";
      if (chart) chart.destroy();
      element.textContent = "";
      chart = new uPlot({width: chartWidth(element), height: 320, scales: {x: {time: false}},
                         series: [{label: "x"}, {label: "f", stroke: COLOURS[0], width: 2},
                                  {label: "f′", stroke: COLOURS[1], width: 1.5},
                                  {label: "f″", stroke: COLOURS[2], width: 1}],
                         axes: [{label: "x"}, {}]}, [values.x, values.f, values.df, values.d2f], element);
      element.dataset.drawn = String(values.x.length);
    }
    form.addEventListener("submit", function (event) { event.preventDefault(); draw(); });
    draw();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    drawMath(document);
    makeSortable(document);
    functionPlot();
    poll();
  });
})();
