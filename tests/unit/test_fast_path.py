"""The endpoint's TorchScript fast path: the same answers as eager fp32, or eager itself."""

from pathlib import Path

import pytest
import torch
from inference import decode_image
from starter_model import build_starter_artifact

from breed_classifier.artifact import load_artifact
from breed_classifier.fast_path import inference_network
from breed_classifier.model import ModelConfig, build_model
from offline_stack.synthetic_images import class_image, encoded_image

PHOTOS = Path(__file__).resolve().parent.parent / "data" / "photos"


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    """Real ImageNet weights (the starter model): answers that mean something on real photos."""
    model_dir = tmp_path_factory.mktemp("starter") / "model"
    build_starter_artifact(model_dir)
    return load_artifact(model_dir)


def images() -> list[bytes]:
    import random

    rng = random.Random(5)
    generated = [encoded_image(class_image(i % 4, rng, 96), "JPEG") for i in range(8)]
    return [path.read_bytes() for path in sorted(PHOTOS.glob("*.*")) if path.suffix != ".md"] + generated


def test_the_fast_path_gives_eager_fp32_answers_on_real_photos_and_generated_images(starter):
    fast, runtime = inference_network(starter.network, starter.config.image_size, torch.device("cpu"))
    assert runtime in ("torchscript+onednn", "torchscript")
    from breed_classifier.preprocessing import eval_transform

    transform = eval_transform(starter.config.image_size, starter.config.mean, starter.config.std)
    batch = torch.stack([transform(decode_image(image, starter.config.image_size)) for image in images()])
    with torch.inference_mode():
        eager, served = torch.softmax(starter.network(batch), 1), torch.softmax(fast(batch), 1)
    assert torch.equal(eager.argmax(1), served.argmax(1))
    assert float((eager - served).abs().max()) <= 1e-3


def test_eager_when_asked(monkeypatch):
    monkeypatch.setenv("INFERENCE_RUNTIME", "eager")
    network = build_model(ModelConfig.for_architecture("small_cnn", 3, 32)).eval()
    assert inference_network(network, 32, torch.device("cpu")) == (network, "eager")


def test_eager_when_the_runtime_is_unknown(monkeypatch, caplog):
    monkeypatch.setenv("INFERENCE_RUNTIME", "onnx")
    network = build_model(ModelConfig.for_architecture("small_cnn", 3, 32)).eval()
    assert inference_network(network, 32, torch.device("cpu")) == (network, "eager")
    assert "INFERENCE_RUNTIME='onnx'" in caplog.text


def test_eager_when_tracing_fails(monkeypatch, caplog):
    def broken_trace(*args, **kwargs):
        raise RuntimeError("cannot trace this network")

    monkeypatch.setattr(torch.jit, "trace", broken_trace)
    network = build_model(ModelConfig.for_architecture("small_cnn", 3, 32)).eval()
    assert inference_network(network, 32, torch.device("cpu")) == (network, "eager")
    assert "serving eager" in caplog.text


def test_plain_torchscript_when_the_fuser_cannot_build(monkeypatch, caplog):
    from breed_classifier import fast_path

    def no_fuser(network, example):
        raise RuntimeError("this torch has no oneDNN Graph fuser")

    monkeypatch.setattr(fast_path, "_fused", no_fuser)
    network = build_model(ModelConfig.for_architecture("small_cnn", 3, 32)).eval()
    module, runtime = inference_network(network, 32, torch.device("cpu"))
    assert runtime == "torchscript" and isinstance(module, torch.jit.ScriptModule)
    assert "could not build the torchscript+onednn network" in caplog.text


def test_eager_when_the_traced_network_disagrees(caplog):
    class BatchDependent(torch.nn.Module):
        """Python control flow on the batch size: a trace (made with one image) freezes one branch."""

        def forward(self, x):
            flat = x.flatten(1)[:, :3]
            return flat if x.shape[0] == 1 else -flat

    network = BatchDependent().eval()
    assert inference_network(network, 8, torch.device("cpu"))[1] == "eager"
    assert "disagrees" in caplog.text


def test_opt_in_bf16_answers_float32_close_to_fp32_and_logs_its_agreement(starter, monkeypatch, caplog):
    import logging

    caplog.set_level(logging.INFO)
    monkeypatch.setenv("INFERENCE_RUNTIME", "bf16")
    reduced, runtime = inference_network(starter.network, starter.config.image_size, torch.device("cpu"))
    assert runtime == "bf16" and "top-1 agreement" in caplog.text
    from breed_classifier.preprocessing import eval_transform

    transform = eval_transform(starter.config.image_size, starter.config.mean, starter.config.std)
    batch = torch.stack([transform(decode_image(image, starter.config.image_size)) for image in images()])
    with torch.inference_mode():
        eager, answered = torch.softmax(starter.network(batch), 1), torch.softmax(reduced(batch), 1)
    assert answered.dtype == torch.float32
    assert float((eager.argmax(1) == answered.argmax(1)).float().mean()) >= 0.8
    assert float((eager - answered).abs().max()) < 0.2


