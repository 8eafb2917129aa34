"""Stopping the throwaway service processes the suite starts."""

from __future__ import annotations

import signal
import subprocess


def terminate(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    """Send `sig` (the service's graceful stop), wait, kill if it hangs; always reap it.

    Reaping matters: a process left unwaited stays `<defunct>` (PID 1 here does not reap).
    """
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
