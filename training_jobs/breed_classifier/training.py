"""The training loop behind every entry point: data-parallel when there are several processes.

Every configured epoch runs (unless early stopping's patience runs out); loss and accuracy are per
sample and summed over all processes before anyone decides anything, so every rank takes the same
early-stopping decision. Only rank 0 writes; all ranks meet at a barrier before exiting.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from breed_classifier.artifact import save_artifact
from breed_classifier.calibration import calibration_of, fit_temperature
from breed_classifier.curves import write_training_curves
from breed_classifier.data import DataLayoutError, DataSplits, image_folder, load_datasets, make_loader
from breed_classifier.distributed import (
    ProcessGroupSpec,
    detect_process_group,
    gather_from_processes,
    start_process_group,
    stop_process_group,
    sum_across_processes,
)
from breed_classifier.feature_cache import (
    CachedViews,
    Features,
    FeatureSpec,
    FeatureStore,
    backbone_digest,
    compute_features,
    data_digest,
    training_views,
)
from breed_classifier.metrics import defused, metric_line
from breed_classifier.model import (
    NORMALISATION,
    NOT_A_DOG_FOLDER,
    ModelConfig,
    build_model,
    imagenet_classifier,
    with_dog_gate,
)
from breed_classifier.preprocessing import eval_transform
from breed_classifier.progress import Progress, load_checkpoint, run_identity, save_checkpoint

logger = logging.getLogger("breed_classifier")


@dataclass(frozen=True)
class Hyperparameters:
    """What a training run can be tuned with; names match the command-line flags (``--learning-rate``)."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.001
    patience: int = 3
    architecture: str = "resnet50"
    pretrained: bool = True
    freeze_backbone: bool = True
    image_size: int = 224
    num_workers: int = 2
    seed: int = 42
    # auto: a frozen pretrained backbone's features are computed once and the head trains on them
    # (breed_classifier.feature_cache); off: the backbone runs on every image every epoch
    feature_cache: str = "auto"
    cached_views: int = 2  # views of each training image in the cache: centre, mirror, then seeded augmentations
    # a frozen pretrained backbone's own ImageNet classifier answers "not a dog" (breed_classifier.model)
    dog_gate: bool = True


@dataclass(frozen=True)
class TrainingRun:
    data: DataSplits
    model_dir: Path
    output_dir: Path
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    show_progress: bool = False
    # Where to keep a checkpoint after every epoch and resume from (managed spot training syncs it to S3).
    checkpoint_dir: Path | None = None
    # The training job's name on SageMaker (a spot restart keeps it); a checkpoint of another job is not resumed
    run_name: str | None = None
    # ImageNet weights to start from (model.PRETRAINED_WEIGHTS names the file); None: download or weights package
    pretrained_dir: Path | None = None
    # Where computed backbone features are kept by content address and found again (None: computed every run)
    feature_cache_dir: Path | None = None
    # Compute the frozen backbone's features into model_dir (by content address) and train nothing
    extract_features: bool = False
    # The SHA-256 the control plane recorded for the features archive it gives (feature_cache.FeatureStore)
    features_sha256: str | None = None

    @property
    def uses_feature_cache(self) -> bool:
        """A frozen backbone gives the same features every epoch (whatever its weights): computed once."""
        hp = self.hyperparameters
        return hp.freeze_backbone and hp.feature_cache != "off"


@dataclass
class TrainingResult:
    history: list[dict]
    best_epoch: int
    test: dict | None
    classes: list[str]
    stopped_early: bool
    seconds: float
    # the temperature fitted on the validation split, and its expected calibration error before and after
    calibration: dict | None = None


def run_training(run: TrainingRun, emit: Callable[[str], None] = print) -> TrainingResult:
    """Train, select the epoch with the lowest valid loss, report on test, and (rank 0) save the artifact."""
    spec = detect_process_group()
    start_process_group(spec)
    try:
        return _train(run, spec, defused(emit) if spec.is_main else (lambda line: None))
    finally:
        stop_process_group()


