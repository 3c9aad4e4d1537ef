"""The status page in a real browser: Debian's headless Chromium driven by Playwright,
against a real srvdns with static and registered services and one failing check.

Screenshots go to ``$SRVDNS_UI_SCREENSHOTS`` when set (``docs/ui`` holds the committed
ones), else to the test's temporary directory.  Without ``/usr/bin/chromium`` (Debian
package ``chromium``) or the ``playwright`` package the tests are skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import SrvdnsProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000

CONFIG = """\
[[zone]]
name = "service.local"
ttl = 5
service_ttl = { postgres = 30 }

[[zone.service]]
name = "postgres"
instances = [
  { id = "pg-1", address = "10.0.0.5", port = 5432, tags = ["primary"] },
  { id = "pg-2", address = "10.0.0.6", port = 5432, tags = ["replica"] },
]

[[zone]]
name = "service.consul"
ttl = 10
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (Debian package chromium): no browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go."""
    target = Path(os.environ.get("SRVDNS_UI_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _closed_port() -> int:
    """A loopback port nothing listens on (a TCP check against it fails: refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _register(server: SrvdnsProcess, service: str, instance: str, **body: Any) -> None:
    with server.http() as http:
        reply = http.put(f"/v1/services/{service}/instances/{instance}", json=body)
        assert reply.status_code in (200, 201), reply.text


@pytest.fixture
def server(launch: Callable[..., SrvdnsProcess]) -> SrvdnsProcess:
    """srvdns with two zones, a static service, and registered ones: web with one passing
    and one failing instance, cache with a heartbeat lease."""
    server = launch(CONFIG)
    _register(
        server,
        "web",
        "web-1",
        address="10.0.0.11",
        port=8080,
        tags=["v2"],
        meta={"version": "2.1"},
        weights={"passing": 10, "warning": 1},
    )
    port = _closed_port()
    _register(
        server,
        "web",
        "web-2",
        address="127.0.0.1",
        port=port,
        tags=["v1"],
        check={"tcp": f"127.0.0.1:{port}", "interval": "1s", "timeout": "500ms"},
    )
    _register(server, "cache", "cache-1", address="10.0.1.1", port=6379, ttl="10m")
    return server


class Page:
    """A browser tab that fails the test on any script error or console error (a content
    security policy violation included)."""

    def __init__(self, browser: Any, viewport: dict[str, int], expect_404: bool = False) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.expect_404 = expect_404
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        if self.expect_404 and "status of 404" in message.text:
            return
        self.errors.append(message.text)

    def close(self) -> None:
        self.context.close()
        assert self.errors == []


@pytest.fixture
def tab(browser: Any) -> Iterator[Callable[[dict[str, int]], Any]]:
    opened: list[Page] = []

    def _open(viewport: dict[str, int], expect_404: bool = False) -> Any:
        page = Page(browser, viewport, expect_404)
        opened.append(page)
        return page.page

    yield _open
    for page in opened:
        page.close()


def _row(page: Any, service: str) -> Any:
    return page.locator(f'#services-table tr[data-service="{service}"]')


def _count(page: Any, service: str, status: str) -> int:
    return int(_row(page, service).locator(f"td.count-{status}").get_attribute("data-count"))


def _text(locator: Any) -> str:
    """The element's text as a screen reader gets it: every word, single-spaced."""
    return " ".join(str(locator.text_content()).split())


def _shown(page: Any) -> list[str]:
    names: list[str] = page.locator("#services-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.service)"
    )
    return names


def test_overview(server: SrvdnsProcess, tab: Callable[..., Any], shots: Path) -> None:
    page = tab(DESKTOP)
    page.goto(f"{server.api}/ui/")
    page.wait_for_selector('#services-table tr[data-service="web"]')
    page.locator('#live[data-state="live"]').wait_for()
    assert _shown(page) == ["cache", "postgres", "web"]
    assert (_count(page, "web", "passing"), _count(page, "web", "critical")) == (1, 1)
    assert _count(page, "postgres", "passing") == 2
    assert _text(_row(page, "web").locator("td.count-critical")) == "✕ 1 critical"
    assert _row(page, "postgres").locator("td[data-label=TTL]").inner_text() == (
        "30 s (service.local), 10 s (service.consul)"
    )
    summary = _text(page.locator("#summary"))
    assert summary.startswith("3 services, 5 instances: ✓ 4 passing ! 0 warning ✕ 1 critical")
    assert "DNS 127.0.0.1 port" in summary
    # DNS traffic from the server's own counters: queries sent now show up as a rate
    for _ in range(20):
        server.query("web.service.local", "SRV")
    page.locator("#dns-rate").wait_for()
    page.wait_for_function(
        "() => /^[0-9.]+$/.test(document.querySelector('#dns-rate').textContent)"
    )
    assert "no data" not in _text(page.locator("#dns-note"))

    page.fill("#filter-name", "pos")
    assert _shown(page) == ["postgres"]
    assert page.locator("#shown").inner_text() == "Showing 1 of 3 services"
    assert "q=pos" in page.url
    page.fill("#filter-name", "")
    page.select_option("#filter-tag", "v2")
    assert _shown(page) == ["web"]
    page.select_option("#filter-tag", "")
    page.check("#filter-problems")
    assert _shown(page) == ["web"]
    page.uncheck("#filter-problems")

    # live: a registration shows up without reloading the page
    _register(server, "api", "api-1", address="10.0.2.1", port=443, tags=["v2"])
    page.wait_for_selector('#services-table tr[data-service="api"]')
    assert _shown(page) == ["api", "cache", "postgres", "web"]
    page.locator("#changes li", has_text="api-1").wait_for()
    assert _text(page.locator("#changes li").first).endswith("api / api-1: registered, ✓ passing")

    # the count of a service's changes leads to its history
    _row(page, "web").get_by_role("link", name="2 status changes of web in the last hour").click()
    page.locator("#timeline li[data-instance='web-2']").wait_for()
    assert page.url.endswith("/ui/services/web#history")
    page.go_back()
    page.wait_for_selector('#services-table tr[data-service="api"]')

    # landmarks and labels
    for landmark in ("header", "nav", "main", "footer"):
        assert page.locator(landmark).count() >= 1
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select')]"
        ".filter(e => !document.querySelector(`label[for='${e.id}']`) && !e.closest('label'))"
        ".map(e => e.id)"
    )
    assert unlabelled == []
    page.screenshot(path=str(shots / "overview-desktop.png"), full_page=True)


