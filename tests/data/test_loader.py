"""Images decoded ahead in worker processes are the images the trainer chose, in its order."""

import multiprocessing
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from helpers.images import encode, random_pixels
from heroforge.config import TrainConfig, load_config
from heroforge.data.dataset import ImageDataset
from heroforge.data.loader import ChunkLoader, worker_count
from heroforge.errors import ConfigError, OperationalError, UserError
from heroforge.runtime.dist import DistInfo
from heroforge.train.sampler import RealChunks

COUNT = 12
SIDE = 16
CPU = DistInfo(rank=0, world=1, device=torch.device("cpu"))
TC = TrainConfig(gpus=1, batch=8, batch_gpu=4, seed=5)  # two chunks of 4 per step


def _zip(path: Path, side: int = SIDE, count: int = COUNT) -> Path:
    pixels = random_pixels(count, side, side)
    labels = [[f"img{i:03d}.png", i % 3] for i in range(count)]
    with zipfile.ZipFile(path, "w") as zf:
        for i, array in enumerate(pixels):
            zf.writestr(f"img{i:03d}.png", encode(array))
        zf.writestr("dataset.json", f'{{"labels": {labels}}}'.replace("'", '"'))
    return path


@pytest.fixture
def dataset(tmp_path) -> ImageDataset:
    return ImageDataset(_zip(tmp_path / "set.zip"), mirror=True, use_labels=True)


def _new_children(before: set[int]) -> set[int]:
    return {p.pid for p in multiprocessing.active_children()} - before


def _steps(reals: RealChunks, nimgs: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for nimg in nimgs:
        for chunk in reals.chunks:
            img, labels = reals.chunk(nimg, chunk)
            assert labels is not None
            out.append((img, labels))
    return out


def test_workers_give_the_chunks_the_trainer_chose_bit_for_bit(dataset):
    nimgs = [step * TC.batch for step in range(9)]  # 72 images: three epochs of 24, x-flips on
    direct = RealChunks(dataset, TC, CPU, workers=0)
    expected = _steps(direct, nimgs)
    before = {p.pid for p in multiprocessing.active_children()}
    ahead = RealChunks(dataset, TC, CPU, workers=2)
    got = _steps(ahead, nimgs)
    assert len(_new_children(before)) == 2  # the images really came from two workers
    ahead.close()
    assert not _new_children(before)
    assert len(got) == len(expected) == 18
    for (img, labels), (want_img, want_labels) in zip(got, expected, strict=True):
        assert torch.equal(img, want_img)
        assert torch.equal(labels, want_labels)
    # and they are the dataset's items at the positions EpochOrder gives, in [-1, 1]
    first = torch.stack([dataset[i][0] for i in direct.order.indices(0, 4)])
    assert torch.equal(expected[0][0], first.to(torch.float32) / 127.5 - 1)
    assert any(i >= COUNT for i in direct.order.indices(0, 24))  # flipped copies were served


def test_a_jump_restarts_the_series_where_the_trainer_is(dataset):
    """A resume or a rollback asks for another position than the one decoded ahead."""
    reals = RealChunks(dataset, TC, CPU, workers=2)
    _steps(reals, [0, 8])
    jumped = _steps(reals, [40, 48, 8])
    reals.close()
    expected = _steps(RealChunks(dataset, TC, CPU, workers=0), [40, 48, 8])
    for (img, _), (want, _) in zip(jumped, expected, strict=True):
        assert torch.equal(img, want)


def test_a_ctrl_c_leaves_the_workers_decoding(dataset):
    """SIGINT/SIGTERM to the whole process group: the trainer finishes its step with them."""
    before = {p.pid for p in multiprocessing.active_children()}
    loader = ChunkLoader(dataset, workers=2, pin_memory=False)
    loader.start([i % 24, (i + 1) % 24] for i in range(1000))
    loader.next()
    for pid in _new_children(before):
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    for _ in range(20):
        images, _labels = loader.next()
        assert images.shape == (2, 3, SIDE, SIDE)
    loader.close()


def test_a_killed_worker_is_one_line_not_a_hang(dataset):
    before = {p.pid for p in multiprocessing.active_children()}
    loader = ChunkLoader(dataset, workers=2, pin_memory=False)
    loader.start([i % 24] for i in range(10**6))
    loader.next()
    victim = min(_new_children(before))
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(
        OperationalError, match=f"data loader process {victim} was killed by SIGKILL"
    ) as caught:
        for _ in range(10**6):  # what was decoded before the kill still arrives
            loader.next()
    assert "\n" not in str(caught.value)
    assert not _new_children(before)  # the other worker was stopped too


def test_a_loader_never_closed_does_not_hang_the_exit(dataset, tmp_path):
    """Workers ignore SIGTERM, which multiprocessing's clean-up at exit relies on."""
    script = (
        "import sys; from heroforge.data.dataset import ImageDataset;"
        "from heroforge.data.loader import ChunkLoader;"
        "loader = ChunkLoader(ImageDataset(sys.argv[1]), workers=2, pin_memory=False);"
        "loader.start([i % 12] for i in range(10**6)); loader.next(); print('decoded')"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "set.zip")],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "decoded\n"


