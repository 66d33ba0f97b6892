"""A real single-node Slurm (slurmctld, slurmd, munged) for the HPC tests, started once per
session with slurm/testbed.sh; skipped, saying why, where it cannot start (not root and no
password-less sudo, or the packages not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTBED = ROOT / "slurm" / "testbed.sh"
#: Worker jobs small and short enough for the test node, and no lifetime unless a test sets one.
WORKER_SETTINGS = [
    "--set", "cluster.job_memory=1GB", "--set", "cluster.walltime=00:10:00",
    "--set", "cluster.lifetime=null", "--set", "cluster.connect_timeout=60",
]  # fmt: skip


@dataclass(frozen=True)
class Testbed:
    folder: Path
    conf: Path

    def jobs(self, name: str, since: int = 0) -> list[tuple[str, str]]:
        """(job id, state) of the finished jobs named `name` with ids from `since` on (the
        tasks of an array have ids of their own), from the job completion log."""
        lines = subprocess.run(
            ["sacct", "-c", "-n", "-P", "-o", "JobID,JobName,State"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        rows = [line.split("|") for line in lines if line.count("|") == 2]
        return [(job, state) for job, job_name, state in rows
                if job_name == name and int(job) >= since]  # fmt: skip

    def queued(self, name: str) -> list[str]:
        """Ids of the running or pending jobs named `name`."""
        out = subprocess.run(
            ["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True, check=True
        ).stdout
        return out.split()

    def wait_idle(self, timeout: float = 60) -> None:
        """Until no job is queued or running (worker jobs of the previous test gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout:
                return
            time.sleep(0.3)
        raise AssertionError("jobs still queued: " + subprocess.getoutput("squeue"))


def _packages_installed() -> bool:
    return all(shutil.which(d) or Path("/usr/sbin", d).exists() for d in ("slurmctld", "munged"))


@pytest.fixture(scope="session")
def slurm():
    if not _packages_installed():
        pytest.skip("slurm-wlm and munge are not installed (make system-deps installs them)")
    if os.geteuid() == 0:
        prefix = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"]).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        pytest.skip("slurmd needs root: not root and no password-less sudo")
    folder = Path(tempfile.mkdtemp(prefix="wg-slurm-"))  # short: the munge socket path
    started = subprocess.run([*prefix, str(TESTBED), "up", str(folder)],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    if started.returncode == 3:
        pytest.skip(started.stderr.strip())
    logs = "".join(p.read_text() for p in (folder / "log").glob("*.log"))
    assert started.returncode == 0, started.stderr + logs
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    try:
        yield Testbed(folder, folder / "slurm.conf")
    finally:
        subprocess.run([*prefix, str(TESTBED), "down", str(folder)], capture_output=True)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        shutil.rmtree(folder, ignore_errors=True)


def watergee(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """The command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "watergee.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, **kwargs)  # fmt: skip
