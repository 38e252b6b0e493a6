"""A new user's path with real processes: a fresh venv with the built wheel, the smoke study, `show --json`,
`evaluate-best --save`, `predict` on a pair, and the dashboard showing the saved models in headless Chromium.

The fresh venv gets only the wheel (no checkout on its path); its third-party dependencies come from the
project's venv through a plain path entry (no download, and no editable install of this checkout: a path
entry's own .pth files are not run).
"""

from __future__ import annotations

import json
import site
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
from browser import wait_for_text
from PIL import Image
from ports import free_port

from models.data.draws import make_draw
from models.data.pools import load_pools

ROOT = Path(__file__).resolve().parents[2]


def _venv_with_the_wheel(tmp_path: Path) -> tuple[Path, str]:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = dist.glob("digit_pair_search-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dependencies = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (Path(purelib) / "dependencies.pth").write_text("\n".join(dependencies) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    return venv, purelib


@pytest.mark.browser
def test_a_new_user_installs_the_wheel_runs_smoke_saves_a_model_predicts_and_sees_it(tmp_path: Path, browser):
    venv, purelib = _venv_with_the_wheel(tmp_path)
    home = tmp_path / "elsewhere"  # a fresh directory: nothing of the checkout around; the study in ./search.db
    home.mkdir()

    def search(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv / "bin" / "search", *args], cwd=home, capture_output=True, text=True, timeout=timeout
        )

    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import search, studies; print(search.__file__); print(studies.__file__)"],
        cwd=home,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(path.startswith(purelib) for path in where), where  # the installed copy, not the checkout

    run = search("run", "--study", "smoke", "--trials", "3", "--workers", "1", "--threads", "1")
    assert run.returncode == 0, run.stderr
    shown = json.loads(search("show", "--study", "smoke", "--json").stdout)
    assert shown["study"] == "smoke" and shown["best_trials"]
    saved = search(
        "evaluate-best",
        "--study",
        "smoke",
        "--draws",
        "2",
        "--finalists",
        "2",
        "--repeats",
        "1",
        "--threads",
        "1",
        "--save",
        "model",
        "--json",
    )  # fmt: skip  (one flag and its value per pair reads better than one per line)
    assert saved.returncode == 0, saved.stderr
    chosen = json.loads(saved.stdout)["configurations"][0]["trial_number"]
    index = json.loads((home / "model" / "model.json").read_text())
    assert index["trial_number"] == chosen and sorted(index["draws"]) == ["1000", "1001"]

    test = make_draw(load_pools(None), seed=1000, n_pairs=1000).test
    for i, name in enumerate(("a.png", "b.png")):
        Image.fromarray(test.input[0, i].numpy().clip(0, 255).astype(np.uint8), mode="L").save(home / name)
    answered = search("predict", "--model", "model", "a.png", "b.png", "--json")
    assert answered.returncode == 0, answered.stderr
    (pair,) = json.loads(answered.stdout)["pairs"]
    assert 0.0 <= pair["p_a_le_b"] <= 1.0 and len(pair["digits"]) == 2

    port = free_port()
    dashboard = subprocess.Popen(
        [venv / "bin" / "search", "dashboard", "--port", str(port)],
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _listens(port):
            assert dashboard.poll() is None and time.monotonic() < deadline, dashboard.communicate()
            time.sleep(0.2)
        browser.get(f"http://127.0.0.1:{port}/dashboard/studies/1")
        page = wait_for_text(browser, "smoke", "draw-1000.pt", "model.json", timeout=60)
        assert "draw-1001.pt" in page  # every saved network, on the study's page
    finally:
        dashboard.terminate()
        dashboard.communicate(timeout=30)


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
