"""Per-run TLS: on a shared cluster network a Dask scheduler that accepts any connection runs
code for anyone who reaches it. Every run of kind slurm or slurm-runner gets a fresh
self-signed certificate that only its own scheduler, workers and driver hold."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from watergee.core.errors import ClusterError

if TYPE_CHECKING:
    from distributed.security import Security

CERT = "cert.pem"
KEY = "key.pem"


def security_from(folder: Path) -> Security:
    from distributed.security import Security

    cert, key = str(folder / CERT), str(folder / KEY)
    return Security(
        require_encryption=True,
        tls_ca_file=cert,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )


def write_certificates(folder: Path) -> Security:
    """A new certificate and key in `folder` (created mode 0700, files 0600; it must not
    exist), returned as the Security every role of the run uses. The folder must be one
    that every node sees: workers read the files when they start."""
    from distributed.security import Security

    temporary = Security.temporary()
    staging = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}")
    try:
        staging.mkdir(mode=0o700, parents=False)
        for name, text in ((CERT, temporary.tls_ca_file), (KEY, temporary.tls_scheduler_key)):
            descriptor = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
        staging.rename(folder)  # readers see both files or none
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ClusterError(f"{folder}: cannot write the run's certificates ({exc})") from None
    return security_from(folder)


@contextlib.contextmanager
def run_certificates(folder: Path) -> Iterator[Security]:
    """`write_certificates` for the length of a run; the files are removed afterwards."""
    security = write_certificates(folder)
    try:
        yield security
    finally:
        shutil.rmtree(folder, ignore_errors=True)
