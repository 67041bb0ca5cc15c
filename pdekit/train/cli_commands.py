"""The ``pdekit train`` and ``pdekit evaluate`` commands, as functions the CLI calls.

``pdekit train CONFIG.yaml [--set key=value ...]`` -> :func:`train_main`;
``pdekit evaluate CHECKPOINT DATASET_DIR [...]`` -> :func:`evaluate_main`. Both return an exit
code; user errors (bad config, missing dataset, channel mismatch) are raised as
:class:`~pdekit.errors.PdekitUserError` for the CLI to print as one line (exit code 2). A
diverged run prints one line and returns 1.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch

from pdekit.errors import PdekitUserError

__all__ = ["train_main", "evaluate_main", "build_model", "build_datasets", "checkpoint_path"]


def checkpoint_path(out_dir: str | os.PathLike) -> Path:
    """Where a run keeps its latest checkpoint: ``OUT_DIR/checkpoints/last.pt``."""
    return Path(out_dir) / "checkpoints" / "last.pt"


def _resolve_model(name: str):
    """``(factory, accepts)``: a callable building the model and the keyword names it takes."""
    if ":" in name:  # a user model: "package.module:ClassOrFunction"
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise PdekitUserError(f"model.name {name!r}: cannot import it ({e})") from None
        try:
            params = inspect.signature(factory).parameters.values()
        except (TypeError, ValueError):
            return factory, None
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return factory, None
        return factory, {p.name for p in params}
    import dataclasses

    from pdekit.models import get_config, get_model

    fields = {f.name for f in dataclasses.fields(get_config(name))}
    return (lambda **kw: get_model(name, **kw)), fields


def build_model(spec: dict, in_channels: int | None = None, out_channels: int | None = None):
    """Build the model ``spec = {"name": ..., **kwargs}``; return ``(model, full_spec)``.

    ``name`` is a registry name of :func:`pdekit.models.get_model` (``fno``, ``tfno``, ...) or
    ``"module:callable"`` for a model of your own. ``in_channels`` / ``out_channels`` come from
    the dataset when the spec does not set them (and the model takes them); a spec that sets them
    to other values than the dataset's is a one-line :class:`ChannelMismatchError`.
    """
    from pdekit.train.trainer import ChannelMismatchError

    spec = dict(spec)
    name = spec.pop("name")
    factory, accepts = _resolve_model(str(name))
    for key, have, what in (("in_channels", in_channels, "input"),
                            ("out_channels", out_channels, "target")):
        if have is None:
            continue
        if key in spec:
            if spec[key] != have:
                raise ChannelMismatchError(
                    f"channels do not match: model.{key}={spec[key]} but the dataset gives {have} "
                    f"{what} channel(s)"
                )
        elif accepts is None or key in accepts:
            spec[key] = have
    try:
        model = factory(**spec)
    except TypeError as e:
        raise PdekitUserError(f"model {name!r}: {e}") from None
    return model, {"name": name, **spec}


def _res_label(shape: Sequence[int]) -> str:
    shape = tuple(shape)
    return str(shape[0]) if len(set(shape)) == 1 else "x".join(map(str, shape))


def build_datasets(cfg, root: str | None = None, *, normalize: bool | None = None):
    """``(train, {"<split>_<res>": eval dataset})`` of a :class:`TrainConfig` (PDEDataset)."""
    from pdekit.data import PDEDataset

    root = cfg.dataset if root is None else root
    norm = cfg.normalize if normalize is None else normalize
    kw = {"inputs": cfg.inputs, "targets": cfg.targets, "normalize": norm}
    train = PDEDataset(root, cfg.train_split, subsample=cfg.train_subsample, **kw)
    evals = {}
    for split in cfg.eval.splits:
        for s in cfg.eval.subsamples:
            ds = PDEDataset(root, split, subsample=s, **kw)
            evals[f"{split}_{_res_label(ds.spatial_shape)}"] = ds
    return train, evals


def _print_table(metrics: dict, names: Sequence[str], file=None) -> None:
    file = sys.stdout if file is None else file
    print(f"{'dataset':<16} {'n':>6} {'rel. L2':>10} {'rel. H1':>10}", file=file)
    for name in names:
        n = metrics.get(f"{name}_n", "")
        print(f"{name:<16} {n!s:>6} {metrics[f'{name}_l2']:>10.4g} {metrics[f'{name}_h1']:>10.4g}",
              file=file)


def train_main(config_path: str | os.PathLike, overrides: Sequence[str] | None = None) -> int:
    """``pdekit train CONFIG.yaml --set key=value ...``: train, checkpoint, log, plot.

    Returns 0 on success, and 1 with a one-line message on stderr when the loss diverged or a
    peer of a ``torchrun`` job was lost (crashed, killed, or silent for ``dist_timeout_s``); the
    last complete checkpoint is kept in both cases. ``resume: true`` continues
    ``OUT_DIR/checkpoints/last.pt``; without it an existing checkpoint in ``out_dir`` is never
    overwritten. The process group lives exactly as long as this call: every process, on every
    exit path, meets the others at a barrier before it is destroyed.

    Raises
    ------
    PdekitUserError
        Bad config, dataset or model (one line; the CLI prints it and exits with code 2).
    """
    from pdekit.train.config import ConfigError, load_config
    from pdekit.train.distributed import Distributed, PeerLostError, is_peer_failure

    cfg = load_config(config_path, overrides or ())
    ckpt = checkpoint_path(cfg.out_dir)
    if cfg.resume and not ckpt.is_file():
        raise ConfigError(f"resume: true but {ckpt} does not exist")
    if not cfg.resume and ckpt.is_file():
        raise ConfigError(
            f"{cfg.out_dir} already holds a run ({ckpt}); continue it with --set resume=true "
            "or choose another out_dir"
        )
    run = Distributed.setup(cfg.device, cfg.dist_timeout_s)
    try:
        with run:
            try:
                return _train(cfg, ckpt, run)
            except BaseException as e:
                # release the trainer (its DDP wrapper holds the group) before the teardown
                traceback.clear_frames(e.__traceback__)
                raise
    except Exception as e:
        if not (run.enabled and is_peer_failure(e)):
            raise
        kept = f"the last complete checkpoint {ckpt} is kept" if ckpt.is_file() else \
            "no checkpoint was written"
        line = str(e) if isinstance(e, PeerLostError) else run.describe(e)
        print(f"pdekit: error: {line}; {kept}", file=sys.stderr)
        return 1


def _train(cfg, ckpt: Path, run) -> int:
    """The body of :func:`train_main`, inside the process group's lifetime."""
    from pdekit.train.config import config_to_dict
    from pdekit.train.trainer import Trainer, TrainingDivergedError, seed_everything

    train_ds, eval_ds = build_datasets(cfg)
    seed_everything(cfg.seed)
    model, spec = build_model(cfg.model, train_ds.in_channels, train_ds.out_channels)
    trainer = Trainer(model, train_ds, cfg, eval_datasets=eval_ds, model_spec=spec,
                      distributed=run)
    if cfg.resume:
        trainer.load_checkpoint(ckpt)
    if run.is_main:
        import yaml

        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(cfg.out_dir) / "config.yaml", "w") as f:
            yaml.safe_dump(config_to_dict(cfg), f, sort_keys=False)
    try:
        metrics = trainer.fit()
    except TrainingDivergedError as e:
        print(f"pdekit: error: {e}", file=sys.stderr)
        return 1
    if run.is_main:
        print(f"trained {trainer.epoch} epoch(s) on {run.world_size} process(es); "
              f"checkpoint {trainer.last_checkpoint}; metrics in {cfg.out_dir}")
        if eval_ds and all(f"{k}_l2" in metrics for k in eval_ds):
            _print_table(metrics, list(eval_ds))
        sys.stdout.flush()
    return 0


