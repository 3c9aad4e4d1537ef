"""Response rate limiting: token buckets per client prefix, slip and drop, exemptions,
and the truncated slip reply."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rdatatype
import pytest

from srvdns.nameserver.rrl import ALLOW, DROP, SLIP, RateLimiter, prefix_of, truncated_reply


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("192.0.2.1", "192.0.2.254", True),
        ("192.0.2.1", "192.0.3.1", False),
        ("2001:db8:0:ff::1", "2001:db8:0:1::1", True),  # same /56
        ("2001:db8:0:ff::1", "2001:db8:0:ff00::1", False),
        ("2001:db8:0:100::1", "2001:db8:0:ff::1", False),
        ("fe80::1%eth0", "fe80::2", True),
    ],
)
def test_prefixes_group_slash_24_and_slash_56(a: str, b: str, same: bool) -> None:
    assert (prefix_of(a) == prefix_of(b)) is same


def test_burst_then_limited_with_every_second_slipped() -> None:
    limiter = RateLimiter(5, window=1, slip=2)
    verdicts = [limiter.check("192.0.2.7", 100.0) for _ in range(11)]
    assert verdicts == [ALLOW] * 5 + [DROP, SLIP, DROP, SLIP, DROP, SLIP]
    assert limiter.limited == 6


def test_the_bucket_refills_at_the_rate() -> None:
    limiter = RateLimiter(10, window=1, slip=0)
    for _ in range(10):
        assert limiter.check("192.0.2.7", 0.0) == ALLOW
    assert limiter.check("192.0.2.7", 0.0) == DROP
    assert limiter.check("192.0.2.7", 0.05) == DROP  # half a token
    assert limiter.check("192.0.2.7", 0.2) == ALLOW  # 1.5 tokens by now
    assert [limiter.check("192.0.2.7", 100.0) for _ in range(11)] == [ALLOW] * 10 + [DROP]


def test_window_banks_a_larger_burst() -> None:
    limiter = RateLimiter(2, window=5)
    assert [limiter.check("192.0.2.1", 0.0) for _ in range(11)].count(ALLOW) == 10


def test_other_prefixes_are_unaffected() -> None:
    limiter = RateLimiter(1, slip=1)
    assert limiter.check("192.0.2.1", 0.0) == ALLOW
    assert limiter.check("192.0.2.2", 0.0) == SLIP  # the same /24
    assert limiter.check("198.51.100.1", 0.0) == ALLOW
    assert limiter.check("2001:db8::1", 0.0) == ALLOW


def test_slip_one_truncates_every_limited_response_and_zero_none() -> None:
    always = RateLimiter(1, slip=1)
    never = RateLimiter(1, slip=0)
    assert [always.check("192.0.2.1", 0.0) for _ in range(4)] == [ALLOW, SLIP, SLIP, SLIP]
    assert [never.check("192.0.2.1", 0.0) for _ in range(4)] == [ALLOW, DROP, DROP, DROP]


def test_exempt_networks_are_never_limited() -> None:
    limiter = RateLimiter(1, slip=0, exempt=["192.0.2.5", "2001:db8::/32"])
    assert all(limiter.check("192.0.2.5", 0.0) == ALLOW for _ in range(50))
    assert all(limiter.check("2001:db8::9", 0.0) == ALLOW for _ in range(50))
    assert [limiter.check("192.0.2.6", 0.0) for _ in range(2)] == [ALLOW, DROP]


def test_the_prefix_table_is_bounded() -> None:
    limiter = RateLimiter(1, max_prefixes=100)
    for n in range(1000):
        limiter.check(f"10.{n // 256}.{n % 256}.1", 0.0)
        assert len(limiter) <= 100
    idle = RateLimiter(1, max_prefixes=100)
    for n in range(100):
        idle.check(f"10.0.{n}.1", 0.0)
    # Prefixes whose bucket has refilled are forgotten first: they would be allowed anyway.
    idle.check("10.200.0.1", 5.0)
    assert len(idle) == 1


@pytest.mark.parametrize(("rate", "window", "slip"), [(0, 1, 2), (1, 0, 2), (1, 1, -1)])
def test_bad_settings(rate: float, window: float, slip: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate, window=window, slip=slip)


def test_truncated_reply_keeps_id_question_and_rd() -> None:
    query = dns.message.make_query("Web.Service.Local", "SRV", use_edns=0)
    query.id = 4242
    wire = truncated_reply(query.to_wire())
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == 4242
    assert reply.flags & dns.flags.QR
    assert reply.flags & dns.flags.TC
    assert reply.flags & dns.flags.RD
    assert not reply.flags & dns.flags.AA
    assert reply.rcode() == 0
    assert str(reply.question[0].name) == "Web.Service.Local."
    assert reply.question[0].rdtype == dns.rdatatype.SRV
    assert not reply.answer
    assert not reply.authority
    assert not reply.additional
    assert query.is_response(reply)


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\x00\x01\x01\x00",  # shorter than a header
        bytes.fromhex("000181000001000000000000") + b"\x03web\x00\x00\x21\x00\x01",  # QR=1
        bytes.fromhex("000101000002000000000000") + b"\x03web\x00\x00\x21\x00\x01",  # QDCOUNT=2
        bytes.fromhex("000101000001000000000000") + b"\x03web\x00\x00\x21",  # short question
        bytes.fromhex("000101000001000000000000") + b"\xc0\x0c\x00\x21\x00\x01",  # pointer
        bytes.fromhex("000101000001000000000000") + b"\x05web",  # label runs off the end
    ],
)
def test_no_slip_reply_to_what_is_not_one_question(wire: bytes) -> None:
    assert truncated_reply(wire) is None
