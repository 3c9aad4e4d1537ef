"""A simple registration body gives, without the model, the very instance the model gives.

For every body: either ``simple_instance`` declines it (None: the model answers it), or
the model accepts it and builds an equal instance, field by field and type by type.
A body the model refuses is never accepted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from srvdns.api.schemas import InvalidField, RegisterRequest
from srvdns.api.simplebody import simple_instance
from srvdns.config import HealthConfig
from srvdns.model import Instance


def by_model(body: Any) -> Instance | None:
    try:
        request = RegisterRequest.model_validate(body, from_attributes=True)
        return request.to_instance("web", "web-1", HealthConfig())
    except (ValueError, ValidationError, InvalidField):
        return None


def same(left: Instance, right: Instance) -> bool:
    """Equal, and every field of the same type (a list is not a tuple, True is not 1)."""
    return left == right and all(
        type(getattr(left, name)) is type(getattr(right, name)) for name in left.__slots__
    )


def agrees(body: Any) -> None:
    fast = simple_instance(body, "web", "web-1")
    model = by_model(body)
    if fast is not None:
        assert model is not None, body
        assert same(fast, model), (fast, model)


ACCEPTED = [
    {"address": "10.0.0.1", "port": 8080},
    {"address": "::FFFF:10.0.0.2", "port": 1},
    {"address": "fe80::1", "port": 65535, "tags": ["V2", "v2", "blue"], "meta": {"a.b": "x"}},
    {"address": "10.0.0.1", "port": 80, "weight": 7, "priority": 3, "tags": [], "meta": {}},
    {"address": "10.0.0.1", "port": 80, "weight": None, "priority": 0},
    {"address": "10.0.0.1", "port": 80, "meta": {"k": "é ünïcode", "z": "", "a": "1"}},
]

DECLINED = [
    {"address": "10.0.0.1", "port": 80, "ttl": "30s"},
    {"address": "10.0.0.1", "port": 80, "check": {"tcp": "10.0.0.1:80"}},
    {"address": "10.0.0.1", "port": 80, "weights": {"warning": 0}},
    {"address": "10.0.0.1", "port": 80, "extra": 1},
    {"address": "10.0.0.1"},
    {"port": 80},
    {"address": "10.0.0.1", "port": True},
    {"address": "10.0.0.1", "port": 80.0},
    {"address": "10.0.0.1", "port": "80"},
    {"address": "10.0.0.1", "port": 0},
    {"address": "10.0.0.1", "port": 65536},
    {"address": "web.example", "port": 80},
    {"address": "fe80::1%eth0", "port": 80},
    {"address": ["10.0.0.1"], "port": 80},
    {"address": "10.0.0.1", "port": 80, "tags": None},
    {"address": "10.0.0.1", "port": 80, "tags": "v2"},
    {"address": "10.0.0.1", "port": 80, "tags": ["-bad"]},
    {"address": "10.0.0.1", "port": 80, "tags": [1]},
    {"address": "10.0.0.1", "port": 80, "tags": ["t"] * 65},
    {"address": "10.0.0.1", "port": 80, "meta": None},
    {"address": "10.0.0.1", "port": 80, "meta": {"k": 1}},
    {"address": "10.0.0.1", "port": 80, "meta": {"bad key": "v"}},
    {"address": "10.0.0.1", "port": 80, "meta": {"k": "\x00"}},
    {"address": "10.0.0.1", "port": 80, "meta": {f"k{n}": "v" for n in range(65)}},
    {"address": "10.0.0.1", "port": 80, "weight": -1},
    {"address": "10.0.0.1", "port": 80, "weight": False},
    {"address": "10.0.0.1", "port": 80, "priority": None},
    {"address": "10.0.0.1", "port": 80, "priority": 65536},
    [{"address": "10.0.0.1", "port": 80}],
    None,
    "body",
]


@pytest.mark.parametrize("body", ACCEPTED, ids=str)
def test_a_simple_body_gives_the_models_instance(body: dict[str, Any]) -> None:
    fast = simple_instance(json.loads(json.dumps(body)), "web", "web-1")
    model = by_model(body)
    assert fast is not None
    assert model is not None
    assert same(fast, model)


@pytest.mark.parametrize("body", DECLINED, ids=str)
def test_anything_else_is_left_to_the_model(body: Any) -> None:
    assert simple_instance(body, "web", "web-1") is None


_LABELS = st.sampled_from(["v2", "V2", "blue", "a-b", "-x", "", "ok1", "x" * 64, "ünï"])
_TEXT = st.sampled_from(["", "x", "a.b", "bad key", "é", "\x01", "v" * 513, "1"])
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=70000),
    st.floats(allow_nan=False, max_value=1e6, min_value=-1e6),
    _TEXT,
    st.lists(_LABELS, max_size=4),
    st.dictionaries(_TEXT, _TEXT, max_size=3),
)
_BODIES = st.fixed_dictionaries(
    {
        "address": st.sampled_from(["10.0.0.1", "::1", "::FFFF:10.0.0.2", "010.0.0.1", "x", 1]),
        "port": st.one_of(st.integers(min_value=-1, max_value=70000), st.booleans(), _TEXT),
    },
    optional={
        "tags": st.one_of(st.lists(_LABELS, max_size=5), _VALUES),
        "meta": st.one_of(st.dictionaries(_TEXT, _TEXT, max_size=4), _VALUES),
        "weight": _VALUES,
        "priority": _VALUES,
        "ttl": _VALUES,
    },
)


@settings(max_examples=400, deadline=None)
@given(_BODIES)
def test_whatever_the_fast_way_accepts_the_model_accepts_alike(body: dict[str, Any]) -> None:
    agrees(json.loads(json.dumps(body)))
