"""`make test` against servers that do not answer: a loud message and a failing run
(with CI=true above all), never a skip that lets a green build through."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REDIS_URL", "redis://127.0.0.1:1/0", "Redis unreachable at redis://127.0.0.1:1/0"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing", "PostgreSQL unreachable"),
    ],
    ids=["redis", "postgresql"],
)
def test_unreachable_server_fails_the_run_loudly_under_ci(variable, value, message):
    env = {**os.environ, "CI": "true", variable: value}
    result = subprocess.run(
        # Any test file: the check runs before collection.
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_healthz.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output
    assert "The test suite needs real PostgreSQL and Redis." in output
    assert " passed" not in output and "skipped" not in output
