"""The gradebook's location (grading/gradebook.py): one environment variable for nbgrader and the
course's tools; SQLite by default, PostgreSQL (a real local server) for concurrent graders;
several processes on one SQLite file take turns instead of failing with "database is locked"."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grading import course, demo, gradebook, scores
from support_pg import postgres_url, query  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
A = "L2A2_gradcam"


def test_db_url_default_environment_and_bad_urls(tmp_path):
    assert gradebook.db_url(tmp_path, {}) == f"sqlite:///{tmp_path / 'gradebook.db'}"
    pg = "postgresql+psycopg://u:secret@db.example:5432/grades"
    assert gradebook.db_url(tmp_path, {gradebook.DB_URL_ENV: f" {pg} "}) == pg
    assert gradebook.redact(pg) == "postgresql+psycopg://u:***@db.example:5432/grades"
    assert gradebook.sqlite_path(gradebook.default_url(tmp_path)) == tmp_path / "gradebook.db"
    with pytest.raises(ValueError, match=r"psycopg v3") as err:
        gradebook.db_url(tmp_path, {gradebook.DB_URL_ENV: "postgresql://u:secret@h/db"})
    assert "secret" not in str(err.value)
    for bad in ("mysql://u@h/db", "sqlite://relative.db", "gradebook.db"):
        with pytest.raises(ValueError, match="not a gradebook URL"):
            gradebook.db_url(tmp_path, {gradebook.DB_URL_ENV: bad})


def test_nbgrader_and_the_tools_use_the_postgres_gradebook(tmp_path, postgres_url, monkeypatch):
    """nbgrader_config.py hands INTERP_GRADEBOOK_URL to nbgrader's own db_url: generate_assignment
    records the assignment in PostgreSQL and writes no gradebook.db; the course's readers find it
    there."""
    root = course.copy_course(tmp_path / "course")
    env = {gradebook.DB_URL_ENV: postgres_url}
    course.nbgrader("generate_assignment", A, "--force", root=root, env=env)
    course.nbgrader("db", "student", "add", "ada", "--first-name=Ada", "--last-name=Lovelace",
                    root=root, env=env)
    assert not (root / "gradebook.db").exists()
    assert query(postgres_url, "SELECT name FROM assignment") == [(A,)]
    assert query(postgres_url, "SELECT id, first_name, last_name FROM student") == [
        ("ada", "Ada", "Lovelace")]
    assert query(postgres_url, "SELECT count(*) FROM grade_cells")[0][0] == len(
        scores.graded_parts(root, A))

    monkeypatch.setenv(gradebook.DB_URL_ENV, postgres_url)
    assert demo.in_gradebook(root, A)
    assert scores.submitted_students(root, A) == []
    table = scores.score_table(root, A)
    assert "postgresql+psycopg://interp:***@" in table and "test_grad_cam_hidden" in table


def test_a_wrong_url_stops_nbgrader(tmp_path):
    root = course.copy_course(tmp_path / "course")
    with pytest.raises(RuntimeError, match="psycopg v3"):
        course.nbgrader("db", "student", "list", root=root,
                        env={gradebook.DB_URL_ENV: "postgresql://u:p@127.0.0.1/x"})


WRITER = textwrap.dedent("""\
    import sys
    sys.path.insert(0, {root!r})
    from grading import gradebook
    url, who, n, serialize = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    if serialize:
        gradebook.serialize_sqlite_writes()
    from nbgrader.api import Gradebook
    errors = []
    for i in range(n):
        try:
            with Gradebook(url, course_id=gradebook.COURSE_ID) as gb:
                gb.update_or_create_student(f"{{who}}-{{i}}", first_name="First")
                gb.find_student(f"{{who}}-{{i}}").last_name = "Last"
                gb.db.commit()
        except Exception as err:
            errors.append(type(err).__name__ + ": " + str(err).splitlines()[0])
    print(len(errors), errors[:1])
""")
HOLDER = textwrap.dedent("""\
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")   # a writer that keeps the lock for a while
    conn.execute("INSERT INTO student (id) VALUES ('holder')")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
""")


def _writers(tmp_path: Path, serialize: bool, writers: int = 4, n: int = 25) -> tuple[list[str], str]:
    """``writers`` processes each adding ``n`` students through nbgrader's Gradebook while
    another process holds SQLite's write lock for 12 s (longer than the driver's default 5 s
    wait). Returns each writer's report line and the database URL."""
    db = tmp_path / f"gradebook-{int(serialize)}.db"
    url = f"sqlite:///{db}"
    with gradebook.open_gradebook(url):
        pass  # nbgrader's tables
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT)))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "12"], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    procs = [subprocess.Popen([sys.executable, str(script), url, f"w{k}", str(n), str(int(serialize))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(writers)]
    out = [p.communicate(timeout=300)[0].strip() for p in procs]
    holder.wait(timeout=60)
    return out, url


def test_sqlite_writers_take_turns_instead_of_failing(tmp_path):
    start = time.perf_counter()
    reports, url = _writers(tmp_path, serialize=True)
    assert all(r.startswith("0 ") for r in reports), reports
    with gradebook.open_gradebook(url) as gb:
        ids = {s.id for s in gb.students}
    assert ids == {"holder"} | {f"w{k}-{i}" for k in range(4) for i in range(25)}
    assert time.perf_counter() - start < 200

    # The same writers without serialize_sqlite_writes: the held lock makes them fail.
    reports, _ = _writers(tmp_path, serialize=False, writers=2, n=3)
    assert any("database is locked" in r for r in reports), reports