def test_service_page(server: SrvdnsProcess, tab: Callable[..., Any], shots: Path) -> None:
    page = tab(DESKTOP)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{server.api}/ui/services/web")
    card = page.locator('.instance-card[data-instance="web-1"]')
    card.wait_for()
    text = _text(card)
    assert "10.0.0.11:8080" in text
    assert "10 (warning: 1)" in text
    assert "version=2.1" in text
    assert "web-1.instance.web.service.consul" in text
    failing = page.locator('.instance-card[data-instance="web-2"] tr[data-check="tcp"]')
    failing.filter(has_text=re.compile("refused", re.IGNORECASE)).wait_for()
    assert "✕ critical" in _text(failing)
    assert "not in DNS" in _text(page.locator('.instance-card[data-instance="web-2"]'))

    host, port = server.dns[0]
    command = page.locator("#dig-command").inner_text()
    assert command == f"dig @{host} -p {port} web.service.local SRV"
    page.locator(
        "details.zone summary", has_text="service.consul"
    ).click()  # the other zones start folded
    names = page.locator(".dns-name").all_inner_texts()
    for name in ("_web._tcp.service.local", "v2.web.service.local", "_web._v1.service.consul"):
        assert name in names
    page.get_by_role("button", name="Copy the dig command for web.service.local").first.click()
    assert page.evaluate("navigator.clipboard.readText()") == command
    # the command the page gives works as it is
    answer = subprocess.run(
        [*shlex.split(command), "+short"], capture_output=True, text=True, timeout=15, check=True
    )
    assert answer.stdout.split() == ["0", "10", "8080", "web-1.instance.web.service.local."]
    page.screenshot(path=str(shots / "service-desktop.png"), full_page=True)


