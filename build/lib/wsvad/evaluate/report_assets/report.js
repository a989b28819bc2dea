/* wsvad report: draws the page from the JSON in #wsvad-data with plotly.js (inlined above it).
   Nothing here reaches the network: the data, the styles and plotly.js are all in this file. */
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("wsvad-data").textContent);
  const CONFIG = { displaylogo: false, responsive: true };
  const DASHES = ["solid", "dot", "dash", "longdash", "dashdot"];
  const GT_FILL = "rgba(110, 110, 110, 0.18)";
  const state = { video: null, sort: { key: null, dir: 1 }, yMode: "auto" };

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "style") node.style.cssText = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }
  const pct = (v) => (v == null ? "–" : (100 * v).toFixed(2));
  const sig = (v) => (v == null ? "–" : Number(v).toPrecision(3));
  const swatch = (colour) => el("span", { class: "swatch", style: `background:${colour}` });
  const testBadge = () => el("span", { class: "badge", text: "SELECTED ON THE TEST SET" });

  // ------------------------------------------------------------------ header and warnings
  function drawHeader() {
    document.getElementById("title").textContent = D.title;
    const videos = D.videos.length;
    document.getElementById("subtitle").textContent =
      `${D.runs.length} run${D.runs.length > 1 ? "s" : ""} · ${videos} test videos · ` +
      `made ${D.created} by wsvad ${D.wsvad_version} · every figure comes from metrics.json`;
    const box = document.getElementById("warnings");
    const lines = [...D.warnings];
    for (const run of D.runs) {
      if (run.selected_on_test) {
        lines.push(`${run.name}: model selected on the TEST SET (${run.selection}); ` +
          "its figures are optimistic, not a held-out result");
      }
      for (const w of run.warnings) lines.push(`${run.name}: ${w}`);
    }
    for (const line of lines) box.append(el("p", { class: "warning", text: line }));
  }

  // ------------------------------------------------------------------ ROC and PR
  function curveTraces(kind) {
    const traces = [];
    for (const run of D.runs) {
      run.seeds.forEach((seed, j) => {
        if (!seed.curves) return;
        const c = seed.curves[kind];
        const roc = kind === "roc";
        traces.push({
          x: roc ? c.fpr : c.recall,
          y: roc ? c.tpr : c.precision,
          type: "scatter",
          mode: "lines",
          name: roc ? seed.roc_legend : seed.pr_legend,
          line: { color: run.colour, width: 2, dash: DASHES[j % DASHES.length],
                  shape: roc ? "linear" : "hv" },
          hovertemplate: (roc ? "FPR %{x:.3f}, TPR %{y:.3f}"
            : "recall %{x:.3f}, precision %{y:.3f}") + `<extra>${seed.name}</extra>`,
        });
      });
    }
    return traces;
  }

  // Legends below the axes: a long PR legend (two APs per run) never covers a curve.
  function curveLayout(title, xTitle, yTitle) {
    return {
      title: { text: title, font: { size: 14 }, x: 0.02 },
      margin: { l: 52, r: 12, t: 36, b: 8 },
      xaxis: { title: { text: xTitle }, range: [0, 1], zeroline: false, automargin: true },
      yaxis: { title: { text: yTitle }, range: [0, 1.02], zeroline: false },
      legend: { orientation: "h", x: 0, xanchor: "left", y: -0.2, yanchor: "top",
                font: { size: 11 } },
      hovermode: "closest",
    };
  }

  function drawCurves() {
    const chance = { x: [0, 1], y: [0, 1], type: "scatter", mode: "lines", name: "chance",
                     line: { color: "#999", dash: "dash", width: 1 }, hoverinfo: "skip" };
    Plotly.newPlot("roc", [...curveTraces("roc"), chance],
      curveLayout("Frame-level ROC", "false positive rate", "true positive rate"), CONFIG);
    const pr = curveTraces("pr");
    const first = D.runs.flatMap((r) => r.seeds).find((s) => s.curves);
    if (first) {
      const share = first.curves.anomalous_share;
      pr.push({ x: [0, 1], y: [share, share], type: "scatter", mode: "lines",
                name: `anomalous frames ${(100 * share).toFixed(1)}%`,
                line: { color: "#999", dash: "dash", width: 1 }, hoverinfo: "skip" });
    }
    Plotly.newPlot("pr", pr, curveLayout("Frame-level precision-recall", "recall", "precision"),
                   CONFIG);
  }

  // ------------------------------------------------------------------ figures and runs
  function drawFigures() {
    const table = document.getElementById("figures");
    const head = el("tr", {}, D.figures.header.map((name, i) =>
      el("th", {}, i === 0 ? [] : [swatch(D.runs[i - 1].colour), name])));
    table.append(el("thead", {}, [head]));
    const body = el("tbody");
    for (const row of D.figures.rows) {
      body.append(el("tr", {}, row.map((cell, i) => {
        const flagged = i > 0 && String(cell).includes("(TEST SET)");
        return el("td", { class: i === 0 ? "text" : flagged ? "abnormal" : "" }, [String(cell)]);
      })));
    }
    table.append(body);
  }

  function drawRuns() {
    const box = document.getElementById("runs");
    for (const run of D.runs) {
      const title = el("h2", {}, [swatch(run.colour), run.name, " "]);
      if (run.selected_on_test) title.append(testBadge());
      const selection = el("dd", {}, [run.selection, " "]);
      if (run.selected_on_test) selection.append(testBadge());
      const list = el("dl", {}, [
        el("dt", { text: "protocol" }), el("dd", { text: run.protocol }),
        el("dt", { text: "model selection" }), selection,
        el("dt", { text: "threshold" }), el("dd", { text: String(run.threshold) }),
      ]);
      for (const [what, value] of run.provenance) {
        list.append(el("dt", { text: what }), el("dd", { text: value }));
      }
      box.append(el("div", { class: "card run", "data-run": run.name }, [title, list]));
    }
  }

  // ------------------------------------------------------------------ the videos table
  function columns() {
    const cols = [
      { key: "id", title: "video", text: true, value: (v) => v.id },
      { key: "label", title: "label", text: true,
        value: (v) => (v.label ? v.classes.join("+") || "abnormal" : "normal") },
    ];
    D.runs.forEach((run, i) => {
      const get = (k) => (v) => (v.runs[i] ? v.runs[i][k] : null);
      cols.push({ key: `auc${i}`, title: "AUC", value: get("auc"), show: pct, run: i,
                  tip: "frame AUC on the video (%), where it has normal and anomalous frames" });
      cols.push({ key: `max${i}`, title: "max", value: get("max_score"), show: sig, run: i,
                  tip: "highest frame score" });
      cols.push({ key: `fa${i}`, title: "FA", value: get("false_alarms"), show: pct, run: i,
                  tip: `share of normal frames scored >= ${run.threshold} (%)` });
    });
    return cols;
  }

  function drawVideoTable() {
    const cols = columns();
    const table = document.getElementById("videos");
    const groups = el("tr", {}, [el("th", { colspan: "2" })]);
    for (const run of D.runs) {
      const seed = run.seeds.length > 1 ? ` (${run.seeds[0].label})` : "";
      const title = [swatch(run.colour), run.name + seed];
      groups.append(el("th", { colspan: "3", class: "text" }, title));
    }
    const titles = el("tr", {}, cols.map((c) => {
      const th = el("th", { "data-key": c.key, class: c.text ? "text" : "", title: c.tip || "" },
                    [c.title]);
      th.addEventListener("click", () => sortBy(c.key));
      return th;
    }));
    table.append(el("thead", {}, [groups, titles]), el("tbody"));
    document.getElementById("videos-count").textContent = `(${D.videos.length})`;
    state.cols = cols;
    state.rows = [...D.videos];
    drawRows();
  }

  function drawRows() {
    const body = document.querySelector("#videos tbody");
    body.replaceChildren(...state.rows.map((v) => {
      const tr = el("tr", { "data-video": v.id }, state.cols.map((c) => {
        const value = c.value(v);
        const cls = (c.text ? "text " : "") + (c.key === "label" && v.label ? "abnormal" : "");
        return el("td", { class: cls.trim() }, [c.show ? c.show(value) : value]);
      }));
      if (state.video && v.id === state.video.id) tr.classList.add("selected");
      tr.addEventListener("click", () => selectVideo(v.id));
      return tr;
    }));
  }

  function sortBy(key) {
    const dir = state.sort.key === key ? -state.sort.dir : 1;
    state.sort = { key, dir };
    const col = state.cols.find((c) => c.key === key);
    state.rows.sort((a, b) => {
      const x = col.value(a), y = col.value(b);
      if (x == null || y == null) return (x == null) - (y == null); // missing values last
      return (col.text ? String(x).localeCompare(String(y)) : x - y) * dir;
    });
    for (const th of document.querySelectorAll("#videos thead th[data-key]")) {
      th.removeAttribute("aria-sort");
      if (th.dataset.key !== key) continue;
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    }
    drawRows();
  }

  // ------------------------------------------------------------------ timeline and player
  function timelineTraces(video) {
    const scale = video.fps ? 1 / video.fps : 1;
    const traces = [];
    for (const run of D.runs) {
      run.seeds.forEach((seed, j) => {
        const tl = seed.timelines[video.id];
        if (!tl) return;
        traces.push({
          x: tl.x.map((f) => f * scale), y: tl.y, type: "scatter", mode: "lines",
          name: seed.name, line: { color: run.colour, width: 1.8, shape: "hv",
                                   dash: DASHES[j % DASHES.length] },
          hovertemplate: `%{y:.4g}<extra>${seed.name}</extra>`,
        });
      });
    }
    return traces;
  }

  // The y-axis. auto: 0 (or the lowest score, when negative) to 5% above the video's highest
  // score, so a model whose scores are all tiny is still readable; the threshold line is drawn
  // when it is at most twice that highest score, else a note says it is above the axis.
  function yAxis(traces, thresholds) {
    const ys = traces.flatMap((t) => t.y);
    const lo = Math.min(0, ...ys), hi = Math.max(...ys);
    if (state.yMode === "log") return { axis: { type: "log", autorange: true }, above: [] };
    if (state.yMode === "unit") {
      return { axis: { range: [Math.min(lo, 0) - 0.02, Math.max(hi, 1) + 0.02] }, above: [] };
    }
    const shown = thresholds.filter((t) => t <= 2 * hi || hi <= lo);
    const top = Math.max(hi, ...shown, lo + 1e-9);
    const pad = 0.05 * (top - lo);
    return { axis: { range: [lo - pad / 5, top + pad] },
             above: thresholds.filter((t) => !shown.includes(t)), hi };
  }

  function timelineShapes(video, scale, thresholds) {
    const shapes = video.intervals.map(([s, e], i) => ({
      type: "rect", xref: "x", yref: "paper", x0: s * scale, x1: e * scale, y0: 0, y1: 1,
      fillcolor: GT_FILL, line: { width: 0 }, layer: "below",
      showlegend: i === 0, name: "ground truth: anomalous",
    }));
    for (const t of thresholds) {
      shapes.push({ type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: t, y1: t,
                    line: { color: "#333", width: 1, dash: "dot" },
                    showlegend: true, name: `threshold ${t}` });
    }
    // The playback cursor: always the last shape, moved by the player.
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: 0, x1: 0, y0: 0, y1: 1,
                  line: { color: "#111", width: 1.5 }, visible: Boolean(video.video.src) });
    return shapes;
  }

  function drawTimeline() {
    const video = state.video;
    const scale = video.fps ? 1 / video.fps : 1;
    const traces = timelineTraces(video);
    const thresholds = [...new Set(D.runs.map((r) => r.threshold))];
    const y = yAxis(traces, thresholds);
    const shown = thresholds.filter((t) => !y.above.includes(t));
    const layout = {
      margin: { l: 52, r: 12, t: 8, b: 40 },
      xaxis: { title: { text: video.fps ? "seconds" : "frame" },
               range: [0, video.n_frames * scale], zeroline: false },
      yaxis: { title: { text: "anomaly score" }, zeroline: false, ...y.axis },
      shapes: timelineShapes(video, scale, state.yMode === "log" ? [] : shown),
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11 } },
      hovermode: "x", hoverdistance: -1, showlegend: true,
    };
    document.getElementById("axis-note").textContent = y.above.length
      ? `threshold ${y.above.join(", ")} is above the axis (highest score ${sig(y.hi)})` : "";
    Plotly.react("timeline", traces, layout, CONFIG);
  }

  function selectVideo(id) {
    const video = D.videos.find((v) => v.id === id);
    if (!video) return;
    state.video = video;
    for (const tr of document.querySelectorAll("#videos tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.video === id);
    }
    const what = video.label ? `abnormal (${video.classes.join(", ") || "no class"})` : "normal";
    const length = video.fps ? `, ${(video.n_frames / video.fps).toFixed(1)} s at ${video.fps} fps`
      : ", frame rate unknown";
    document.getElementById("video-title").replaceChildren(
      video.id, " ", el("small", { text: `${what}, ${video.n_frames} frames${length}` }));
    document.getElementById("timeline").dataset.video = id;
    drawTimeline();
    drawPlayer(video);
  }

  function drawPlayer(video) {
    const box = document.getElementById("player");
    if (!video.video.src) {
      box.replaceChildren(el("p", { class: "note", text: `No player: ${video.video.note}.` }));
      return;
    }
    const player = el("video", { controls: "", preload: "auto", src: video.video.src });
    const note = el("p", { class: "note",
      text: `${video.video.note} (relative to this report). Click the timeline to seek.` });
    player.addEventListener("error", () => {
      note.textContent = `The browser cannot play ${video.video.note}; open it in a video player.`;
    });
    const follow = () => moveCursor(player, video);
    player.addEventListener("timeupdate", follow);
    player.addEventListener("seeked", follow);
    box.replaceChildren(player, note);
  }

  // Timeline x (seconds, or frames when the frame rate is unknown) <-> player time.
  function toSeconds(x, player, video) {
    if (video.fps) return x;
    return player.duration ? (x * player.duration) / video.n_frames : 0;
  }
  function fromSeconds(t, player, video) {
    if (video.fps) return t;
    return player.duration ? (t * video.n_frames) / player.duration : 0;
  }

  function moveCursor(player, video) {
    if (state.video !== video) return;
    const gd = document.getElementById("timeline");
    const k = gd.layout.shapes.length - 1;
    const x = fromSeconds(player.currentTime, player, video);
    Plotly.relayout(gd, { [`shapes[${k}].x0`]: x, [`shapes[${k}].x1`]: x });
  }

  function seekFromClick(event) {
    const player = document.querySelector("#player video");
    if (!player || !state.video) return;
    const gd = document.getElementById("timeline");
    let x = event.points && event.points.length ? event.points[0].x : 0;
    const area = gd.querySelector(".nsewdrag");
    if (event.event && area) { // the clicked position, not the nearest point's
      const box = area.getBoundingClientRect();
      const [x0, x1] = gd.layout.xaxis.range;
      x = x0 + ((event.event.clientX - box.left) / box.width) * (x1 - x0);
    }
    const t = toSeconds(x, player, state.video);
    player.currentTime = Math.max(0, Math.min(t, player.duration || t));
  }

  // ------------------------------------------------------------------ start
  function start() {
    drawHeader();
    drawCurves();
    drawFigures();
    drawRuns();
    drawVideoTable();
    document.getElementById("y-mode").addEventListener("change", (e) => {
      state.yMode = e.target.value;
      if (state.video) drawTimeline();
    });
    const first = D.videos.find((v) => v.label) || D.videos[0];
    if (first) selectVideo(first.id);
    document.getElementById("timeline").on("plotly_click", seekFromClick);
    window.wsvadReport = { selectVideo, sortBy, state };
  }
  start();
})();
