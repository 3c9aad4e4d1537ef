// DNS traffic from the server's own Prometheus counters: parse the text exposition of
// /metrics, and turn two samples into a query rate and answer latencies.
"use strict";

(function (global) {
  const QUERIES = "srvdns_dns_queries_total";
  const ANSWER = "srvdns_dns_answer_seconds";
  const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
  const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

  function number(text) {
    if (text === "+Inf") return Infinity;
    if (text === "-Inf") return -Infinity;
    return Number(text);
  }

  function labels(text) {
    const out = {};
    if (!text) return out;
    for (const match of text.matchAll(LABEL)) {
      out[match[1]] = match[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    return out;
  }

  // One sample of what the page needs, or null parts where a metric is absent:
  // {queries: {total, by: {transport: {}, qtype: {}, rcode: {}}} | null,
  //  answer: {count, sum, buckets: [[le, cumulative], ...]} | null}
  function parseMetrics(text) {
    let queries = null;
    let answer = null;
    const buckets = new Map();
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      const match = LINE.exec(line);
      if (!match) continue;
      const name = match[1];
      const value = number(match[4]);
      if (Number.isNaN(value)) continue;
      const found = labels(match[3]);
      if (name === QUERIES) {
        queries = queries || { total: 0, by: { transport: {}, qtype: {}, rcode: {} } };
        queries.total += value;
        for (const key of ["transport", "qtype", "rcode"]) {
          const label = found[key] || "?";
          queries.by[key][label] = (queries.by[key][label] || 0) + value;
        }
      } else if (name === ANSWER + "_bucket" && "le" in found) {
        const le = number(found.le);
        buckets.set(le, (buckets.get(le) || 0) + value);
        answer = answer || { count: 0, sum: 0, buckets: [] };
      } else if (name === ANSWER + "_count") {
        answer = answer || { count: 0, sum: 0, buckets: [] };
        answer.count += value;
      } else if (name === ANSWER + "_sum") {
        answer = answer || { count: 0, sum: 0, buckets: [] };
        answer.sum += value;
      }
    }
    if (answer) answer.buckets = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
    return { queries, answer };
  }

  // The q-quantile (0..1) of the observations between two cumulative bucket lists, by
  // linear interpolation inside the bucket, as Prometheus' histogram_quantile does.
  function quantile(q, before, after) {
    const prev = new Map(before || []);
    const deltas = after.map(([le, cum]) => [le, cum - (prev.get(le) || 0)]);
    const total = deltas.length ? deltas[deltas.length - 1][1] : 0;
    if (!(total > 0)) return null;
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (const [le, cum] of deltas) {
      if (cum >= rank) {
        if (le === Infinity) return { value: lower, above: true };
        const inBucket = cum - below;
        const fraction = inBucket > 0 ? (rank - below) / inBucket : 1;
        return { value: lower + (le - lower) * fraction, above: false };
      }
      lower = le;
      below = cum;
    }
    return null;
  }

  // What happened between two samples taken `seconds` apart; null parts when a metric
  // is absent, or was reset (the server restarted) in between.
  function summarize(before, after, seconds) {
    const out = { rate: null, mean: null, p50: null, p99: null, rcodes: null };
    if (!before || !after || !(seconds > 0)) return out;
    if (before.queries && after.queries && after.queries.total >= before.queries.total) {
      out.rate = (after.queries.total - before.queries.total) / seconds;
      const rcodes = {};
      for (const [rcode, count] of Object.entries(after.queries.by.rcode)) {
        const delta = count - (before.queries.by.rcode[rcode] || 0);
        if (delta > 0) rcodes[rcode] = delta;
      }
      out.rcodes = rcodes;
    }
    const a = before.answer;
    const b = after.answer;
    if (a && b && b.count >= a.count) {
      const count = b.count - a.count;
      if (count > 0) {
        out.mean = (b.sum - a.sum) / count;
        out.p50 = quantile(0.5, a.buckets, b.buckets);
        out.p99 = quantile(0.99, a.buckets, b.buckets);
      } else {
        out.mean = 0;
      }
      if (out.rate === null) out.rate = count / seconds;
    }
    return out;
  }

  global.srvdnsMetrics = { parseMetrics, quantile, summarize };
})(window);
