"""A fresh database on the real local PostgreSQL server, per test (``make postgres`` starts it;
``make test`` runs it first). Never mocked, never skipped: without a server the test fails and
says how to start one."""
from __future__ import annotations

import os
import uuid

import pytest

#: The role and database ``make postgres`` creates (``PG_URL`` in the Makefile).
DEFAULT_URL = "postgresql+psycopg://interp:interp@127.0.0.1:5432/interp"
URL_ENV = "INTERP_TEST_POSTGRES_URL"


def admin_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _connect(url: str):
    import psycopg

    try:
        return psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as err:
        pytest.fail(f"no PostgreSQL server at {url.split('@')[-1]} ({err}). Start it with "
                    f"`make postgres` (installs Debian's postgresql package when missing), or set "
                    f"{URL_ENV}.", pytrace=False)


def fresh_database() -> tuple[str, callable]:
    """``(url, drop)``: a new empty database owned by the test role, and a function dropping it."""
    admin = admin_url()
    name = f"interp_test_{uuid.uuid4().hex[:12]}"
    with _connect(admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with _connect(admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


@pytest.fixture
def postgres_url():
    """The SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    url, drop = fresh_database()
    try:
        yield url
    finally:
        drop()


def query(url: str, sql: str) -> list[tuple]:
    """Rows of ``sql`` run on the database at ``url``."""
    with _connect(url) as conn:
        return conn.execute(sql).fetchall()
