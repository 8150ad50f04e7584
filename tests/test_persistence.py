import numpy as np
import pytest
import torch

from obce.activations import collect_ffn_activations
from obce.errors import ObceInputError
from obce.persistence import _fast_deaths_gram, gudhi_deaths, gudhi_diagram, h0_deaths, merge_radii, summarize


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def test_gudhi_diagram_has_n_points_one_essential():
    pts = np.array([[0.0], [1.0], [3.0], [7.0]])
    dgm = gudhi_diagram(pts)
    assert dgm.shape == (4, 2) and np.all(dgm[:, 0] == 0)
    np.testing.assert_allclose(dgm[:3, 1], [1.0, 2.0, 4.0])
    assert np.isinf(dgm[3, 1])


@pytest.fixture(scope="module")
def real_clouds(minilm):
    from tests.conftest import SENTENCES

    model, tok = minilm
    clouds = collect_ffn_activations(model, tok, SENTENCES * 3, layers=[0, 5], max_length=32, progress=False)
    return torch.cat([clouds[0][:48], clouds[5][:48]])  # 96 neurons, 36 points (duplicates!), R^32


def test_fast_merge_radii_equal_gudhi_on_minilm_activations(real_clouds):
    fast = h0_deaths(real_clouds)
    ref = h0_deaths(real_clouds, method="gudhi")
    assert fast.shape == ref.shape == (96, 35)
    assert _rel(fast, ref) <= 1e-5
    r = merge_radii(real_clouds)
    assert _rel(r, ref.max(1)) <= 1e-5 and np.all(r > 0)


def test_fast_equals_gudhi_on_distinct_real_points(minilm):
    from tests.conftest import SENTENCES

    model, tok = minilm
    clouds = collect_ffn_activations(model, tok, SENTENCES, layers=[2], max_length=24, progress=False)[2][:200]
    for dtype in (torch.float32, torch.float64):
        ref = np.array([gudhi_deaths(c) for c in clouds.double().numpy()])
        assert _rel(h0_deaths(clouds, dtype=dtype), ref) <= 1e-5


def test_constant_neuron_has_zero_merge_radius():
    cloud = np.tile(np.array([[0.3, -1.2, 5.0]]), (10, 1))[None]
    assert merge_radii(cloud)[0] == 0.0
    assert merge_radii(cloud, method="gudhi")[0] == 0.0


@pytest.mark.parametrize("case", ["two_points", "duplicates", "grid_ties", "collinear", "far_offset"])
def test_adversarial_clouds_match_gudhi(case):
    rng = np.random.default_rng(1)
    if case == "two_points":
        clouds = rng.normal(size=(5, 2, 3))
    elif case == "duplicates":
        base = rng.normal(size=(5, 6, 4))
        clouds = np.concatenate([base, base[:, :3]], axis=1)
    elif case == "grid_ties":
        g = np.stack(np.meshgrid(np.arange(5.0), np.arange(4.0)), -1).reshape(-1, 2)
        clouds = np.stack([g, g * 2.5, g[::-1]])
    elif case == "collinear":
        clouds = np.cumsum(rng.random((4, 30, 1)), axis=1) * np.ones((1, 1, 3))
    else:  # points far from the origin: Gram-form cancellation must not hurt
        clouds = 1e4 + rng.normal(size=(4, 40, 8))
    ref = h0_deaths(clouds, method="gudhi")
    assert _rel(h0_deaths(clouds), ref) <= 1e-5
    assert _rel(h0_deaths(clouds, dtype=torch.float64), ref) <= 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_accelerator_path_gram_and_batched_prim_matches_gudhi(dtype):
    """The CUDA path (Gram form + batched torch Prim) run on CPU tensors."""
    rng = np.random.default_rng(2)
    clouds = np.concatenate([rng.normal(size=(6, 40, 5)), np.repeat(rng.normal(size=(6, 1, 5)), 3, 1)], 1)
    ref = h0_deaths(clouds, method="gudhi")
    x = torch.tensor(clouds, dtype=dtype)
    got = _fast_deaths_gram(x - x.mean(1, keepdim=True)).sort(1).values.double().numpy()
    assert _rel(got, ref) <= (1e-5 if dtype == torch.float32 else 1e-12)


def test_summaries():
    pts = np.array([[[0.0], [1.0], [3.0], [7.0]]])
    assert summarize(h0_deaths(pts), "merge_radius")[0] == pytest.approx(4.0)
    assert summarize(h0_deaths(pts), "total_persistence")[0] == pytest.approx(7.0)
    assert summarize(h0_deaths(pts), "mean_death")[0] == pytest.approx(7.0 / 3)
    with pytest.raises(ObceInputError, match="summary"):
        summarize(h0_deaths(pts), "median")


def test_bad_clouds():
    with pytest.raises(ObceInputError, match="expected \\(n_neurons, n_points, dim\\)"):
        h0_deaths(np.zeros((3, 4)))
    with pytest.raises(ObceInputError, match="at least 2"):
        h0_deaths(np.zeros((3, 1, 4)))
    bad = np.zeros((3, 4, 2))
    bad[2, 1, 0] = np.nan
    with pytest.raises(ObceInputError, match="neuron 2"):
        h0_deaths(bad)
    with pytest.raises(ObceInputError, match="method"):
        h0_deaths(np.zeros((1, 3, 2)), method="ripser")


TRITON_CHECK = """
import numpy as np, torch
from obce.persistence import _fast_deaths_gram, h0_deaths
rng = np.random.default_rng(0)
worst = 0.0
for p, d in [(2, 3), (7, 4), (33, 5), (64, 8)]:
    c = rng.normal(size=(5, p, d))
    if p > 3:
        c[:, -2:] = c[:, :2]  # coincident points: zero-length edges
    ref = h0_deaths(c, method="gudhi")
    x = torch.tensor(c, dtype=torch.float32)
    got = _fast_deaths_gram(x - x.mean(1, keepdim=True), prim="triton").sort(1).values.double().numpy()
    worst = max(worst, float(np.abs(got - ref).max() / max(ref.max(), 1e-12)))
print("WORST", worst)
"""


def test_triton_prim_kernel_matches_gudhi_in_the_interpreter():
    """The CUDA kernel's logic, run by Triton's CPU interpreter (the GPU itself is not needed)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", TRITON_CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    worst = float(proc.stdout.split("WORST")[1])
    assert worst <= 1e-5
