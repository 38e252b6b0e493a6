"""The built wheel works like the checkout: installed into a fresh venv, `search run --study smoke` runs.

The fresh venv gets only the wheel (no checkout on its path); its third-party dependencies come from the
project's venv through a plain path entry (no download, and no editable install of this checkout: a path
entry's own .pth files are not run).
"""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_in_a_fresh_venv_runs_the_smoke_study(tmp_path: Path) -> None:
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
    work = tmp_path / "elsewhere"  # a fresh directory: nothing of the checkout around
    work.mkdir()
    search = venv / "bin" / "search"

    where = subprocess.run(
        [python, "-c", "import search, studies; print(search.__file__); print(studies.__file__)"],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(path.startswith(purelib) for path in where), where  # the installed copy, not the checkout

    run = subprocess.run(
        [
            search,
            "run",
            "--study",
            "smoke",
            "--trials",
            "2",
            "--workers",
            "1",
            "--threads",
            "1",
            "--storage",
            f"sqlite:///{work / 'smoke.db'}",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{work / 'smoke.db'}")
    assert len([t for t in study.trials if t.state.is_finished()]) == 2