class _Logits(torch.nn.Module):
    """Answers the same logits for every image."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1).clone()


@pytest.mark.parametrize(
    ("served", "accepted"),
    [
        ([2e-4, 0.0, 0.0], True),  # |delta p| about 4.4e-5: within 1e-4, same top class
        ([1e-3, 0.0, 0.0], False),  # |delta p| about 2.2e-4: beyond the tolerance
        ([2e-6, 1e-6, 0.0], False),  # within the tolerance, but another top class
    ],
)
def test_the_fast_network_serves_only_within_the_tolerance_and_with_the_same_top_class(monkeypatch, served, accepted):
    from breed_classifier import fast_path

    assert fast_path.TOLERANCE == 1e-4
    eager = _Logits([0.0, 1e-6, 0.0] if served[1] else [0.0, 0.0, 0.0]).eval()
    built = []
    for name in ("_fused", "_optimised"):
        monkeypatch.setattr(fast_path, name, lambda network, example: built.append(1) or _Logits(served))
    module, runtime = inference_network(eager, 8, torch.device("cpu"))
    if accepted:
        assert runtime == "torchscript+onednn" and len(built) == 1 and module is not eager
    else:
        assert (module, runtime) == (eager, "eager") and len(built) == 2  # both tried, both refused


def test_the_fast_network_is_warmed_on_the_probe_and_on_one_image(monkeypatch):
    from breed_classifier import fast_path

    shapes = []

    class Recording(_Logits):
        def forward(self, x):
            shapes.append(x.shape[0])
            return super().forward(x)

    monkeypatch.setattr(fast_path, "_fused", lambda network, example: Recording([0.0, 0.0]))
    assert inference_network(_Logits([0.0, 0.0]).eval(), 8, torch.device("cpu"))[1] == "torchscript+onednn"
    assert shapes == [2, 2, 2, 2, 1, 1, 1]  # 3 warm-up calls, the comparison, then 3 calls of the served shape


def test_a_fast_network_exactly_at_the_tolerance_serves(monkeypatch):
    """The bound is inclusive: with the tolerance set to 0, a fast network answering exactly eager's
    probabilities (|delta p| = 0) still serves."""
    from breed_classifier import fast_path

    monkeypatch.setattr(fast_path, "TOLERANCE", 0.0)
    monkeypatch.setattr(fast_path, "_fused", lambda network, example: _Logits([0.5, 0.0, 0.0]))
    assert inference_network(_Logits([0.5, 0.0, 0.0]).eval(), 8, torch.device("cpu"))[1] == "torchscript+onednn"


@pytest.mark.parametrize("failure", ["build", "disagree"])
def test_the_fuser_is_switched_off_again_when_its_network_is_not_used(monkeypatch, failure):
    """oneDNN fusion is a process-wide switch: left on after its network was refused, it would fuse
    whatever TorchScript the process runs next."""
    from breed_classifier import fast_path

    def fused(network, example):
        fast_path._fusion(True)
        if failure == "build":
            raise RuntimeError("no fuser")
        return _Logits([0.0, 9.0])  # another top class: refused

    monkeypatch.setattr(fast_path, "_fused", fused)
    monkeypatch.setattr(fast_path, "_optimised", lambda network, example: _Logits([9.0, 0.0]))
    try:
        assert inference_network(_Logits([9.0, 0.0]).eval(), 8, torch.device("cpu"))[1] == "torchscript"
        assert torch._C._jit_llga_enabled() is False
    finally:
        fast_path._fusion(False)


def test_bf16_logs_its_measured_agreement_and_difference(monkeypatch, caplog):
    """The log states what was measured on the probe: full agreement and a small |delta p| for a network
    bf16 represents well, none for a network whose answer bf16 flips."""
    import logging
    import re

    caplog.set_level(logging.INFO)
    monkeypatch.setenv("INFERENCE_RUNTIME", "bf16")
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    inference_network(network, 8, torch.device("cpu"))
    agreement, difference = re.search(r"top-1 agreement ([\d.]+), max \|delta p\| ([\d.e+-]+)", caplog.text).groups()
    assert float(agreement) == 1.0
    assert 0.0 < float(difference) < 0.05

    class Flipping(torch.nn.Module):
        """Class 1 wins by 1e-3 in fp32; bfloat16 rounds 1.001 to 1.0, so class 0 (first of equals) wins."""

        def forward(self, x):
            ones = torch.ones(x.shape[0], 1, dtype=x.dtype)
            return torch.cat([ones, ones * 1.001], 1)

    caplog.clear()
    inference_network(Flipping().eval(), 8, torch.device("cpu"))
    agreement, difference = re.search(r"top-1 agreement ([\d.]+), max \|delta p\| ([\d.e+-]+)", caplog.text).groups()
    assert float(agreement) == 0.0
    assert float(difference) == pytest.approx(0.00025, rel=0.05)


@pytest.mark.skipif(not hasattr(torch.jit, "enable_onednn_fusion"), reason="this torch has no oneDNN Graph fuser")
def test_where_torch_has_the_onednn_fuser_the_network_is_fused_with_it_switched_on():
    # (The skip: torch builds without the fuser; the pinned CPU torch has it, so it runs here and in CI.)
    torch.manual_seed(0)
    network = build_model(ModelConfig.for_architecture("small_cnn", 3, 32)).eval()
    try:
        fast, runtime = inference_network(network, 32, torch.device("cpu"))
        assert runtime == "torchscript+onednn" and isinstance(fast, torch.jit.ScriptModule)
        assert torch.jit.onednn_fusion_enabled()  # the process-wide switch the fused graph needs
    finally:
        torch.jit.enable_onednn_fusion(False)
