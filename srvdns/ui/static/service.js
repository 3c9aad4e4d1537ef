// One service (/ui/services/NAME): its instances and checks, the dig command, the names
// that resolve to it in every zone, and its history.
"use strict";

(function (ui) {
  const { h, fill, badge, serverNow, stamp, duration, ttlText, getJson, follow, HOUR, changeList } = ui;

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
    let arrived = false; // the first render scrolls to the address's #fragment
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
        ui.timelineChart(events, instanceRows, span),
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
        { class: "panel", id: "history", "aria-labelledby": "hist-title" },
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
      if (!arrived && location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
      arrived = true;
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

  Object.assign(ui, { renderService });
})(window.srvdnsUi);
