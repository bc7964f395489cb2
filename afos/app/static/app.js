// afos serve: charts, mathematics, sortable tables, and live sections.
// Everything shown comes from the server already escaped (HTML) or as data (JSON, drawn by uPlot);
// this script never builds markup from text.
(function () {
  "use strict";

  // One colour per idea on every page: f blue, f′ orange, f″ green (the sketches, the function plot and
  // the charts' series); the reference (ReLU) is a dashed line in the text colour.
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#7f7f7f"];
  // Generations and trainings are whole numbers: ticks at 1, 2, 5, 10, 20, ...
  const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
  const charts = [];

  function ink() {
    return getComputedStyle(document.body).getPropertyValue("--ink").trim() || "#1c2330";
  }

  function chartWidth(element) {
    return Math.max(280, element.parentElement.clientWidth || 480);
  }

  // A y range padded around the data: uPlot's default gives a flat curve an axis from 0 to twice its value.
  function paddedRange(u, low, high) {
    if (low === null || high === null) return [0, 1];
    const span = high - low;
    const pad = span > 1e-9 ? 0.08 * span : Math.max(Math.abs(high) * 0.02, 0.01);
    return [low - pad, high + pad];
  }

  function axes(xlabel, ylabel, whole) {
    const colour = ink();
    const axis = {stroke: colour, grid: {stroke: "rgba(128,128,128,0.2)"}, ticks: {stroke: "rgba(128,128,128,0.4)"}};
    return [Object.assign({label: xlabel}, whole ? {incrs: WHOLE} : {}, axis), Object.assign({label: ylabel}, axis)];
  }

  // Charts follow their column's width when the window changes.
  function track(chart, element) {
    charts.push({chart: chart, element: element});
    return chart;
  }

  window.addEventListener("resize", function () {
    for (const item of charts) {
      if (item.element.isConnected) item.chart.setSize({width: chartWidth(item.element), height: item.chart.height});
    }
  });

  // A line per series; `spec.bands` pairs (upper, lower) series names whose area is shaded, the pair
  // itself drawn faint. Many series (a function's learning curves) leave the legend out.
  function lineChart(element, spec) {
    const names = Object.keys(spec.series);
    const edges = new Set((spec.bands || []).flat());
    let colour = 0;
    const series = [{label: spec.xlabel}].concat(names.map(function (name) {
      const reference = name === "ReLU";
      const stroke = reference ? ink() : edges.has(name) ? "rgba(128,128,128,0.35)" : COLOURS[colour++ % COLOURS.length];
      return {label: name, stroke: stroke, width: reference || edges.has(name) ? 1 : 2,
              dash: reference ? [6, 4] : undefined, spanGaps: true, points: {show: spec.x.length < 40 && !edges.has(name)}};
    }));
    const bands = (spec.bands || []).map(function (pair) {
      return {series: [names.indexOf(pair[0]) + 1, names.indexOf(pair[1]) + 1], fill: "rgba(31,119,180,0.12)"};
    });
    const data = [spec.x].concat(names.map(function (name) { return spec.series[name]; }));
    element.textContent = "";
    // The legend names the series; values appear while the cursor is over the chart, never "--".
    return track(new uPlot({width: chartWidth(element), height: 240, series: series, bands: bands,
                            legend: {show: names.length <= 12, live: false},
                            scales: {x: {time: false}, y: {range: paddedRange}},
                            axes: axes(spec.xlabel, spec.ylabel, spec.xlabel !== "epoch")}, data, element), element);
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

  // A section swapped in keeps the boxes its reader had ticked (the runs list's "compare" choices).
  function keepChoices(old, fresh) {
    const ticked = new Set(Array.from(old.querySelectorAll("input[type=checkbox]:checked"), function (box) { return box.value; }));
    for (const box of fresh.querySelectorAll("input[type=checkbox]")) box.checked = ticked.has(box.value);
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
          keepChoices(old, adopted);
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
      chart = track(new uPlot({width: chartWidth(element), height: 320, scales: {x: {time: false}},
                               series: [{label: "x"}, {label: "f", stroke: COLOURS[0], width: 2},
                                        {label: "f′", stroke: COLOURS[1], width: 1.5},
                                        {label: "f″", stroke: COLOURS[2], width: 1}],
                               legend: {live: false}, axes: axes("x", "", false)},
                              [values.x, values.f, values.df, values.d2f], element), element);
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
