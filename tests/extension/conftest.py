"""Shared helpers for the browser-extension tests: Chromium, Node and a driver."""
import json
import os
import subprocess

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(REPO_ROOT, "tests", "extension", "drive_extension.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def drive_extension(extension_dir: str, statements, tmp_path) -> dict:
    """Runs the extension on a page of ``statements`` in headless Chromium (a list, or the
    driver's spec object: ``statements``, ``extra_html``, ``feedback``)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: `make setup` installs Debian's chromium")
    path = tmp_path / "statements.json"
    path.write_text(json.dumps(statements if isinstance(statements, dict) else list(statements)))
    done = subprocess.run(["node", DRIVER, extension_dir, str(path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"extension driver failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])
