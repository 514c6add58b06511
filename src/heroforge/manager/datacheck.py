"""Before each start of a job's trainer: is its data there, and is it the data it was
submitted with?

Data that is missing, or that the machine cannot read just now (a network disk that went
away), may come back: the job waits for it. Data that holds other images than at submit is
refused, since the job would train on data nobody checked, unless the job follows its data
file (job.follow_data). The comparison is the dataset fingerprint that `queue submit` stored
and that training itself records (zips: each entry's name, CRC and size, so it is cheap).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heroforge.config import Config
from heroforge.errors import MACHINE_ERRNOS, UserError
from heroforge.manager.queue import Job
from heroforge.manager.spec import fingerprint_data


@dataclass(frozen=True)
class DataProblem:
    reason: str  # one line, for the job's reason and the supervisor's log
    may_come_back: bool  # True: the job waits and looks again; False: the job is refused


def data_problem(job: Job, cfg: Config) -> DataProblem | None:
    """What keeps the job from starting on its data now, or None when it may start."""
    path = Path(job.data)
    try:
        if not path.exists():
            return DataProblem(f"its data {path} is missing", may_come_back=True)
        fingerprint, _ = fingerprint_data(path, cfg)
    except OSError as err:
        problem = f"its data {path} cannot be read: {err.strerror or err}"
        return DataProblem(problem, may_come_back=err.errno in MACHINE_ERRNOS)
    except UserError as err:
        return DataProblem(f"its data is unusable now: {err}", may_come_back=False)
    if fingerprint != job.fingerprint and not cfg.job.follow_data:
        return DataProblem(
            f"its data {path} changed since it was submitted (other images or labels); put "
            f"the submitted file back and `heroforge queue retry {job.id}`, or submit it "
            "again (with --set job.follow_data=true to train on whatever the file holds)",
            may_come_back=False,
        )
    return None
