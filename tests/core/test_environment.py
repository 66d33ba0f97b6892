"""What the environment reports, and TensorFlow's start-up notices kept off the terminal."""

import subprocess
import sys

NOTICES = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")


def test_tensorflow_starts_without_notices():
    code = (
        "from watergee.core.environment import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "print(float(tf.reduce_sum(tf.ones(3))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3.0"
    assert not any(notice in out.stderr for notice in NOTICES), out.stderr


def test_only_the_notices_are_dropped_other_lines_pass():
    code = (
        "import os\n"
        "from watergee.core.environment import _without_startup_notices\n"
        "with _without_startup_notices():\n"
        "    os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "    os.write(2, b'E0000 cuda_dnn.cc] could not create cudnn handle\\n')\n"
        "os.write(2, b'after\\n')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr == "E0000 cuda_dnn.cc] could not create cudnn handle\nafter\n"


def test_usable_cpus_are_the_affinity_not_the_node():
    """A process held to one CPU (as a Slurm job's share of a node) counts one."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from watergee.core.environment import usable_cpus; print(usable_cpus())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "1", result.stderr