def evaluate_main(
    checkpoint: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    *,
    split: str = "test",
    subsamples: Sequence[int] | None = None,
    batch_size: int | None = None,
    out_dir: str | os.PathLike | None = None,
    device: str | None = None,
    plots: bool = True,
    n_plot_samples: int = 4,
) -> int:
    """``pdekit evaluate CHECKPOINT DATASET_DIR``: metrics table, ``metrics.json`` and plots.

    The dataset is read un-normalised and encoded with the *checkpoint's* normalisation
    statistics (those of the training data), so any dataset of the same fields can be evaluated,
    e.g. one generated at a higher resolution (zero-shot super-resolution).

    Parameters
    ----------
    checkpoint : path-like
        A trainer checkpoint (``OUT_DIR/checkpoints/last.pt``).
    dataset_dir : path-like
        A pdekit dataset folder with the fields the model was trained on.
    split : str
    subsamples : sequence of int, optional
        Resolutions to evaluate (subsampling factors); default: the run's ``eval.subsamples``.
    batch_size : int, optional
    out_dir : path-like, optional
        Where ``metrics.json`` and the plots go; default ``OUT_DIR/eval`` of the run.
    device : str, optional
        Default: ``cpu``.
    plots : bool
    n_plot_samples : int

    Returns
    -------
    int
        0.
    """
    from pdekit.train.callbacks import sample_predictions
    from pdekit.train.config import config_from_dict
    from pdekit.train.processor import DataProcessor
    from pdekit.train.trainer import evaluate_model, load_checkpoint_file

    state = load_checkpoint_file(checkpoint)
    spec = state.get("model_spec")
    if not spec:
        raise PdekitUserError(f"{checkpoint} does not record how to build its model (model_spec)")
    cfg = config_from_dict(state["config"])
    device = torch.device(device or "cpu")
    processor = DataProcessor.from_state(state["processor"])
    if subsamples is None:
        subsamples = cfg.eval.subsamples
    from pdekit.data import PDEDataset

    datasets = {}
    for s in subsamples:
        raw = PDEDataset(dataset_dir, split, inputs=cfg.inputs, targets=cfg.targets,
                         normalize=False, subsample=int(s))
        datasets[f"{split}_{_res_label(raw.spatial_shape)}"] = _Encoded(raw, processor)
    first = next(iter(datasets.values())).dataset
    model, _ = build_model(spec, first.in_channels, first.out_channels)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise PdekitUserError(f"{checkpoint}: the weights do not fit the model: "
                              f"{str(e).splitlines()[0]}") from None
    model.to(device)
    metrics = evaluate_model(model, datasets, processor, device=device,
                             batch_size=batch_size or cfg.eval.batch_size or cfg.batch_size)
    _print_table(metrics, list(datasets))
    ckpt = Path(checkpoint)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    out = Path(out_dir) if out_dir is not None else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.json", "w") as f:
        json.dump({"checkpoint": str(checkpoint), "dataset": str(dataset_dir),
                   "epoch": state["epoch"], **metrics}, f, indent=1)
    if plots and n_plot_samples > 0:
        from pdekit.train.plots import plot_samples

        view = _PredictView(model, processor, device)
        for name, ds in datasets.items():
            x, y, pred = sample_predictions(view, ds, n_plot_samples)
            plot_samples(x, y, pred, out / f"{name}_samples.png", title=name)
    print(f"metrics and plots in {out}")
    return 0


class _Encoded(torch.utils.data.Dataset):
    """A raw dataset normalised with the statistics of a checkpoint's processor."""

    def __init__(self, dataset, processor):
        self.dataset = dataset
        self.processor = processor

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        x = self.processor.encode_inputs(x[None])[0]
        y = self.processor.encode_targets(y[None])[0]
        return x, y


class _PredictView:
    """The small part of the Trainer interface that ``sample_predictions`` uses."""

    def __init__(self, model, processor, device):
        self.model, self.processor, self.device = model, processor.to(device), device

    def predict(self, x):
        self.model.eval()
        with torch.no_grad():
            return self.processor.decode_targets(self.model(x.to(self.device)).float())
