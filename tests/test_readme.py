"""The README's configuration table names every environment variable the code reads
(issue 2: "configuration table (every environment variable)")."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["servicedesk/settings.py", "servicedesk/launcher.py", "servicedesk/celery.py"]


def test_configuration_table_lists_every_environment_variable():
    source = "".join((ROOT / path).read_text() for path in SOURCES)
    read = set(re.findall(r'environ(?:\.get)?[(\[]\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))
    read.discard("DJANGO_SETTINGS_MODULE")
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HOST", "PORT"} <= read
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Architecture")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert sorted(read - documented) == []
