"""A started run goes on with fewer GPUs than its job asked for, when its chunks split over them;
a job that has not started waits for its own count."""

import pytest

from heroforge import rundir
from heroforge.manager import open_queue, submit
from heroforge.manager.gpus import gpus_to_run
from heroforge.manager.spec import spec_from_options


@pytest.fixture
def queue(tmp_path):
    return open_queue(tmp_path / "root")


def _job(queue, archive, *overrides: str):
    return submit(queue, spec_from_options(archive, "tiny-cpu", 0.064, list(overrides)))


def _started(job) -> None:
    run_dir = job.dir / "runs" / "00000-tiny-cpu"
    run_dir.mkdir(parents=True)
    (run_dir / rundir.RUN_JSON).write_text("{}")


def test_a_started_run_goes_on_with_the_largest_count_its_chunks_split_over(queue, tiny_archive):
    # batch 8 on 4 GPUs: 4 chunks of 2 images, which split over 1, 2 or 4 GPUs
    job = _job(queue, tiny_archive, "train.gpus=4", "train.batch=8")
    assert gpus_to_run(job, 8) == 4
    assert gpus_to_run(job, 3) is None  # not started: it waits for its 4
    _started(job)
    assert gpus_to_run(job, 4) == 4
    assert gpus_to_run(job, 3) == 2
    assert gpus_to_run(job, 1) == 1


def test_a_supervisor_with_fewer_gpus_claims_only_a_started_run_that_fits(queue, tiny_archive):
    waiting = _job(queue, tiny_archive, "train.gpus=2", "job.priority=5")
    started = _job(queue, tiny_archive, "train.gpus=2", "train.seed=1")
    _started(started)

    def fits_fewer(job) -> bool:
        return gpus_to_run(job, 1) is not None

    taken = queue.claim("me:boot:1", 60, 1, fits_fewer)
    assert taken.id == started.id  # the higher priority one has not started: it waits
    assert queue.claim("me:boot:1", 60, 1, fits_fewer) is None
    assert queue.get(waiting.id).state == "queued"
