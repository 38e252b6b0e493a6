"""The model out: `evaluate-best --save DIR` keeps every draw's network, `search predict` answers with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from evaluation_helpers import add_trials
from PIL import Image

from models.data.draws import make_draw
from models.data.pools import load_pools
from search.evaluation.export import load_models
from search.reporting.published import load_results


def _png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="L").save(path)
    return path


def test_saved_networks_answer_as_their_evaluation_scored_and_predict_reads_images(sqlite_url, run_search, tmp_path):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}])
    common = ("--study", "tiny", "--storage", sqlite_url, "--epochs", "1", "--threads", "1", "--no-select")

    done = run_search("evaluate-best", *common, "--draws", "2", "--save", "model", "--json")

    assert done.returncode == 0, done.stderr
    saved = load_models(tmp_path / "model")
    assert sorted(saved.models) == [1000, 1001] and saved.index["trial_number"] == 0
    (stored,) = load_results(sqlite_url, study_name="tiny")
    (result,) = stored.configurations
    for seed, network in saved.models.items():
        test = make_draw(load_pools(None), seed=seed, n_pairs=1000).test
        answer = network.predict(test.input)
        accuracy = int((answer.first_le_second.long() == test.target).sum()) / len(test.target)
        assert accuracy == saved.test_accuracy(seed) == result.accuracies[seed]  # scored as evaluation scored it

    more = run_search("evaluate-best", *common, "--draws", "3", "--save", "model", "--json")
    assert more.returncode == 0, more.stderr
    assert json.loads(more.stdout)["n_trained"] == 1  # draws 1000 and 1001 kept, 1002 trained and saved
    assert sorted(load_models(tmp_path / "model").models) == [1000, 1001, 1002]

    test = make_draw(load_pools(None), seed=1000, n_pairs=1000).test
    a, b = (_png(tmp_path / name, test.input[0, i].numpy()) for i, name in enumerate(("a.png", "b.png")))
    answered = run_search("predict", "--model", "model", str(a), str(b), "--json")
    assert answered.returncode == 0, answered.stderr
    (pair,) = json.loads(answered.stdout)["pairs"]
    assert 0.0 <= pair["p_a_le_b"] <= 1.0 and pair["a_le_b"] == (pair["p_a_le_b"] >= 0.5)
    assert len(pair["digits"]) == 2 and all(0 <= d <= 9 for d in pair["digits"])

    big = tmp_path / "pairs.npy"  # 28x28 pairs: pooled to 14x14 as the training digits were
    np.save(big, np.repeat(np.repeat(test.input[:5].numpy(), 2, axis=2), 2, axis=3))
    answered = run_search("predict", "--model", "model", str(big), "--draw", "1001", "--json")
    assert answered.returncode == 0, answered.stderr
    expected = saved.models[1001].predict(test.input[:5]).probability
    got = torch.tensor([p["p_a_le_b"] for p in json.loads(answered.stdout)["pairs"]])
    assert torch.allclose(got, expected, atol=1e-5)


def test_predict_and_save_refuse_bad_input_in_one_line(sqlite_url, run_search, tmp_path):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}])
    (tmp_path / "file").write_text("x")
    cases = [
        (("predict", "--model", "nowhere", "a.png", "b.png"), "a.png: no such file"),
        (("predict", "--model", "nowhere", "ok.png", "ok.png"), "no model.json there"),
        (("predict", "--model", "nowhere", "ok.png"), "one image is half a pair"),
        (
            ("evaluate-best", "--study", "tiny", "--storage", sqlite_url, "--no-select", "--save", "file"),
            "--save file: it is a file",
        ),
    ]
    _png(tmp_path / "big.png", np.zeros((30, 30)))
    _png(tmp_path / "ok.png", np.zeros((28, 28)))
    cases.append((("predict", "--model", "nowhere", "big.png", "ok.png"), "must be 28x28 or 14x14 pixels"))
    for args, message in cases:
        done = run_search(*args)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
