"""The README walk-through, with the real `wio` console script in a shell: register, log in, create a
workspace, `eval "$(wio env)"`, then `aws s3 cp` a file up and back, byte for byte."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import unique

BIN = Path(sys.executable).parent


def wio_script() -> str:
    script = shutil.which("wio", path=str(BIN)) or shutil.which("wio")
    assert script, "the `wio` console script is not installed (pip install -e .)"
    return script


WALKTHROUGH = r"""
set -euo pipefail
wio register "$USERNAME" --no-login --password-stdin <<< "$PASSWORD"
wio login "$USERNAME" --password-stdin <<< "$PASSWORD"
wio workspace create "$WORKSPACE"
eval "$(wio env)"
aws s3 cp "$SRC" "s3://$WORKSPACE/data/sample.bin"
aws s3 cp "s3://$WORKSPACE/data/sample.bin" "$BACK"
"""


def test_readme_walkthrough_with_the_real_console_script(stack, tmp_path):
    src, back = tmp_path / "sample.bin", tmp_path / "back.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WIO_"))}
    env.update(PATH=f"{Path(wio_script()).parent}:{BIN}:{env.get('PATH', '')}", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "xdg"), WIO_API=stack.api_url, WIO_S3=stack.s3_url,
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               USERNAME=unique("walk"), PASSWORD=secrets.token_urlsafe(12), WORKSPACE=unique("walkws"),
               SRC=str(src), BACK=str(back))
    done = subprocess.run(["bash", "-c", WALKTHROUGH], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "upload: " in done.stdout and "download: " in done.stdout
    assert back.read_bytes() == src.read_bytes()

    # the real script fails with one line on stderr and exit code 1, never a traceback
    failed = subprocess.run([wio_script(), "workspace", "info", "no-such-workspace-anywhere"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("Error: no workspace named") and len(failed.stderr.splitlines()) == 1
