"""Which database a URL names, and how it is named in logs: never with its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.db.url import describe, kind_of, sqlite_url
from control_plane.errors import InvalidArgument


def test_a_url_names_sqlite_or_postgresql() -> None:
    assert kind_of("sqlite:///var/lib/sandgate/sandgate.db") == "sqlite"
    assert kind_of("postgresql://sandgate@db:5432/sandgate") == kind_of("postgres://db/x") == "postgresql"
    assert sqlite_url(Path("/srv/sg/sandgate.db")) == "sqlite:///srv/sg/sandgate.db"


@pytest.mark.parametrize("url", ["", "/var/lib/sandgate.db", "sqlite://", "mysql://db/x", "postgresql:/db"])
def test_any_other_url_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        kind_of(url)
    assert err.value.field == "database_url"


def test_a_password_never_reaches_a_log() -> None:
    assert describe("postgresql://sandgate:s3cret@db:5432/sg?sslmode=verify-full") == (
        "postgresql://sandgate:***@db:5432/sg?sslmode=verify-full"
    )
    assert describe("postgresql://db/sg?user=u&password=s3cret&sslmode=require") == (
        "postgresql://db/sg?user=u&password=***&sslmode=require"
    )
    assert describe("sqlite:///var/lib/sandgate/sandgate.db") == "sqlite:///var/lib/sandgate/sandgate.db"
