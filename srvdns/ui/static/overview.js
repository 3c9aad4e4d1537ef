// The overview (/ui/): every service with its status counts, filters kept in the address,
// and the last hour's status changes.
"use strict";

(function (ui) {
  const { h, fill, badge, ttlText, getJson, follow, changeList } = ui;

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
      ui.trafficPanel(),
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
            h(
              "td",
              { "data-label": "Changes (1 h)", class: "num" },
              s.changes
                ? h(
                    "a",
                    {
                      href: `/ui/services/${encodeURIComponent(s.name)}#history`,
                      "aria-label": `${s.changes} status changes of ${s.name} in the last hour`,
                    },
                    s.changes,
                  )
                : "0",
            ),
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

  Object.assign(ui, { renderOverview });
})(window.srvdnsUi);