def test_a_picture_that_changed_under_a_worker_is_one_line(tmp_path):
    path = _zip(tmp_path / "set.zip")
    dataset = ImageDataset(path)
    _zip(path, side=SIDE * 2)  # replaced after it was opened: the workers open the new file
    loader = ChunkLoader(dataset, workers=1, pin_memory=False)
    loader.start([[0, 1]])
    with pytest.raises(UserError, match="the dataset changed since it was opened") as caught:
        loader.next()
    assert "\n" not in str(caught.value)
    assert "Traceback" not in str(caught.value)
    loader.close()


def test_starting_the_loader_draws_no_training_random_numbers(dataset):
    """A resume restarts the loader at another step than the uninterrupted run: it must not
    shift the random numbers the step draws after seeding."""
    torch.manual_seed(1)
    want = torch.rand(3)
    torch.manual_seed(1)
    for workers in (0, 2):
        loader = ChunkLoader(dataset, workers=workers, pin_memory=False)
        loader.start([[0]])
        loader.next()
        loader.close()
    assert torch.equal(torch.rand(3), want)


def test_worker_count_auto_is_three_per_gpu_and_none_on_a_cpu():
    assert worker_count("auto", torch.device("cpu")) == 0
    assert worker_count("auto", torch.device("cuda", 1)) == 3
    assert worker_count(2, torch.device("cpu")) == 2
    assert load_config("tiny-cpu").data.workers == "auto"
    assert load_config("tiny-cpu", ["data.workers=4"]).data.workers == 4


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", 'data.workers = -1 is not allowed: "auto" or a number of processes >= 0'),
        ("many", "data.workers = \"many\" has the wrong type: expected an integer or 'auto'"),
        ("1.5", "data.workers = 1.5 has the wrong type: expected an integer or 'auto'"),
    ],
)
def test_a_bad_worker_count_is_refused(value, message):
    with pytest.raises(ConfigError) as caught:
        load_config("tiny-cpu", [f"data.workers={value}"])
    assert str(caught.value) == message


def test_torchs_dead_worker_handler_is_gone_even_when_an_earlier_loader_set_it(dataset):
    """torch installs its SIGCHLD handler once per process, at the first DataLoader with
    workers; a ChunkLoader started later must still take it away (it would raise wherever the
    trainer happens to be when any worker ends)."""
    plain = torch.utils.data.DataLoader(range(4), num_workers=1)
    assert list(plain) == [torch.tensor(i) for i in range(4)]
    loader = ChunkLoader(dataset, workers=1, pin_memory=False)
    loader.start([i % 24] for i in range(8))
    try:
        handler = signal.getsignal(signal.SIGCHLD)
        assert getattr(handler, "__module__", "") != "torch.utils.data._utils.signal_handling"
    finally:
        loader.close()