def _train(run: TrainingRun, spec: ProcessGroupSpec, emit: Callable[[str], None]) -> TrainingResult:
    started = time.monotonic()
    if run.extract_features:
        if not run.uses_feature_cache:
            raise DataLayoutError("--extract-features needs --freeze-backbone true and --feature-cache auto")
        # The model folder is the store: the job's model.tar.gz is the features, found again by their key
        setup = _set_up(replace(run, feature_cache_dir=run.model_dir), spec, emit)
        emit(f"features extracted to {run.model_dir}; no model was trained")
        return TrainingResult([], 0, None, setup.classes, False, time.monotonic() - started)
    setup = _set_up(run, spec, emit)
    progress = Progress.resumed(setup.checkpoint, setup, emit) if setup.checkpoint else Progress()
    _fit(run, spec, setup, progress, emit)
    if progress.best_state is None:
        raise FloatingPointError("the valid loss was never a finite number; lower --learning-rate")
    setup.network.load_state_dict(progress.best_state)
    calibration = _calibrate(setup, emit)
    test = None
    if "test" in setup.loaders:
        test_loss, test_accuracy = _run_epoch(setup.scorer, setup.loaders["test"], setup.device)
        test = {"test_loss": test_loss, "test_accuracy": test_accuracy}
        emit(metric_line(**test))
    result = TrainingResult(
        progress.history,
        progress.best_epoch,
        test,
        setup.classes,
        progress.stopped_early,
        time.monotonic() - started,
        calibration,
    )
    if spec.is_main:
        save_artifact(run.model_dir, *_servable(run, setup, emit))
        _write_reports(run, result)
        emit(f"saved the model (epoch {progress.best_epoch}) to {run.model_dir}")
    return result


def _servable(run: TrainingRun, setup: Setup, emit: Callable[[str], None]) -> tuple[nn.Module, ModelConfig, list[str]]:
    """What the artifact holds: the trained network behind the backbone's ImageNet classifier, so it answers "not a
    dog" for a photo of no dog (``model.DogGatedNetwork``), when the backbone is that classifier's (pretrained and
    frozen); else the trained network as it is, every answer a breed."""
    hp = run.hyperparameters
    classifier = imagenet_classifier(hp.architecture, run.pretrained_dir) if hp.pretrained and hp.dog_gate else None
    if not hp.freeze_backbone or classifier is None:
        why = "the backbone was fine-tuned" if not hp.freeze_backbone else "no ImageNet classifier"
        why = "--dog-gate false" if not hp.dog_gate else why
        emit(f'no "not a dog" answer: {why} for {hp.architecture}; every answer is a breed')
        return setup.network, setup.config, setup.classes
    network, config = with_dog_gate(setup.network, setup.config, classifier)
    emit('"not a dog" answered when the backbone\'s ImageNet classifier finds less than a quarter of a dog')
    return network, config, [*setup.classes, NOT_A_DOG_FOLDER]


def _calibrate(setup: Setup, emit: Callable[[str], None]) -> dict | None:
    """Fit the temperature on the whole validation split (every process's shard) and put it in the config the
    artifact is saved with; the answers' ranks do not change (``calibration``)."""
    if "valid" not in setup.loaders:
        return None
    logits, labels = _outputs(setup.scorer, setup.loaders["valid"], setup.device)
    shards = gather_from_processes((logits, labels))
    logits, labels = torch.cat([shard[0] for shard in shards]), torch.cat([shard[1] for shard in shards])
    temperature = fit_temperature(logits, labels)
    before, after = calibration_of(logits, labels), calibration_of(logits, labels, temperature)
    fitted = f"temperature {temperature:.3f} fitted on {len(labels)} validation images"
    if after > before:
        # The likelihood's optimum can state probabilities further from the accuracy on a small split (binned
        # ECE is not the likelihood): then the answers keep the network's own, the better of the two
        emit(f"calibration: {fitted} would raise ECE {before:.4f} -> {after:.4f}: not applied (temperature 1)")
        temperature, after = 1.0, before
    else:
        emit(f"calibration: {fitted}; ECE {before:.4f} -> {after:.4f}")
    setup.config = replace(setup.config, temperature=temperature)
    return {"temperature": temperature, "valid_ece_before": before, "valid_ece_after": after, "images": len(labels)}


def _outputs(model: nn.Module, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's logits and labels over ``loader`` (on the CPU)."""
    model.eval()
    logits, labels = [], []
    with torch.inference_mode():
        for images, targets in loader:
            layout = torch.channels_last if images.dim() == 4 else torch.preserve_format
            logits.append(model(images.to(device, memory_format=layout)).float().cpu())
            labels.append(targets.cpu())
    if not logits:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels)


@dataclass
class Setup:
    """What one process trains with: device, network (what trains DDP-wrapped as ``model`` when distributed), data,
    and the checkpoint it resumes from, if any (its weights are already in the network). With the feature cache,
    ``model`` and ``scorer`` are the head and the loaders give features; otherwise the whole network and images.
    ``frozen``: the backbone kept in evaluation mode while the rest trains."""

    device: torch.device
    classes: list[str]
    config: ModelConfig
    network: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loaders: dict
    checkpoint: dict | None
    scorer: nn.Module
    frozen: nn.Module | None = None


