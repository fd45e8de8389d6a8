"""The modes a frozen backbone keeps while its head trains, with and without the feature cache.

A frozen backbone in training mode would not learn (no gradients) yet would still change: its batch-norm layers
re-estimate ImageNet's statistics from each small batch, so the "frozen" features drift epoch by epoch and the served
network is not the one validated. ``_run_epoch`` trains the head and keeps the backbone in evaluation mode; evaluation
epochs run everything in evaluation mode. Each module's mode is recorded at its own forward pass.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from breed_classifier.training import _run_epoch


def _network() -> nn.Sequential:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    for parameter in backbone.parameters():
        parameter.requires_grad = False
    return nn.Sequential(backbone, nn.Linear(4, 3))


def _record_modes(network: nn.Module) -> dict[str, list[bool]]:
    seen: dict[str, list[bool]] = {}
    for name, module in network.named_modules():
        if isinstance(module, (nn.BatchNorm2d, nn.Linear)):
            module.register_forward_hook(lambda m, _i, _o, name=name: seen.setdefault(name, []).append(m.training))
    return seen


def _loader(shape: tuple[int, ...]) -> DataLoader:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(8, *shape, generator=generator) * 3 + 2  # far from ImageNet's statistics
    return DataLoader(TensorDataset(inputs, torch.randint(0, 3, (8,), generator=generator)), batch_size=4)


def test_without_the_cache_the_head_trains_and_the_frozen_backbone_stays_in_evaluation_mode():
    network = _network()
    backbone, head = network
    statistics = backbone[1].running_mean.clone(), backbone[1].running_var.clone()
    weights = head.weight.clone()
    modes = _record_modes(network)
    optimizer = torch.optim.SGD([p for p in network.parameters() if p.requires_grad], lr=0.1)
    _run_epoch(network, _loader((3, 8, 8)), torch.device("cpu"), optimizer, frozen=backbone)
    assert modes["0.1"] == [False, False], "the frozen backbone's batch norm ran in training mode"
    assert modes["1"] == [True, True], "the head trains in training mode (its dropout, if any, is on)"
    assert torch.equal(backbone[1].running_mean, statistics[0]) and torch.equal(backbone[1].running_var, statistics[1])
    assert not torch.equal(head.weight, weights), "the head learnt"
    # And a validation epoch afterwards runs everything in evaluation mode
    _run_epoch(network, _loader((3, 8, 8)), torch.device("cpu"))
    assert modes["0.1"][-2:] == [False, False] and modes["1"][-2:] == [False, False]


def test_a_backbone_left_out_of_frozen_would_drift_which_is_what_the_first_test_guards():
    network = _network()
    backbone = network[0]
    before = backbone[1].running_mean.clone()
    optimizer = torch.optim.SGD([p for p in network.parameters() if p.requires_grad], lr=0.1)
    _run_epoch(network, _loader((3, 8, 8)), torch.device("cpu"), optimizer)  # frozen not given
    assert not torch.equal(backbone[1].running_mean, before)


def test_with_the_cache_the_head_trains_on_features_and_the_backbone_is_neither_run_nor_changed():
    network = _network()
    backbone, head = network
    statistics = backbone[1].running_mean.clone()
    modes = _record_modes(network)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    _run_epoch(head, _loader((4,)), torch.device("cpu"), optimizer, frozen=backbone)  # cached features (N, 4)
    assert "0.1" not in modes and modes["1"] == [True, True]
    assert backbone.training is False and torch.equal(backbone[1].running_mean, statistics)
