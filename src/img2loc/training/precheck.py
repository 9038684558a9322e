"""The cheap checks of `img2loc train`, run before torch and Lightning are imported.

Importing them takes seconds, and LightningCLI answers a bad argument with its whole
usage text; a missing config, cell set, shard or feature folder is answered here in one
line instead. Only what can be known without torch is checked (files exist and parse);
LightningCLI still validates every option. No torch, no Lightning in this module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from img2loc.errors import Img2locError

#: How to see every training option; said wherever an option is wrong.
OPTIONS_TIP = (
    "every option: `img2loc train --help-all`; the resolved config: "
    "`img2loc train -c CONFIG --print_config`"
)


class TrainSetupError(Img2locError, ValueError):
    """A training run cannot start; the message says how to fix it."""


def _cli_value(args: list[str], key: str) -> str | None:
    """The last value given to ``--key`` on the command line (``--key V`` or ``--key=V``)."""
    value = None
    for i, a in enumerate(args):
        if a == f"--{key}" and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(f"--{key}="):
            value = a.split("=", 1)[1]
    return value


def _load_configs(configs: list[Path]) -> list[dict[str, Any]]:
    import yaml

    docs = []
    for c in configs:
        if not c.is_file():
            raise TrainSetupError(f"config file {c} not found (the configs/ folder has examples)")
        try:
            doc = yaml.safe_load(c.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise TrainSetupError(f"{c} is not valid YAML ({' '.join(str(e).split())})") from None
        if doc is not None and not isinstance(doc, dict):
            raise TrainSetupError(f"{c} must be a YAML mapping (model:, data:, trainer:)")
        docs.append(doc or {})
    return docs


def _value(docs: list[dict[str, Any]], args: list[str], group: str, name: str) -> Any:
    """An option's value as LightningCLI will see it: the command line, else the last config."""
    v: Any = _cli_value(args, f"{group}.{name}")
    if v is not None:
        return None if v in ("null", "None") else v
    for doc in reversed(docs):
        section = doc.get(group)
        if isinstance(section, dict) and name in section:
            return section[name]
    return None


def check_train_args(configs: list[Path], args: list[str], resume: str | None) -> None:
    """Raise :class:`TrainSetupError` for what would fail later, after seconds of imports."""
    if importlib.util.find_spec("lightning") is None:
        raise TrainSetupError("training needs the train extra: pip install 'img2loc[train]'")
    docs = _load_configs(configs)
    if any(a in ("-h", "--help") or a.startswith("--print_config") for a in args):
        return  # LightningCLI prints; nothing is trained
    if any(a in ("--model", "--data") or a.startswith(("--model=", "--data=")) for a in args):
        return  # a whole group from another file: LightningCLI resolves it
    _check_cells(_value(docs, args, "model", "cells"))
    _check_data(
        _value(docs, args, "data", "shards"),
        _value(docs, args, "data", "features"),
        str(_value(docs, args, "data", "val_split") or "val"),
    )
    for what, path in (
        ("--model.init_from", _value(docs, args, "model", "init_from")),
        ("--model.weights", _value(docs, args, "model", "weights")),
        ("--resume", None if resume in (None, "auto") else resume),
    ):
        if isinstance(path, str) and not Path(path).is_file():
            raise TrainSetupError(f"{what} {path}: no such file")


def check_distill_args(configs: list[Path], args: list[str], resume: str | None) -> None:
    """:func:`check_train_args`, and the teachers (``--model.teachers``) exist."""
    import yaml

    check_train_args(configs, args, resume)
    if any(
        a in ("-h", "--help", "--model") or a.startswith(("--print_config", "--model="))
        for a in args
    ):
        return
    teachers = _value(_load_configs(configs), args, "model", "teachers")
    if isinstance(teachers, str):  # from the command line: a YAML/JSON list
        try:
            teachers = yaml.safe_load(teachers)
        except yaml.YAMLError:
            teachers = [teachers]
    if isinstance(teachers, str):
        teachers = [teachers]
    if not teachers:
        raise TrainSetupError(
            "no teacher: pass --teacher CKPT (a checkpoint from `img2loc train`; "
            "repeat it for an ensemble)"
        )
    for t in teachers:
        if not Path(str(t)).is_file():
            raise TrainSetupError(
                f"--teacher {t}: no such file (pass a .ckpt written by `img2loc train`)"
            )


def _check_cells(cells: Any) -> None:
    from img2loc.data.cells import read_cells

    if cells is None:
        raise TrainSetupError(
            "--model.cells is missing: pass the cell set from `img2loc cells build` "
            "(e.g. `img2loc cells build shards/ -o cells.json`, then --model.cells cells.json)"
        )
    if isinstance(cells, dict):
        return  # given inline in the YAML
    p = Path(str(cells))
    if not p.is_file():
        raise TrainSetupError(
            f"--model.cells {p}: no such file; build it with `img2loc cells build SHARDS -o {p}`"
        )
    try:
        read_cells(p)
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise TrainSetupError(
            f"--model.cells {p} is not a cell set from `img2loc cells build` ({e})"
        ) from None


def _check_data(shards: Any, features: Any, val_split: str) -> None:
    from img2loc.data.features import INFO as FEATURE_INFO
    from img2loc.data.features import load_feature_info
    from img2loc.data.shard_reader import is_shard_folder, read_info

    if (shards is None) == (features is None):
        raise TrainSetupError(
            "give exactly one of --data.shards (a folder from `img2loc data shards`) "
            "or --data.features (a folder from `img2loc embed`)"
        )
    if shards is not None:
        if not is_shard_folder(str(shards)):
            raise TrainSetupError(
                f"--data.shards {shards}: not a shard folder (no _info.json); "
                "write one with `img2loc data shards`"
            )
        folder, splits = f"--data.shards {shards}", read_info(str(shards)).get("splits", {})
    else:
        if not (Path(str(features)) / FEATURE_INFO).is_file():
            raise TrainSetupError(
                f"--data.features {features}: not a feature folder (no {FEATURE_INFO}); "
                "compute one with `img2loc embed SHARDS -o FOLDER`"
            )
        folder = f"--data.features {features}"
        splits = load_feature_info(str(features)).get("splits", {})
    for split in ("train", val_split):
        if split not in splits:
            raise TrainSetupError(
                f"{folder} has no {split!r} split (it has {sorted(splits)}); "
                + (
                    "pick another with --data.val_split"
                    if split == val_split
                    else "shard with a training share"
                )
            )
