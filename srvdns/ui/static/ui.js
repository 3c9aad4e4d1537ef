// The srvdns status page: renders the overview (/ui/) or one service
// (/ui/services/NAME) from /ui/api, refreshed by blocking queries as the registry
// changes, with the DNS traffic read from /metrics. All text goes in as text nodes.
"use strict";

(function () {
  const WAIT = "55s";
  const MIN_REFRESH = 1000;
  const METRICS_EVERY = 5000;
  const METRICS_KEEP = 60;
  const HOUR = 3600;
  const STATUS = {
    passing: { icon: "✓", label: "passing" },
    warning: { icon: "!", label: "warning" },
    critical: { icon: "✕", label: "critical" },
  };

  // -- DOM helpers --------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fill(node, ...children) {
    node.replaceChildren();
    return append(node, children);
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    for (const child of children.flat()) if (child) node.append(child);
    return node;
  }

  function badge(status, text) {
    const s = STATUS[status] || { icon: "?", label: status || "gone" };
    return h(
      "span",
      { class: `badge st-${status || "gone"}` },
      h("span", { class: "icon", "aria-hidden": "true" }, s.icon),
      " ",
      text === undefined ? s.label : text,
    );
  }

  function setLive(state, text) {
    const live = document.getElementById("live");
    live.dataset.state = state;
    const label = document.getElementById("live-text");
    if (label.textContent !== text) label.textContent = text;
  }

  // -- time -------------------------------------------------------------------------

  let skew = 0; // server clock minus browser clock, seconds

  function serverNow() {
    return Date.now() / 1000 + skew;
  }

  function relative(seconds) {
    const abs = Math.abs(seconds);
    let text;
    if (abs < 1) return seconds >= 0 ? "in under a second" : "just now";
    if (abs < 90) text = `${Math.round(abs)} s`;
    else if (abs < 5400) text = `${Math.round(abs / 60)} min`;
    else if (abs < 129600) text = `${Math.round(abs / 3600)} h`;
    else text = `${Math.round(abs / 86400)} d`;
    return seconds >= 0 ? `in ${text}` : `${text} ago`;
  }

  function stamp(unix, opts) {
    const date = new Date(unix * 1000);
    const node = h("time", {
      datetime: date.toISOString(),
      title: date.toLocaleString(),
      "data-ts": unix,
      "data-mode": (opts && opts.mode) || "relative",
    });
    tick(node);
    return node;
  }

  function tick(node) {
    const unix = Number(node.dataset.ts);
    const text =
      node.dataset.mode === "clock"
        ? new Date(unix * 1000).toLocaleTimeString()
        : relative(unix - serverNow());
    if (node.textContent !== text) node.textContent = text;
  }

  setInterval(() => document.querySelectorAll("time[data-ts]").forEach(tick), 1000);

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 120) return `${+seconds.toFixed(1)} s`;
    if (seconds < 7200) return `${+(seconds / 60).toFixed(1)} min`;
    return `${+(seconds / 3600).toFixed(1)} h`;
  }

  function ttlText(ttls) {
    const values = [...new Set(Object.values(ttls))];
    if (values.length === 0) return "—";
    if (values.length === 1) return `${values[0]} s`;
    return Object.entries(ttls)
      .map(([zone, ttl]) => `${ttl} s (${zone})`)
      .join(", ");
  }

  // -- fetching ---------------------------------------------------------------------

  async function getJson(url, signal) {
    const reply = await fetch(url, { signal, headers: { accept: "application/json" } });
    const body = await reply.json().catch(() => null);
    if (!reply.ok && reply.status !== 404) {
      const message = body && body.error ? body.error : `HTTP ${reply.status}`;
      throw new Error(message);
    }
    return { status: reply.status, body };
  }

  // Calls render(body) with each new state of `url`, waiting on the registry's index
  // between them; retries with backoff while the server cannot be reached.
  async function follow(url, render) {
    let index = 0;
    let backoff = 1;
    let asked = 0;
    for (;;) {
      // at most one refresh a second, however busy the registry is
      const pause = asked + MIN_REFRESH - Date.now();
      if (pause > 0) await sleep(pause);
      asked = Date.now();
      const sep = url.includes("?") ? "&" : "?";
      const target = index ? `${url}${sep}index=${index}&wait=${WAIT}` : url;
      try {
        const { status, body } = await getJson(target);
        if (typeof body.now === "number") skew = body.now - Date.now() / 1000;
        const changed = body.index !== index;
        index = body.index || 0;
        backoff = 1;
        setLive("live", "Live");
        if (changed) await render(body, status);
        if (status === 404) await sleep(5000);
      } catch (error) {
        setLive("down", `Connection lost (${error.message}); retrying in ${backoff} s`);
        await sleep(backoff * 1000);
        backoff = Math.min(backoff * 2, 30);
        index = 0;
      }
    }
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

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

  // -- overview ---------------------------------------------------------------------

  function renderOverview(main) {
    const params = new URLSearchParams(location.search);
    const name = h("input", {
      id: "filter-name",
      type: "search",
      value: params.get("q") || "",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "e.g. web",
    });
    const tag = h("select", { id: "filter-tag" }, h("option", { value: "" }, "any tag"));
    const problems = h("input", { id: "filter-problems", type: "checkbox", checked: params.get("problems") === "1" });
    const form = h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter services", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field" }, h("label", { for: "filter-name" }, "Name"), name),
      h("div", { class: "field" }, h("label", { for: "filter-tag" }, "Tag"), tag),
      h("div", { class: "field check" }, problems, h("label", { for: "filter-problems" }, "Only services with problems")),
    );
    const count = h("p", { id: "shown", class: "muted", "aria-live": "polite" });
    const summary = h("p", { class: "summary", id: "summary" });
    const table = h("div", { id: "services" });
    const changes = h("div", { id: "changes" });
    fill(main,
      h("h1", {}, "Services"),
      summary,
      trafficPanel(),
      h(
        "section",
        { class: "panel", "aria-labelledby": "services-title" },
        h("h2", { id: "services-title" }, "All services"),
        form,
        count,
        table,
      ),
      h(
        "section",
        { class: "panel", "aria-labelledby": "changes-title" },
        h("h2", { id: "changes-title" }, "Status changes in the last hour"),
        changes,
      ),
    );
    let data = null;
    const wantedTag = params.get("tag") || "";

    function apply() {
      if (!data) return;
      const q = name.value.trim().toLowerCase();
      const t = tag.value;
      const onlyProblems = problems.checked;
      const shown = data.services.filter(
        (s) =>
          (!q || s.name.includes(q)) &&
          (!t || t in s.tags) &&
          (!onlyProblems || s.counts.critical > 0 || s.counts.warning > 0 || s.panic_zones.length > 0),
      );
      const url = new URL(location.href);
      for (const [key, value] of [["q", q], ["tag", t], ["problems", onlyProblems ? "1" : ""]]) {
        if (value) url.searchParams.set(key, value);
        else url.searchParams.delete(key);
      }
      history.replaceState(null, "", url);
      count.textContent = `Showing ${shown.length} of ${data.services.length} services`;
      fill(table, servicesTable(shown, data));
    }

    name.addEventListener("input", apply);
    tag.addEventListener("change", apply);
    problems.addEventListener("change", apply);

    follow("/ui/api/services", async (body) => {
      data = body;
      const tags = [...new Set(body.services.flatMap((s) => Object.keys(s.tags)))].sort();
      const selected = tag.value || wantedTag;
      fill(tag,
        h("option", { value: "" }, "any tag"),
        tags.map((t) => h("option", { value: t, selected: t === selected }, t)),
      );
      if (selected && !tags.includes(selected)) {
        tag.append(h("option", { value: selected, selected: true }, `${selected} (none now)`));
      }
      fill(summary, summaryLine(body));
      apply();
      const events = await getJson("/v1/history");
      fill(changes, changeList(events.body.events.slice(-20).reverse(), true, body.history_since));
    });
  }

  function summaryLine(body) {
    const totals = { passing: 0, warning: 0, critical: 0 };
    let instances = 0;
    for (const s of body.services) {
      instances += s.instances;
      for (const key of Object.keys(totals)) totals[key] += s.counts[key];
    }
    const zones = body.zones.map((z) => z.name).join(", ");
    return [
      `${body.services.length} services, ${instances} instances: `,
      badge("passing", `${totals.passing} passing`),
      " ",
      badge("warning", `${totals.warning} warning`),
      " ",
      badge("critical", `${totals.critical} critical`),
      zones ? h("span", { class: "muted" }, ` · zones ${zones}`) : null,
      body.dns ? h("span", { class: "muted" }, ` · DNS ${body.dns.replace(/^@/, "").replace(" -p ", " port ")}`) : null,
    ];
  }

  function healthBar(counts, total) {
    const bar = h("span", { class: "healthbar", "aria-hidden": "true" });
    for (const status of ["passing", "warning", "critical"]) {
      if (counts[status] > 0) {
        bar.append(h("span", { class: `seg st-${status}`, style: null }));
        bar.lastChild.style.flexGrow = counts[status];
      }
    }
    if (!total) bar.append(h("span", { class: "seg empty" }));
    return bar;
  }

  function servicesTable(services, data) {
    if (!services.length) {
      return h("p", { class: "empty" }, data.services.length ? "No service matches the filter." : "No services registered yet.");
    }
    return h(
      "table",
      { class: "grid cards", id: "services-table" },
      h("caption", { class: "visually-hidden" }, "Services and the health of their instances"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Service", "Instances", "Passing", "Warning", "Critical", "Tags", "TTL", "Changes (1 h)"].map((t) =>
            h("th", { scope: "col" }, t),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        services.map((s) =>
          h(
            "tr",
            { "data-service": s.name },
            h(
              "th",
              { scope: "row", "data-label": "Service" },
              h("a", { href: `/ui/services/${encodeURIComponent(s.name)}` }, s.name),
              s.panic_zones.length ? h("span", { class: "badge st-warning panic" }, "panic mode") : null,
              healthBar(s.counts, s.instances),
            ),
            h("td", { "data-label": "Instances", class: "num" }, s.instances),
            countCell("passing", s.counts.passing),
            countCell("warning", s.counts.warning),
            countCell("critical", s.counts.critical),
            h(
              "td",
              { "data-label": "Tags" },
              Object.keys(s.tags).length
                ? h("ul", { class: "tags" }, Object.entries(s.tags).map(([t, n]) => h("li", { title: `${n} of ${s.instances} instances` }, t)))
                : h("span", { class: "muted" }, "none"),
            ),
            h("td", { "data-label": "TTL" }, ttlText(s.ttl)),
            h("td", { "data-label": "Changes (1 h)", class: "num" }, s.changes),
          ),
        ),
      ),
    );
  }

  function countCell(status, n) {
    return h(
      "td",
      { "data-label": status[0].toUpperCase() + status.slice(1), class: `num count-${status}`, "data-count": n },
      n > 0 ? badge(status, String(n)) : h("span", { class: "zero" }, "0"),
      h("span", { class: "visually-hidden" }, ` ${status}`),
    );
  }

  function changeList(events, withService, since) {
    if (!events.length) {
      return h("p", { class: "empty" }, since ? ["No status changes since ", stamp(since, { mode: "clock" }), "."] : "No status changes.");
    }
    return h(
      "ol",
      { class: "events" },
      events.map((e) =>
        h(
          "li",
          { class: "event" },
          stamp(e.time_unix, { mode: "clock" }),
          " ",
          withService ? h("a", { href: `/ui/services/${encodeURIComponent(e.service)}` }, e.service) : null,
          withService ? " / " : null,
          h("span", { class: "instance" }, e.instance),
          ": ",
          transition(e),
          e.checks.filter((c) => c.to && c.output).length
            ? h(
                "span",
                { class: "muted output-inline" },
                " — ",
                e.checks
                  .filter((c) => c.to && c.output)
                  .map((c) => `${c.id}: ${c.output.split("\n")[0].slice(0, 120)}`)
                  .join("; "),
              )
            : null,
        ),
      ),
    );
  }

  function transition(e) {
    if (e.from === null) return h("span", {}, "registered, ", badge(e.to));
    if (e.to === null) return h("span", {}, "deregistered (was ", badge(e.from), ")");
    return h("span", {}, badge(e.from), h("span", { "aria-label": "changed to" }, " → "), badge(e.to));
  }

  // -- one service ------------------------------------------------------------------

  function renderService(main, name) {
    document.title = `${name} · srvdns`;
    const heading = h("h1", {}, name);
    const summary = h("p", { class: "summary" });
    const banner = h("div", { id: "banner" });
    const instances = h("div", { id: "instances" });
    const dnsSection = h("div", { id: "dns-names" });
    const timeline = h("div", { id: "timeline" });
    const dig = h("div", { id: "dig" });
    let span = HOUR;
    let last = null;
    const windows = h(
      "fieldset",
      { class: "window" },
      h("legend", {}, "Window"),
      [
        [300, "5 min"],
        [900, "15 min"],
        [HOUR, "1 hour"],
      ].map(([seconds, text]) =>
        h(
          "label",
          {},
          h("input", {
            type: "radio",
            name: "window",
            value: seconds,
            checked: seconds === span,
            onchange: () => {
              span = seconds;
              drawHistory();
            },
          }),
          ` ${text}`,
        ),
      ),
    );
    function drawHistory() {
      if (!last) return;
      const [events, instanceRows] = last;
      fill(
        timeline,
        timelineChart(events, instanceRows, span),
        h("h3", {}, "Changes"),
        changeList(events.events.slice().reverse(), false, Math.max(events.started, events.now - events.retention)),
      );
    }
    fill(
      main,
      h(
        "nav",
        { "aria-label": "Breadcrumb", class: "crumbs" },
        h("ol", {}, h("li", {}, h("a", { href: "/ui/" }, "Services")), h("li", { "aria-current": "page" }, name)),
      ),
      heading,
      summary,
      banner,
      dig,
      h("section", { class: "panel", "aria-labelledby": "inst-title" }, h("h2", { id: "inst-title" }, "Instances"), instances),
      h(
        "section",
        { class: "panel", "aria-labelledby": "hist-title" },
        h("div", { class: "panel-head" }, h("h2", { id: "hist-title" }, "History"), windows),
        timeline,
      ),
      h("section", { class: "panel", "aria-labelledby": "dns-title" }, h("h2", { id: "dns-title" }, "DNS names"), dnsSection),
    );
    follow(`/ui/api/services/${encodeURIComponent(name)}`, async (body, status) => {
      const events = (await getJson(`/v1/history?service=${encodeURIComponent(name)}`)).body;
      if (status === 404) {
        fill(summary, "This service has no instances now (it may have been deregistered).");
        fill(banner);
        fill(dig);
        fill(instances, h("p", { class: "empty" }, "No instances."));
        fill(dnsSection, h("p", { class: "empty" }, "No name resolves while the service has no instances."));
      } else {
        fill(
          summary,
          `${body.instances.length} instances: `,
          badge("passing", `${body.counts.passing} passing`),
          " ",
          badge("warning", `${body.counts.warning} warning`),
          " ",
          badge("critical", `${body.counts.critical} critical`),
          h("span", { class: "muted" }, ` · TTL ${ttlText(body.ttl)}`),
        );
        fill(
          banner,
          body.panic_zones.length
            ? h(
                "p",
                { class: "notice warn", role: "alert" },
                `Panic mode in ${body.panic_zones.join(", ")}: too many instances are critical at once, so DNS answers all of them.`,
              )
            : "",
        );
        fill(dig, digBox(body));
        fill(instances, instanceList(body));
        fill(dnsSection, dnsNames(body));
      }
      last = [events, status === 404 ? [] : body.instances];
      drawHistory();
    });
  }

  function copyButton(text, label) {
    const button = h("button", { type: "button", class: "copy", "aria-label": label }, "Copy");
    button.addEventListener("click", async () => {
      let done = false;
      try {
        await navigator.clipboard.writeText(text);
        done = true;
      } catch (error) {
        const area = h("textarea", { class: "visually-hidden", readonly: true });
        area.value = text;
        document.body.append(area);
        area.select();
        done = document.execCommand("copy");
        area.remove();
      }
      button.textContent = done ? "Copied" : "Select and copy";
      setTimeout(() => (button.textContent = "Copy"), 2000);
    });
    return button;
  }

  function commandLine(command, label, id) {
    return h("div", { class: "command" }, h("code", { id }, command), copyButton(command, label));
  }

  function digBox(body) {
    if (!body.names.length) return null;
    const first = body.names[0].names[0];
    return [
      h("p", { class: "dig-label", id: "dig-label" }, "Resolve it with this server:"),
      commandLine(first.dig, `Copy the dig command for ${first.name}`, "dig-command"),
      body.dns ? null : h("p", { class: "muted" }, "The DNS listener's address is unknown here; add @server -p port."),
    ];
  }

  const zoneOpen = new Map(); // zone -> unfolded, kept across refreshes

  function dnsNames(body) {
    if (!body.names.length) return h("p", { class: "empty" }, "No zone is configured.");
    return body.names.map((zone, n) =>
      h(
        "details",
        {
          class: "zone",
          open: zoneOpen.has(zone.zone) ? zoneOpen.get(zone.zone) : n === 0,
          ontoggle: (event) => zoneOpen.set(zone.zone, event.target.open),
        },
        h("summary", {}, `Zone ${zone.zone}`, h("span", { class: "muted" }, ` · TTL ${zone.ttl} s · ${zone.names.length} names`)),
        h(
          "table",
          { class: "grid cards names" },
          h("caption", { class: "visually-hidden" }, `Names in zone ${zone.zone}`),
          h("thead", {}, h("tr", {}, ["Name", "Types", "Instances", "dig"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            zone.names.map((entry) =>
              h(
                "tr",
                {},
                h("th", { scope: "row", "data-label": "Name" }, h("code", { class: "dns-name" }, entry.name)),
                h("td", { "data-label": "Types" }, entry.types.join(", ")),
                h("td", { "data-label": "Instances" }, entry.tag ? `tagged ${entry.tag}` : "all healthy"),
                h("td", { "data-label": "dig" }, copyButton(entry.dig, `Copy the dig command for ${entry.name}`)),
              ),
            ),
          ),
        ),
      ),
    );
  }

  function instanceList(body) {
    if (!body.instances.length) return h("p", { class: "empty" }, "No instances.");
    return h(
      "ul",
      { class: "instances" },
      body.instances.map((i) =>
        h(
          "li",
          { class: `instance-card st-border-${i.status}`, "data-instance": i.id },
          h(
            "div",
            { class: "card-head" },
            h("h3", {}, i.id),
            badge(i.status),
            i.answered_in.length
              ? h("span", { class: "muted" }, ` in DNS (${i.answered_in.join(", ")})`)
              : h("span", { class: "muted" }, " not in DNS"),
          ),
          h(
            "dl",
            { class: "props" },
            prop("Address", h("code", {}, i.address.includes(":") ? `[${i.address}]:${i.port}` : `${i.address}:${i.port}`)),
            prop("Weight", i.weights.passing === i.weights.warning ? String(i.weight) : `${i.weights.passing} (warning: ${i.weights.warning})`),
            prop("Priority", String(i.priority)),
            prop("Tags", i.tags.length ? h("ul", { class: "tags" }, i.tags.map((t) => h("li", {}, t))) : h("span", { class: "muted" }, "none")),
            prop(
              "Meta",
              Object.keys(i.meta).length
                ? h("ul", { class: "meta" }, Object.entries(i.meta).map(([k, v]) => h("li", {}, h("code", {}, `${k}=${v}`))))
                : h("span", { class: "muted" }, "none"),
            ),
            prop("Lease", lease(i)),
            prop("Source", i.source === "static" ? "config file" : "API"),
            prop("Registered", stamp(i.registered_at_unix)),
            prop("SRV target", i.targets.map((t) => h("code", { class: "dns-name block" }, t)), "wide"),
          ),
          i.checks.length ? checkTable(i) : h("p", { class: "muted" }, "No health checks: passing while registered."),
        ),
      ),
    );
  }

  function prop(label, value, wide) {
    return h("div", { class: wide ? "wide" : null }, h("dt", {}, label), h("dd", {}, value));
  }

  function lease(i) {
    if (i.ttl === null) return h("span", { class: "muted" }, "none");
    const expired = i.lease_expires_unix <= serverNow();
    return h(
      "span",
      { class: expired ? "lapsed" : "" },
      expired ? "lapsed " : "expires ",
      stamp(i.lease_expires_unix),
      ` (ttl ${duration(i.ttl)})`,
    );
  }

  function checkTable(i) {
    return h(
      "table",
      { class: "grid cards checks" },
      h("caption", {}, `Health checks of ${i.id}`),
      h("thead", {}, h("tr", {}, ["Check", "Status", "Output", "Last change"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        i.checks.map((c) =>
          h(
            "tr",
            { "data-check": c.id },
            h("th", { scope: "row", "data-label": "Check" }, c.id, h("span", { class: "muted block" }, checkTarget(c))),
            h("td", { "data-label": "Status" }, badge(c.status)),
            h("td", { "data-label": "Output" }, c.output ? h("pre", { class: "output" }, c.output) : h("span", { class: "muted" }, "none yet")),
            h("td", { "data-label": "Last change" }, stamp(c.last_change_unix)),
          ),
        ),
      ),
    );
  }

  function checkTarget(c) {
    if (c.kind === "http") return `${c.method} ${c.http} every ${duration(c.interval)}`;
    if (c.kind === "tcp") return `tcp ${c.tcp} every ${duration(c.interval)}`;
    return `ttl ${duration(c.ttl)}`;
  }

  // The last hour per instance as status bands: each band starts with the status the
  // instance had then (known from the first event after it, or its current status).
  function timelineChart(history, instances, span) {
    const end = history.now;
    // a process younger than the window knows nothing before it started: show from there
    const young = history.started > end - span;
    const start = young ? history.started : end - span;
    const known = start;
    const rows = new Map();
    const current = new Map(instances.map((i) => [i.id, i.status]));
    for (const i of instances) rows.set(i.id, []);
    for (const e of history.events) if (!rows.has(e.instance)) rows.set(e.instance, []);
    for (const e of history.events) rows.get(e.instance).push(e);
    for (const [id, events] of rows) if (!current.has(id) && !events.some((e) => e.time_unix > start)) rows.delete(id);
    if (!rows.size) return h("p", { class: "empty" }, "No instances in this window.");
    const width = 600;
    const rowHeight = 22;
    const label = 0;
    const x = (t) => label + ((Math.max(t, start) - start) / Math.max(end - start, 1)) * (width - label);
    const list = h("ul", { class: "timeline", "aria-label": young ? "Status of each instance since srvdns started" : `Status of each instance over the last ${span / 60} minutes` });
    for (const [id, events] of [...rows.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
      const bands = [];
      let status = events.length ? events[0].from : current.get(id) || null;
      let from = known;
      for (const e of events) {
        bands.push([from, e.time_unix, status]);
        status = e.to;
        from = e.time_unix;
      }
      bands.push([from, end, status]);
      const chart = svg(
        "svg",
        { viewBox: `0 0 ${width} ${rowHeight}`, preserveAspectRatio: "none", class: "bands", "aria-hidden": "true" },
        known > start ? svg("rect", { x: 0, y: 0, width: x(known), height: rowHeight, class: "band unknown" }) : null,
        bands
          .filter(([a, b]) => b > a)
          .map(([a, b, s]) =>
            svg("rect", { x: x(a), y: 0, width: Math.max(x(b) - x(a), 1), height: rowHeight, class: `band st-${s || "gone"}` }),
          ),
      );
      const spoken = bands
        .filter(([a, b, s]) => b > a && s)
        .map(([a, , s]) => `${s} from ${new Date(a * 1000).toLocaleTimeString()}`)
        .join(", ");
      list.append(
        h(
          "li",
          { "data-instance": id },
          h("span", { class: "tl-label" }, id),
          h("span", { class: "tl-chart", role: "img", "aria-label": `${id}: ${spoken || "not registered"}` }, chart),
        ),
      );
    }
    const axis = h(
      "div",
      { class: "axis", "aria-hidden": "true" },
      h("span", {}, young ? `started ${duration(end - start)} ago` : `${span / 60} min ago`),
      h("span", {}, `${duration((end - start) / 2)} ago`),
      h("span", {}, "now"),
    );
    const legend = h(
      "p",
      { class: "legend" },
      "Key: ",
      badge("passing"),
      " ",
      badge("warning", "warning (striped)"),
      " ",
      badge("critical", "critical (cross-hatched)"),
      " ",
      h("span", { class: "badge st-gone" }, "not registered / before this process started"),
    );
    const defs = svg(
      "svg",
      { class: "defs", width: 0, height: 0, "aria-hidden": "true", focusable: "false" },
      svg(
        "defs",
        {},
        svg(
          "pattern",
          { id: "pat-warning", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
          svg("rect", { width: 8, height: 8, class: "pat-bg-warning" }),
          svg("rect", { width: 3, height: 8, class: "pat-fg" }),
        ),
        svg(
          "pattern",
          { id: "pat-critical", width: 6, height: 6, patternUnits: "userSpaceOnUse" },
          svg("rect", { width: 6, height: 6, class: "pat-bg-critical" }),
          svg("path", { d: "M0,0 L6,6 M6,0 L0,6", class: "pat-line" }),
        ),
      ),
    );
    return [defs, list, axis, legend];
  }

  // -- start ------------------------------------------------------------------------

  function start() {
    const main = document.getElementById("main");
    const match = /^\/ui\/services\/([^/]+)\/?$/.exec(location.pathname);
    if (match) renderService(main, decodeURIComponent(match[1]).toLowerCase());
    else renderOverview(main);
  }

  window.srvdnsUi = { relative, duration, ttlText };
  start();
})();
