"""The job script `watergee cluster script` prints is the one worker jobs are submitted with."""

from __future__ import annotations

from typer.testing import CliRunner

from watergee.cli.main import app


def test_the_job_script_shows_gpus_image_prologue_and_certificates():
    result = CliRunner().invoke(app, [
        "cluster", "script", "--set", "cluster.gpus=2", "--set", "cluster.partition=gpu",
        "--set", "cluster.image=/images/watergee.sif", "--set", "cluster.binds=[/scratch, /data]",
        "--set", "cluster.prologue=[module load cuda]", "--set", "cluster.walltime=02:00:00",
        "--folder", "/shared/run",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    script = result.output
    for line in (
        "#SBATCH -p gpu",
        "#SBATCH --gres=gpu:2",
        "#SBATCH -t 02:00:00",
        "#SBATCH -e /shared/run/logs/watergee-worker-%J.err",
        "module load cuda",
    ):
        assert line in script.splitlines(), line  # fmt: skip
    command = script.splitlines()[-1]
    assert command.startswith(
        "apptainer exec --nv --bind /scratch,/data /images/watergee.sif python -m "
        "distributed.cli.dask_worker tls://"
    )
    assert "--resources GPU=2" in command and "--lifetime 55m --lifetime-stagger 4m" in command
    assert "--tls-key /shared/run/certificates-RUN/key.pem" in command
    plain = CliRunner().invoke(app, ["cluster", "script", "--set", "cluster.tls=false"])
    command = plain.output.splitlines()[-1]
    assert "dask_worker tcp://SCHEDULER-ADDRESS:PORT" in command and "--tls" not in command


def test_the_shared_directory_setting_moves_logs_and_certificates():
    moved = ["--set", "cluster.shared_directory=/scratch/me/wg"]
    result = CliRunner().invoke(app, ["cluster", "script", "--folder", "/shared/run", *moved])
    assert result.exit_code == 0, result.output
    assert "#SBATCH -e /scratch/me/wg/logs/watergee-worker-%J.err" in result.output
    assert "--tls-key /scratch/me/wg/certificates-RUN/key.pem" in result.output
    assert "/shared/run" not in result.output
