// The DNS traffic panel: samples /metrics every few seconds (see metrics.js) and shows the
// query rate and answer latencies between the last two samples, or "no data".
"use strict";

(function (ui) {
  const { h, fill, svg, duration } = ui;

  const METRICS_EVERY = 5000;
  const METRICS_KEEP = 60;

  // -- DNS traffic panel ------------------------------------------------------------

  function trafficPanel() {
    const values = {
      rate: h("dd", { id: "dns-rate" }, "no data"),
      mean: h("dd", { id: "dns-mean" }, "no data"),
      p50: h("dd", { id: "dns-p50" }, "no data"),
      p99: h("dd", { id: "dns-p99" }, "no data"),
    };
    const chart = h("div", { class: "spark", id: "dns-spark", role: "img", "aria-label": "no data" });
    const note = h("p", { class: "muted", id: "dns-note" }, "Waiting for a second sample of /metrics…");
    const figures = h(
        "dl",
        { class: "figures", hidden: true },
        h("div", {}, h("dt", {}, "Queries per second"), values.rate),
        h("div", {}, h("dt", {}, "Mean answer time"), values.mean),
        h("div", {}, h("dt", {}, "Median"), values.p50),
        h("div", {}, h("dt", {}, "99th percentile"), values.p99),
      );
    chart.hidden = true;
    const panel = h(
      "section",
      { class: "panel traffic", "aria-labelledby": "traffic-title" },
      h("h2", { id: "traffic-title" }, "DNS traffic"),
      figures,
      chart,
      note,
    );
    startTraffic(values, chart, note, figures);
    return panel;
  }

  function startTraffic(values, chart, note, figures) {
    const M = window.srvdnsMetrics;
    let previous = null;
    let previousAt = 0;
    const rates = [];
    async function sample() {
      if (!chart.isConnected) return; // the page moved on
      if (!document.hidden) {
        try {
          const reply = await fetch("/metrics", { headers: { accept: "text/plain" } });
          if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
          const current = M.parseMetrics(await reply.text());
          const at = performance.now();
          if (!current.queries && !current.answer) {
            figures.hidden = chart.hidden = true;
            note.textContent = "no data: this server's /metrics has no DNS query counters (srvdns_dns_queries_total, srvdns_dns_answer_seconds)";
          } else if (previous) {
            const s = M.summarize(previous, current, (at - previousAt) / 1000);
            figures.hidden = chart.hidden = false;
            showTraffic(values, s);
            rates.push(s.rate);
            if (rates.length > METRICS_KEEP) rates.shift();
            drawSpark(chart, rates);
            note.textContent = rcodeText(s.rcodes);
          }
          previous = current;
          previousAt = at;
        } catch (error) {
          note.textContent = `no data: /metrics could not be read (${error.message})`;
        }
      }
      setTimeout(sample, METRICS_EVERY);
    }
    setTimeout(sample, 0); // once the panel is in the page
  }

  function quantileText(q) {
    if (!q) return "no data";
    return (q.above ? "over " : "") + duration(q.value);
  }

  function showTraffic(values, s) {
    values.rate.textContent = s.rate === null ? "no data" : `${s.rate.toFixed(s.rate < 10 ? 1 : 0)}`;
    values.mean.textContent = s.mean === null ? "no data" : duration(s.mean);
    values.p50.textContent = quantileText(s.p50);
    values.p99.textContent = quantileText(s.p99);
  }

  function rcodeText(rcodes) {
    if (!rcodes) return "";
    const parts = Object.entries(rcodes).map(([rcode, count]) => `${rcode} ${count}`);
    return parts.length ? `Answers by rcode since the last sample: ${parts.join(", ")}` : "No queries since the last sample.";
  }

  function drawSpark(chart, rates) {
    const known = rates.filter((r) => r !== null);
    fill(chart);
    if (!known.length) {
      chart.setAttribute("aria-label", "no data");
      return;
    }
    const max = Math.max(...known, 1);
    const width = 300;
    const height = 48;
    const step = width / Math.max(METRICS_KEEP - 1, 1);
    const offset = width - step * (rates.length - 1);
    const points = rates
      .map((r, i) => (r === null ? null : `${(offset + i * step).toFixed(1)},${(height - (r / max) * (height - 4) - 2).toFixed(1)}`))
      .filter(Boolean)
      .join(" ");
    chart.append(
      svg(
        "svg",
        { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true" },
        svg("polyline", { points, class: "spark-line" }),
      ),
    );
    const last = known[known.length - 1];
    chart.setAttribute(
      "aria-label",
      `Queries per second over the last ${known.length} samples: now ${last.toFixed(1)}, peak ${Math.max(...known).toFixed(1)}`,
    );
  }

  Object.assign(ui, { trafficPanel });
})(window.srvdnsUi);
