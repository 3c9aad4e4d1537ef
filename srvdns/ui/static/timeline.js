// The history timeline: each instance's status over a window as bands, patterned per
// status (never colour alone) and described in words for screen readers.
"use strict";

(function (ui) {
  const { h, svg, badge, duration } = ui;

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

  Object.assign(ui, { timelineChart });
})(window.srvdnsUi);
