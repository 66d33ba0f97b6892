"""Runs as users start them, in real processes: Ctrl-C and SIGTERM mid-run, and two runs on
one output folder at once."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import linked_tiles


def _command(listing, out, *more):
    return [sys.executable, "-m", "watergee.cli.main", "resample", "-t", str(listing),
            "-o", str(out), "--workers", "1", *more]  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("cluster", ["processes", "threads"])
def test_a_signal_mid_run_stops_cleanly_and_a_rerun_finishes(tmp_path, signum, cluster):
    """The signal goes to the whole process group, as Ctrl-C and scancel send it."""
    listing = linked_tiles(tmp_path, 6)
    out = tmp_path / "work"
    more = ["--set", "cluster.processes=false"] if cluster == "threads" else []
    process = subprocess.Popen(_command(listing, out, *more), stderr=subprocess.PIPE,
                               text=True, start_new_session=True)  # fmt: skip
    lines = []
    for line in process.stderr:  # batch-log progress: one line per finished tile
        lines.append(line)
        if " done (" in line:
            os.killpg(process.pid, signum)
            break
    rest = process.stderr.read()
    code = process.wait(120)
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], "".join(lines) + rest
    assert "interrupted: " in rest and " not started" in rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    assert not list(out.rglob("*.partial-*")), "partial files left behind"
    assert not list(out.rglob("*.lock")), "locks left behind"
    records = [json.loads(p.read_text()) for p in out.glob("*/.watergee/resample.json")]
    assert {r["status"] for r in records} == {"done"}, "an interrupted tile recorded as failed"
    report = json.loads(next((out / ".watergee" / "runs").glob("resample-*.json")).read_text())
    assert report["interrupted"] == signum and report["not_started"] >= 1
    assert report["done"] == len(records)  # tiles finished while stopping count as done

    again = subprocess.run(_command(listing, out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = again.stdout.strip().splitlines()[-1]
    done = int(summary.split(": ")[2].split(" done")[0])
    skipped = int(summary.split(" done, ")[1].split(" skipped")[0])
    assert (done, skipped) == (6 - report["done"], report["done"])


def test_two_runs_on_one_folder_do_each_tile_once(tmp_path):
    listing = linked_tiles(tmp_path, 4)
    out = tmp_path / "work"
    runs = [subprocess.Popen(_command(listing, out), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [(p.wait(300), *p.communicate()) for p in runs]
    for code, _, stderr in results:
        assert code == 0, stderr
    counts = [r[1].strip().splitlines()[-1] for r in results]
    done = sum(int(c.split(": ")[2].split(" done")[0]) for c in counts)
    skipped = sum(int(c.split(" done, ")[1].split(" skipped")[0]) for c in counts)
    assert (done, skipped) == (4, 4), counts
    assert not list(out.rglob("*.partial-*")) and not list(out.rglob("*.lock"))
    records = [json.loads(p.read_text()) for p in out.glob("*/.watergee/resample.json")]
    assert len(records) == 4 and {r["status"] for r in records} == {"done"}
