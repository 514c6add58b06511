"""--init-from: a run starts from another model's weights (fresh counters and optimisers);
Freeze-D keeps the first discriminator blocks fixed; a model of another shape is refused."""

import hashlib

import pytest
import torch

from helpers.training import EVERY_PHASE, network_tensors, quiet
from heroforge.config import load_config
from heroforge.errors import UserError
from heroforge.nets.loading import load_latest
from heroforge.nets.weights import load_networks, save_networks
from heroforge.rundir import read_run
from heroforge.train.loop import Trainer
from heroforge.train.run import resume, start
from heroforge.train.transfer import load_init_model

STEPS = [*EVERY_PHASE, "train.tick_kimg=0.032", "train.checkpoint_kimg=0.032"]


@pytest.fixture(scope="module")
def source_run(tiny_archive, tmp_path_factory):
    """A tiny run whose weights the others start from."""
    cfg = load_config("tiny-cpu", STEPS)
    run_dir, _ = start(tiny_archive, cfg, tmp_path_factory.mktemp("source"), 0.032, log=quiet)
    return run_dir


@pytest.mark.slow
def test_a_run_starts_from_the_model_and_frozen_d_blocks_keep_their_weights(
    tiny_archive, source_run, tmp_path, monkeypatch
):
    source, _ = load_latest(source_run / "checkpoints")
    expected = network_tensors(source.loaded.networks)
    seen = {}
    original_run = Trainer.run

    def capture(self, *args, **kwargs):
        seen.update(network_tensors({"G": self.G, "D": self.D, "G_ema": self.G_ema}))
        seen["nimg"], seen["p"] = self.progress.nimg, self.ada.p
        return original_run(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "run", capture)
    cfg = load_config("tiny-cpu", [*STEPS, "train.freeze_d=2", "train.seed=7"])
    run_dir, status = start(tiny_archive, cfg, tmp_path, 0.064, log=quiet, init_from=source_run)
    assert status == "done"

    # the weights (w_avg too) come over; counters and ADA start fresh
    assert seen.pop("nimg") == 0
    assert seen.pop("p") == 0.0
    assert seen.keys() == expected.keys()
    assert all(torch.equal(seen[k], expected[k]) for k in expected)
    assert any(k.endswith("mapping.w_avg") for k in expected)
    final, _ = load_latest(run_dir / "checkpoints")
    assert final.meta["progress"]["nimg"] == 64
    assert "opt_G" in final.meta
    assert final.meta["progress"]["extra"].get("best") is None

    # Freeze-D: b32 and b16 (the two blocks nearest the image) never moved; the rest did
    after = network_tensors({"D": final.loaded.networks["D"]})
    for key, value in after.items():
        frozen = key.startswith(("D.b32.", "D.b16."))
        assert torch.equal(value, expected[key]) == frozen, key

    # run.json says where the run started, with the file's checksum
    _, run = read_run(run_dir)
    blob = source.path.read_bytes()
    assert run["init_from"]["path"] == str(source.path.resolve())
    assert run["init_from"]["sha256"] == hashlib.sha256(blob).hexdigest()


def test_an_imported_model_folder_is_accepted_and_mismatches_are_one_line(source_run, tmp_path):
    """A folder holding one network file is what `heroforge import-official` writes."""
    loaded = load_networks(next((source_run / "checkpoints").glob("ckpt-*.safetensors")))
    folder = tmp_path / "imported"
    folder.mkdir()
    save_networks(
        folder / "model.safetensors", loaded.networks, loaded.cfg, 0, {"source": "official pickle"}
    )
    cfg = load_config("tiny-cpu", ["network.num_fp16_res=2", "network.mbstd_group=2"])
    init = load_init_model(folder, cfg, c_dim=0)  # precision and mbstd group may differ
    assert init.path == folder / "model.safetensors"
    assert init.record()["source"] == "official pickle"

    with pytest.raises(UserError) as err:
        load_init_model(folder, load_config("tiny-cpu", ["network.channel_max=32"]), c_dim=0)
    assert str(err.value).count("\n") == 0
    assert "network.channel_max is 64 there, 32 here" in str(err.value)
    with pytest.raises(UserError, match=r"data\.resolution is 32 there, 64 here"):
        load_init_model(folder, load_config("tiny-cpu", ["data.resolution=64"]), c_dim=0)
    with pytest.raises(UserError, match="label size is 0 there, 3 here"):
        load_init_model(folder, cfg, c_dim=3)
    only_g = tmp_path / "only-g.safetensors"
    save_networks(only_g, {"G_ema": loaded.networks["G_ema"]}, loaded.cfg)
    with pytest.raises(UserError, match="needs a generator and D"):
        load_init_model(only_g, cfg, c_dim=0)
    (tmp_path / "net.pkl").write_bytes(b"x")
    with pytest.raises(UserError, match="not a readable network pickle"):
        load_init_model(tmp_path / "net.pkl", cfg, c_dim=0)


def test_cli_refuses_a_mismatched_model_before_making_a_run(
    cli, tiny_archive, source_run, tmp_path
):
    code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                       "--outdir", str(tmp_path / "runs"), "--init-from", str(source_run),
                       "--set", "network.channel_max=32")  # fmt: skip
    assert code == 2
    assert err.startswith("heroforge: error: --init-from")
    assert err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    code, _, err = cli("train", "--resume", str(source_run), "--init-from", str(source_run))
    assert code == 2
    assert "--resume takes the run's own config" in err


def test_resume_before_the_first_checkpoint_starts_from_the_model_again(
    tiny_archive, source_run, tmp_path
):
    cfg = load_config("tiny-cpu", STEPS)
    run_dir, _ = start(tiny_archive, cfg, tmp_path, 0.032, log=quiet, init_from=source_run)
    whole = network_tensors(load_latest(run_dir / "checkpoints")[0].loaded.networks)
    for path in (run_dir / "checkpoints").iterdir():  # as if killed before its first checkpoint
        path.unlink()
    (run_dir / "stats.jsonl").unlink()
    messages: list[str] = []
    resume(run_dir, log=messages.append)
    again = network_tensors(load_latest(run_dir / "checkpoints")[0].loaded.networks)
    assert any("weights from" in m for m in messages)
    assert all(torch.equal(whole[k], again[k]) for k in whole)
