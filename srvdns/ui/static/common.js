// The status page's shared parts: DOM building (all text goes in as text nodes), time
// formatting against the server's clock, and following an endpoint with blocking queries.
"use strict";

window.srvdnsUi = {};

(function (ui) {
  const WAIT = "55s";
  const MIN_REFRESH = 1000;
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

  // -- status changes (overview and service page) -----------------------------------

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

  Object.assign(ui, { h, append, fill, svg, badge, setLive, serverNow, relative, stamp, duration, ttlText, getJson, follow, sleep, STATUS, HOUR, changeList, transition });
})(window.srvdnsUi);
