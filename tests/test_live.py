"""curves.partial.csv grows epoch by epoch while a run trains, and matches curves.csv."""

import csv

from initbench import experiment, live, runfolder
from initbench.progress import SilentReporter
from initbench.runtime import Runtime
from initbench.spec import Spec


def test_partial_curves_grow_per_epoch_and_are_the_curves_rows(tmp_path):
    out = tmp_path / "run"
    spec = Spec(inits=("xavier", "normal"), seeds=(0, 1), dataset="digits", epochs=2,
                hidden=(16,))  # the README example's programs (the compilation cache)
    copies = []

    class Watcher(SilentReporter):
        """Reads the partial file each time an epoch is reported, before the run ends."""

        def advance(self, amount):
            path = out / live.PARTIAL_CURVES
            copies.append(path.read_text() if path.exists() else "")

    experiment.run_experiment(spec, out, Runtime.from_environment(), Watcher())
    # the header and 4 cells at epoch 0, then 4 more rows per epoch
    assert [len(text.splitlines()) for text in copies] == [1 + 4 * 2, 1 + 4 * 3]
    assert not (out / live.PARTIAL_CURVES).exists()  # the finished folder has curves.csv
    text = (out / "curves.csv").read_text()
    final = list(csv.DictReader(text.splitlines()))
    assert copies[-1].splitlines()[0] == text.splitlines()[0]
    partial = list(csv.DictReader(copies[-1].splitlines()))
    key = lambda row: (row["init"], row["seed"], row["epoch"])  # noqa: E731
    assert sorted(partial, key=key) == sorted(final, key=key)


def test_a_folder_holding_only_a_killed_runs_partial_file_counts_as_empty(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / live.PARTIAL_CURVES).write_text("dataset,init\n")
    assert runfolder.check_replaces(tmp_path / "run", Spec()) is None
    assert live.PARTIAL_CURVES in runfolder.RUN_FILES  # dropped when the folder is written
