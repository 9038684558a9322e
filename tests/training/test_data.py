import io
import json
import tarfile

import numpy as np
import pytest

from img2loc.inference.preprocess import PreprocessConfig
from img2loc.training import data as td
from tests.conftest import jpeg_bytes


def _samples(n: int) -> list[dict[str, object]]:
    return [{"__key__": f"k{i}", "json": b"{}"} for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 2, 10, 11, 12])
def test_rank_share_is_equal_length_and_covers_every_sample_once(monkeypatch, n):
    world, seen, lengths = 3, [], set()
    for rank in range(world):
        monkeypatch.setattr(td, "_rank_worker", lambda rank=rank: (rank, world, 0, 1))
        out = list(td._rank_share(iter(_samples(n))))
        lengths.add(len(out))
        seen += [s["__key__"] for s in out if not s.get("__pad__")]
    assert lengths == {-(-n // world)}
    assert sorted(seen) == sorted(f"k{i}" for i in range(n))


def _tar(path, items: list[tuple[str, bytes, dict[str, object]]]) -> str:
    with tarfile.open(path, "w") as tar:
        for key, jpg, meta in items:
            for ext, payload in (("jpg", jpg), ("json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return str(path)


def test_eval_pipeline_turns_a_corrupt_image_into_a_masked_pad(tmp_path):
    good = jpeg_bytes(np.random.default_rng(1))
    meta = {"latitude": 10.0, "longitude": 20.0}
    url = _tar(
        tmp_path / "val-000000.tar",
        [
            ("a", good, {**meta, "key": "a"}),
            ("b", good[:40], {**meta, "key": "b"}),  # truncated JPEG
            ("c", good, {**meta, "key": "c"}),
        ],
    )
    pre = PreprocessConfig(input_size=32, resize_size=40)
    with pytest.warns(UserWarning, match="bad sample"):
        batches = list(td.make_pipeline([url], train=False, batch_size=8, pre=pre))
    assert len(batches) == 1
    b = batches[0]
    assert b["image"].shape == (3, 3, 32, 32)
    assert b["pad"].tolist() == [False, True, False]
    assert b["key"][0] == "a" and b["key"][2] == "c"


def test_train_pipeline_order_is_fixed_by_seed_and_epoch(tmp_path):
    items = [
        (
            f"s{i}",
            jpeg_bytes(np.random.default_rng(i), (40, 40)),
            {"latitude": 0.0, "longitude": float(i), "key": f"s{i}"},
        )
        for i in range(12)
    ]
    urls = [_tar(tmp_path / f"train-{j}.tar", items[j * 4 : (j + 1) * 4]) for j in range(3)]
    pre = PreprocessConfig(input_size=32, resize_size=40)

    def keys(seed: int, epoch: int) -> list[str]:
        pipe = td.make_pipeline(
            urls,
            train=True,
            batch_size=4,
            pre=pre,
            seed=seed,
            epoch=epoch,
            shuffle_buffer=8,
            batches_per_worker=3,
        )
        return [k for b in pipe for k in b["key"]]

    first = keys(0, 0)
    assert len(first) == 12
    assert first == keys(0, 0)
    assert first != keys(0, 1)
    assert first != keys(1, 0)
