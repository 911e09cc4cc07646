"""Where the gradebook lives: SQLite by default, PostgreSQL for concurrent graders.

One environment variable decides it, for every nbgrader command and every tool of this course:
``nbgrader_config.py`` sets nbgrader's own ``c.CourseDirectory.db_url`` from :func:`db_url`, and
the readers (:mod:`grading.scores`, :mod:`grading.demo`, :mod:`grading.roster`,
:mod:`grading.grade_all`) open the same URL.

- unset: ``sqlite:///<course root>/gradebook.db`` (nbgrader's default; one grader);
- ``INTERP_GRADEBOOK_URL=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE``: a PostgreSQL
  database (through SQLAlchemy's ``psycopg`` v3 driver), for several grading processes or
  machines at once. ``make postgres`` installs and starts a local server (Debian's package).

SQLite stays safe with several grading processes on one machine: :func:`serialize_sqlite_writes`
(installed by ``nbgrader_config.py``) makes every SQLAlchemy transaction on a SQLite file begin
with ``BEGIN IMMEDIATE`` and wait up to :data:`SQLITE_BUSY_SECONDS` for the lock. Transactions
are then serialized by SQLite's own lock, and the lock-upgrade deadlock behind SQLite's
``database is locked`` errors cannot happen (no connection ever holds a read lock while waiting
for the write lock). SQLite over a network file system is another matter (its locks are not
reliable there): a Dask cluster whose workers are on other machines must use PostgreSQL, and
:mod:`grading.grade_all` refuses SQLite with a scheduler address.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

#: The environment variable holding the gradebook's SQLAlchemy URL.
DB_URL_ENV = "INTERP_GRADEBOOK_URL"
#: nbgrader's course id for this course (``c.CourseDirectory.course_id``).
COURSE_ID = "interp-lecture2"
#: URL schemes accepted (SQLAlchemy dialect + driver).
SCHEMES = ("sqlite", "postgresql+psycopg")
#: How long a grader waits for SQLite's write lock before giving up (seconds).
SQLITE_BUSY_SECONDS = 600

_installed = False


def default_url(root: Path | str) -> str:
    """nbgrader's own default: ``gradebook.db`` in the course root (absolute path)."""
    return "sqlite:///" + os.path.abspath(os.path.join(str(root), "gradebook.db"))


def db_url(root: Path | str, environ: dict[str, str] | None = None) -> str:
    """The gradebook URL of the course at ``root``: ``$INTERP_GRADEBOOK_URL`` when set (checked
    by :func:`validate`), else :func:`default_url`."""
    environ = os.environ if environ is None else environ
    url = environ.get(DB_URL_ENV, "").strip()
    return validate(url) if url else default_url(root)


def scheme(url: str) -> str:
    """The URL's ``dialect[+driver]`` part."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


def validate(url: str) -> str:
    """``url`` when it names a database this course can use; ``ValueError`` saying what to
    write otherwise (``postgresql://`` alone would need psycopg2, which is not installed)."""
    kind = scheme(url)
    if kind in SCHEMES and (kind != "sqlite" or url.startswith("sqlite:///")):
        return url
    hint = ""
    if kind in ("postgresql", "postgres", "postgresql+psycopg2"):
        hint = " (write postgresql+psycopg://...: the driver installed is psycopg v3)"
    raise ValueError(
        f"{DB_URL_ENV}={redact(url)!r} is not a gradebook URL this course can use{hint}; "
        "expected sqlite:////absolute/path/gradebook.db or "
        "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE")


def is_sqlite(url: str) -> bool:
    return scheme(url) == "sqlite"


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and tables)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for another database or an in-memory one)."""
    if not is_sqlite(url):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def exists(url: str) -> bool:
    """Whether the gradebook exists (a SQLite file, or nbgrader's tables in the database)."""
    path = sqlite_path(url)
    if is_sqlite(url):
        return path is not None and path.is_file()
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return "assignment" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def open_gradebook(url: str):
    """nbgrader's :class:`~nbgrader.api.Gradebook` on ``url`` for this course (use as a context
    manager). Creates nbgrader's tables when the database is empty, as nbgrader does."""
    from nbgrader.api import Gradebook

    serialize_sqlite_writes()
    return Gradebook(url, course_id=COURSE_ID)


def serialize_sqlite_writes() -> None:
    """In this process, every SQLAlchemy transaction on a SQLite database begins with ``BEGIN
    IMMEDIATE`` (the write lock, taken at the start) and waits up to
    :data:`SQLITE_BUSY_SECONDS` for it. Other databases are untouched. Idempotent.

    This is SQLAlchemy's documented recipe for pysqlite's transactions (the driver's own
    ``BEGIN`` is turned off, SQLAlchemy's ``begin`` event emits ours), installed on every
    engine, so nbgrader's own ``Gradebook`` engines get it too.
    """
    global _installed
    if _installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    def on_connect(dbapi_connection, record):
        module = type(dbapi_connection).__module__
        if not module.startswith("sqlite3"):
            return
        dbapi_connection.isolation_level = None  # no implicit BEGIN from the driver
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")

    def on_begin(connection):
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(Pool, "connect", on_connect)
    event.listen(Engine, "begin", on_begin)
    _installed = True