def _set_up(run: TrainingRun, spec: ProcessGroupSpec, emit: Callable[[str], None]) -> Setup:
    hp = run.hyperparameters
    torch.manual_seed(hp.seed)
    # One process per host (SageMaker) or per GPU (torchrun, which sets LOCAL_RANK).
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    mean, std = NORMALISATION[hp.architecture]
    datasets = load_datasets(run.data, hp.image_size, mean, std)
    classes = datasets["train"].classes
    config = ModelConfig.for_architecture(hp.architecture, len(classes), hp.image_size)
    if hp.freeze_backbone and not hp.pretrained:
        logger.warning(
            "the backbone is frozen but not pretrained: only the head will learn (use --freeze-backbone false)"
        )
    # channels_last: convolutions run 2x faster per step on CPUs with oneDNN (make bench measures it)
    network = build_model(
        config, pretrained=hp.pretrained, freeze_backbone=hp.freeze_backbone, weights_dir=run.pretrained_dir
    ).to(device, memory_format=torch.channels_last)
    checkpoint = load_checkpoint(run.checkpoint_dir, device, run_identity(run, classes), emit)
    if checkpoint:
        network.load_state_dict(checkpoint["model"])  # before DDP, which starts every rank from rank 0's weights
    frozen = network[0] if hp.freeze_backbone else None
    if run.uses_feature_cache:
        datasets = cached_features(run, spec, network[0], datasets, mean, std, device, emit)
        trained, scorer = network[1], network[1]
        # The epochs' shuffling starts from the seed whatever set-up drew before it: computing the features draws
        # from the generator and finding them in the cache does not, and a hit must train as the miss did
        torch.manual_seed(hp.seed)
    else:
        trained, scorer = network, network
    model = DistributedDataParallel(trained) if spec.is_distributed else trained
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=hp.learning_rate)
    workers = 0 if run.uses_feature_cache else hp.num_workers  # features are in memory: no loader processes
    loaders = {
        name: make_loader(dataset, hp.batch_size, name == "train", workers, spec.rank, spec.world_size)
        for name, dataset in datasets.items()
    }
    emit(
        f"training {hp.architecture} on {len(datasets['train'])} images, {len(classes)} classes, "
        f"{spec.world_size} process(es), device {device.type}"
        + (", head on cached backbone features" if run.uses_feature_cache else "")
    )
    return Setup(device, classes, config, network, model, optimizer, loaders, checkpoint, scorer, frozen)


def cached_features(
    run: TrainingRun, spec: ProcessGroupSpec, backbone: nn.Module, datasets: dict, mean, std, device, emit
):
    """The splits as backbone features. The training split's come from the store by content address, or are
    computed once (each process its share of the images, gathered so every process holds them all) and stored by
    the first process; the evaluation splits' are always computed from their images in this run and never stored,
    so what validation and test report is measured on images whatever the cache holds."""
    hp = run.hyperparameters
    feature_spec = FeatureSpec(
        hp.architecture,
        backbone_digest(backbone),
        data_digest([run.data.train]),
        hp.image_size,
        tuple(mean),
        tuple(std),
        hp.cached_views,
        hp.seed,
    )
    store = FeatureStore(run.feature_cache_dir, run.features_sha256) if run.feature_cache_dir else None
    stored = store.get(feature_spec) if store else None
    if stored is not None:
        emit(f"feature cache hit {feature_spec.key}: the backbone does not run on the training images")
        train = stored["train"]
    else:
        views = training_views(
            image_folder(run.data.train, eval_transform(hp.image_size, mean, std)),
            datasets["train"],
            hp.cached_views,
            hp.seed,
        )
        emit(
            f"feature cache miss {feature_spec.key}: computing the backbone's features of the "
            f"{len(datasets['train'])} training images x {len(views)} views once"
        )
        train = _features_of(backbone, views, datasets["train"], spec, hp, device)
        if store is not None and spec.is_main:
            emit(f"feature cache: stored {feature_spec.key} at {store.put(feature_spec, {'train': train})}")
    result = {"train": CachedViews(train["features"], train["targets"], hp.seed)}
    if run.extract_features:  # the job trains nothing, so it scores nothing
        return result
    for name in datasets:
        if name != "train":  # from the images, every run: the cache is not trusted with what scores the model
            computed = _features_of(backbone, [datasets[name]], datasets[name], spec, hp, device)
            result[name] = Features(computed["features"][:, 0], computed["targets"])
    return result


def _features_of(backbone: nn.Module, views: list, dataset, spec: ProcessGroupSpec, hp: Hyperparameters, device):
    """``{"features": [images, views, dim], "targets": [images]}``: each process computes its share, all gather."""
    count = len(views[0])
    mine = list(range(spec.rank, count, spec.world_size))
    computed = [compute_features(backbone, view, mine, hp.batch_size, device, hp.num_workers) for view in views]
    shards = gather_from_processes((mine, torch.stack(computed, 1)))
    features = torch.empty(count, len(views), shards[0][1].shape[-1])
    for indices, values in shards:
        features[indices] = values
    return {"features": features, "targets": torch.tensor([target for _, target in dataset.samples])}