def test_history_shows_a_status_change(
    server: SrvdnsProcess, tab: Callable[..., Any], shots: Path
) -> None:
    _register(server, "web", "web-3", address="10.0.0.13", port=8080, ttl="1s")
    page = tab(DESKTOP)
    page.goto(f"{server.api}/ui/services/web")
    page.wait_for_selector('#timeline li[data-instance="web-3"]')
    # the lease lapses, the health loop records it, and the open page follows
    event = page.locator("#timeline ol.events li", has_text="web-3").filter(
        has_text="passing → ✕ critical"
    )
    event.first.wait_for()
    label = page.locator('#timeline li[data-instance="web-3"] .tl-chart').get_attribute(
        "aria-label"
    )
    assert label is not None
    assert "passing from" in label
    assert "critical from" in label
    # a heartbeat brings it back (until the 1 s lease lapses again)
    with server.http() as http:
        assert http.put("/v1/services/web/instances/web-3/heartbeat").status_code == 200
    page.locator("#timeline ol.events li", has_text="web-3").filter(
        has_text="critical → ✓ passing"
    ).first.wait_for()
    page.check("input[name=window][value='300']")
    # younger than the window: the chart starts when srvdns did
    assert page.locator("#timeline .axis").inner_text().startswith("started")
    assert page.locator("#timeline ul.timeline").get_attribute("aria-label") == (
        "Status of each instance since srvdns started"
    )
    assert page.locator("#timeline rect.band.st-critical").count() >= 1
    with server.http() as http:
        events = http.get("/v1/history", params={"service": "web"}).json()["events"]
    assert ("web-3", "passing", "critical") in [(e["instance"], e["from"], e["to"]) for e in events]
    page.screenshot(path=str(shots / "history-desktop.png"), full_page=True)


def test_phone_width(server: SrvdnsProcess, tab: Callable[..., Any], shots: Path) -> None:
    page = tab(PHONE)
    page.goto(f"{server.api}/ui/")
    page.wait_for_selector('#services-table tr[data-service="web"]')
    # no sideways scrolling, and the table became labelled cards
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("#services-table thead").bounding_box()["height"] <= 1
    page.screenshot(path=str(shots / "overview-phone.png"), full_page=True)
    page.goto(f"{server.api}/ui/services/web")
    page.wait_for_selector('.instance-card[data-instance="web-2"]')
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(shots / "service-phone.png"), full_page=True)


def test_an_unknown_service(server: SrvdnsProcess, tab: Callable[..., Any]) -> None:
    page = tab(DESKTOP, expect_404=True)
    page.goto(f"{server.api}/ui/services/nope")
    page.wait_for_selector("#instances p.empty")
    assert "no instances now" in _text(page.locator("main .summary"))


def test_traffic_figures_from_two_samples(server: SrvdnsProcess, tab: Callable[..., Any]) -> None:
    """The page's reading of the DNS counters (``srvdns_dns_queries_total`` and the
    ``srvdns_dns_answer_seconds`` histogram), on two samples 10 s apart."""
    page = tab(DESKTOP)
    page.goto(f"{server.api}/ui/")
    page.wait_for_selector("#services-table")
    before = """
# TYPE srvdns_dns_queries_total counter
srvdns_dns_queries_total{transport="udp",qtype="SRV",rcode="NOERROR"} 100
srvdns_dns_queries_total{transport="tcp",qtype="A",rcode="NXDOMAIN"} 10
srvdns_dns_answer_seconds_bucket{le="0.001"} 50
srvdns_dns_answer_seconds_bucket{le="0.01"} 100
srvdns_dns_answer_seconds_bucket{le="+Inf"} 110
srvdns_dns_answer_seconds_sum 0.2
srvdns_dns_answer_seconds_count 110
"""
    after = """
srvdns_dns_queries_total{transport="udp",qtype="SRV",rcode="NOERROR"} 1080
srvdns_dns_queries_total{transport="tcp",qtype="A",rcode="NXDOMAIN"} 30
srvdns_dns_answer_seconds_bucket{le="0.001"} 550
srvdns_dns_answer_seconds_bucket{le="0.01"} 1100
srvdns_dns_answer_seconds_bucket{le="+Inf"} 1110
srvdns_dns_answer_seconds_sum 2.2
srvdns_dns_answer_seconds_count 1110
"""
    result = page.evaluate(
        """([a, b]) => {
            const M = window.srvdnsMetrics;
            return M.summarize(M.parseMetrics(a), M.parseMetrics(b), 10);
        }""",
        [before, after],
    )
    assert result["rate"] == pytest.approx(100.0)
    assert result["mean"] == pytest.approx(0.002)
    assert result["rcodes"] == {"NOERROR": 980, "NXDOMAIN": 20}
    # 1000 new answers: 500 under 1 ms, 500 more under 10 ms, none slower
    assert result["p50"] == {"value": pytest.approx(0.001), "above": False}
    assert result["p99"]["value"] == pytest.approx(0.001 + 0.009 * 490 / 500)
    absent = page.evaluate(
        "window.srvdnsMetrics.summarize("
        "window.srvdnsMetrics.parseMetrics('x 1'), window.srvdnsMetrics.parseMetrics('x 2'), 5)"
    )
    assert absent == {"rate": None, "mean": None, "p50": None, "p99": None, "rcodes": None}
