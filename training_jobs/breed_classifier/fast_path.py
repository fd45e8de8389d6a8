"""The network as the endpoint runs it: TorchScript, traced, frozen and fused for this CPU, or eager.

Done when the model loads (``model_fn``), on the serving machine, from the artifact's own weights: nothing is
downloaded, no package is needed beyond the torch the container has, and the artifact stays portable (an
optimised TorchScript file carries choices made for the CPU it was made on, and one written by a newer torch
may not load in the inference container's). Before it is used it must agree with the eager network on a
fixed probe batch (same top class, |delta p| <= ``TOLERANCE``); otherwise, or if any step fails, the eager
network serves. On CPUs the frozen graph runs through PyTorch's oneDNN Graph fuser (convolution, batch norm
and activation in one kernel; ``torchscript+onednn``, 1.3-1.4x the plain TorchScript module on ResNet-50 in
``make bench``), else through ``optimize_for_inference`` (``torchscript``). Both come with the torch the
inference container has. ``INFERENCE_RUNTIME`` (a model environment variable) chooses: ``torchscript`` (the default),
``eager``, or ``bf16``, an opt-in reduced-precision mode: weights and activations in bfloat16, fast only on
CPUs with AVX512-BF16 or AMX (ml.m5 instances have neither), answers close to fp32 but not equal (``make
bench`` reports its top-1 agreement and |delta p| on a fixed image set; the model's start-up log, on a probe).
"""

from __future__ import annotations

import copy
import logging
import os
import warnings

import torch
from torch import nn

logger = logging.getLogger(__name__)

TOLERANCE = 1e-4
RUNTIMES = ("torchscript", "eager", "bf16")


class ReducedPrecision(nn.Module):
    """The network in bfloat16, answering float32 logits."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = copy.deepcopy(network).to(torch.bfloat16, memory_format=torch.channels_last)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs.to(torch.bfloat16, memory_format=torch.channels_last)).float()


def inference_network(network: nn.Module, image_size: int, device: torch.device) -> tuple[nn.Module, str]:
    """(the module to call, the runtime's name); ``network`` must be in eval mode on ``device``."""
    wanted = os.environ.get("INFERENCE_RUNTIME", "torchscript").strip().lower()
    if wanted not in RUNTIMES:
        logger.warning("INFERENCE_RUNTIME=%r is not one of %s; serving eager", wanted, RUNTIMES)
        return network, "eager"
    probe = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    if wanted == "bf16":
        reduced = ReducedPrecision(network)
        with torch.inference_mode():
            expected, got = torch.softmax(network(probe), 1), torch.softmax(reduced(probe), 1)
        agreement = float((expected.argmax(1) == got.argmax(1)).float().mean())
        difference = float((expected - got).abs().max())
        logger.info("bf16 on the probe: top-1 agreement %.2f, max |delta p| %.2e against fp32", agreement, difference)
        return reduced, "bf16"
    if wanted == "eager" or device.type != "cpu":  # the fusers below target CPUs
        return network, "eager"
    for runtime, build in (("torchscript+onednn", _fused), ("torchscript", _optimised)):
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")  # TorchScript's deprecation notices and the tracer's constant warnings
                module = build(network, probe[:1])
                # The profiling executor optimises a shape on its first calls: compare what it then runs,
                # and leave it optimised for the served shape (one image).
                for _ in range(WARM_UP_CALLS):
                    module(probe)
                expected, got = torch.softmax(network(probe), 1), torch.softmax(module(probe), 1)
                for _ in range(WARM_UP_CALLS):
                    module(probe[:1])
        except Exception:  # any failure to build it: the next runtime, and the eager network is always right
            logger.exception("could not build the %s network", runtime)
            _fusion(False)
            continue
        difference = float((expected - got).abs().max())
        if difference <= TOLERANCE and torch.equal(expected.argmax(1), got.argmax(1)):
            return module, runtime
        logger.warning("%s disagrees with eager on the probe (|delta p| %.2e)", runtime, difference)
        _fusion(False)
    logger.warning("serving eager")
    return network, "eager"


WARM_UP_CALLS = 3


def _fusion(enabled: bool) -> None:
    if hasattr(torch.jit, "enable_onednn_fusion"):
        torch.jit.enable_onednn_fusion(enabled)


def _fused(network: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Frozen TorchScript that the oneDNN Graph fuser compiles on its first calls (a process-wide switch)."""
    if not hasattr(torch.jit, "enable_onednn_fusion"):
        raise RuntimeError("this torch has no oneDNN Graph fuser")
    _fusion(True)
    return torch.jit.freeze(torch.jit.trace(network, example))


def _optimised(network: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Frozen TorchScript with ``optimize_for_inference``'s rewrites (oneDNN convolutions, folded batch norm)."""
    return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(network, example)))