def _fit(run: TrainingRun, spec: ProcessGroupSpec, setup: Setup, progress: Progress, emit: Callable[[str], None]):
    """The epochs from ``progress.first_epoch``: train, validate, keep the best, stop early, checkpoint."""
    hp = run.hyperparameters
    for epoch in range(progress.first_epoch, hp.epochs + 1):
        if hasattr(setup.loaders["train"].sampler, "set_epoch"):
            setup.loaders["train"].sampler.set_epoch(epoch)
        if hasattr(setup.loaders["train"].dataset, "set_epoch"):  # the cached view of each image this epoch
            setup.loaders["train"].dataset.set_epoch(epoch)
        timing = EpochTiming()
        train_loss, train_accuracy = _run_epoch(
            setup.model,
            setup.loaders["train"],
            setup.device,
            setup.optimizer,
            run.show_progress,
            epoch,
            timing,
            frozen=setup.frozen,
        )
        # Evaluation runs on the bare network: its shards may differ in length, and DDP's forward would
        # wait for a collective on the process with one batch fewer.
        valid_loss, valid_accuracy = _run_epoch(setup.scorer, setup.loaders["valid"], setup.device)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "valid_loss": valid_loss,
            "valid_accuracy": valid_accuracy,
            "train_images_per_second": timing.images_per_second,
            "train_step_seconds": timing.step_seconds,
            "train_data_wait_seconds": timing.data_wait_seconds,
        }
        emit(metric_line(**row))
        if progress.record(row, setup.network, hp.patience):
            emit(
                f"early stopping: valid loss has not improved for {hp.patience} epochs "
                f"(best epoch {progress.best_epoch})"
            )
            return
        if spec.is_main and run.checkpoint_dir:
            save_checkpoint(run.checkpoint_dir, progress.checkpoint(epoch, setup, run_identity(run, setup.classes)))


@dataclass
class EpochTiming:
    """Where a training epoch's time went (filled by ``_run_epoch``); the throughput summed over processes."""

    images_per_second: float = 0.0
    step_seconds: float = 0.0
    data_wait_seconds: float = 0.0


def _run_epoch(
    model: nn.Module,
    loader,
    device,
    optimizer=None,
    show_progress=False,
    epoch=0,
    timing: EpochTiming | None = None,
    frozen: nn.Module | None = None,
) -> tuple[float, float]:
    """One pass over this process's shard; returns (loss, accuracy) per sample over all processes. ``frozen`` (a
    frozen backbone) stays in evaluation mode while the rest trains: its batch norm keeps ImageNet's statistics."""
    training = optimizer is not None
    model.train(training)
    if frozen is not None:
        frozen.eval()
    loss_sum, correct, count = 0.0, 0, 0
    waited = computed = 0.0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    started = fetch_started = time.perf_counter()
    with torch.set_grad_enabled(training):
        for step, (images, targets) in enumerate(loader, start=1):
            fetched = time.perf_counter()
            waited += fetched - fetch_started
            # images (N, C, H, W) in channels_last, as convolutions run fastest; cached features (N, D) as they are
            layout = torch.channels_last if images.dim() == 4 else torch.preserve_format
            images, targets = images.to(device, memory_format=layout), targets.to(device)
            outputs = model(images)
            loss = criterion(outputs, targets)
            if training:
                optimizer.zero_grad(set_to_none=True)
                (loss / len(targets)).backward()
                optimizer.step()
            loss_sum += loss.item()
            correct += (outputs.argmax(1) == targets).sum().item()
            count += len(targets)
            fetch_started = time.perf_counter()
            computed += fetch_started - fetched
            if show_progress:
                _progress_bar(epoch, step, len(loader))
    steps = max(len(loader), 1)
    loss_sum, correct, count = sum_across_processes([loss_sum, correct, count], device)
    if timing is not None:  # the images of every process over this process's wall time
        timing.images_per_second = count / max(time.perf_counter() - started, 1e-9)
        timing.step_seconds, timing.data_wait_seconds = computed / steps, waited / steps
    return loss_sum / max(count, 1), correct / max(count, 1)


def _progress_bar(epoch: int, step: int, steps: int, width: int = 30) -> None:
    done = round(width * step / steps)
    sys.stderr.write(f"\repoch {epoch} [{'#' * done}{'.' * (width - done)}] {step}/{steps}")
    if step == steps:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _write_reports(run: TrainingRun, result: TrainingResult) -> None:
    run.output_dir.mkdir(parents=True, exist_ok=True)
    report = {**asdict(result), "hyperparameters": asdict(run.hyperparameters)}
    (run.output_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    write_training_curves(
        result.history,
        run.output_dir / "training_curves.svg",
        best_epoch=result.best_epoch,
        stopped_early=result.stopped_early,
        max_epochs=run.hyperparameters.epochs,
    )
