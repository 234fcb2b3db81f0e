"""A CreateSession message is refused by its counts before anything is copied out of it."""

from __future__ import annotations

import pytest

from control_plane.api import convert
from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.domain.rules import RuleLimits
from control_plane.domain.session import MetadataLimits
from control_plane.errors import InvalidArgument


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        ({"egress": [pb.EgressRule() for _ in range(20_000)]}, "egress", "got 20000"),
        ({"egress": [pb.EgressRule(host="a.test"), pb.EgressRule(host="203.0.113.0/24", ports=range(1, 12_001))]},
         "egress[1].ports", "got 12000"),
        ({"labels": {f"k{i}": "" for i in range(25_000)}}, "labels", "got 25000"),
        ({"env": {f"V{i}": "" for i in range(10_000)}}, "env", "got 10000"),
    ],
)  # fmt: skip
def test_counts_are_checked_before_conversion(request_fields: dict[str, object], field: str, reason: str) -> None:
    req = pb.CreateSessionRequest(**request_fields)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as err:
        convert.create_request(req, RuleLimits(), MetadataLimits())
    assert err.value.field == field and reason in err.value.message


def test_a_request_within_the_counts_converts() -> None:
    req = pb.CreateSessionRequest(egress=[pb.EgressRule(host="a.test", ports=[443])], labels={"a": "b"}, env={"X": "1"})
    converted = convert.create_request(req, RuleLimits(), MetadataLimits())
    assert converted.egress == [
        {"host": "a.test", "ports": [443], "methods": [], "paths": [], "inspect": False, "credential": ""}
    ]
    assert (converted.labels, converted.env) == ({"a": "b"}, {"X": "1"})
