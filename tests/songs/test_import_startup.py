"""`manage.py import_songs` starts without the engine's heavy libraries.

A catalog import needs Django, NumPy and Arrow. scikit-learn, SciPy, faiss,
pandas and joblib (~1-3 s of start-up, ~100 MB) load only where a model is
trained or read: not through admin autodiscovery (clustering.admin), the
URLconf check, or the engine's modules reached from there. Checked in a
fresh interpreter (this one has them all loaded). pandas is the exception
once rows are read: pyarrow (26) imports it in its first conversion to NumPy.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import flagship_rows, write_csv

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "scipy", "faiss", "pandas", "joblib")

PROBE = """
import json, sys
from django.core.management import execute_from_command_line
mode = sys.argv[1]
if mode == "import":
    execute_from_command_line(["manage.py", "import_songs", sys.argv[2], "--no-progress"])
else:
    import django
    django.setup()
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
""".replace("HEAVY", repr(HEAVY))


def _probe(tmp_path: Path, *args: str) -> list[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")},
        "DJANGO_SETTINGS_MODULE": "musiccluster.settings",
        "VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(ROOT),
    }
    if args[0] == "import":
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, capture_output=True
        )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_django_setup_loads_no_training_library(tmp_path):
    assert _probe(tmp_path, "setup") == []


def test_import_songs_loads_no_training_library(tmp_path):
    path = write_csv(tmp_path / "catalog.csv", flagship_rows(20))
    # No active model: nothing asks for one, so nothing loads one.
    assert _probe(tmp_path, "import", str(path)) in ([], ["pandas"])
