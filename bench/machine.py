"""What the benchmarks print about the machine they ran on."""

from __future__ import annotations

from pathlib import Path


def cpu_pressure() -> str:
    """ "some avg10=..% avg60=..%" from Linux PSI (/proc/pressure/cpu): the share of time in
    the last 10 / 60 s that a runnable task waited for a CPU another process held (shared
    machine: high values mean the timings are contended); "n/a" where the kernel has no PSI."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        fields = dict(f.split("=") for f in line.split()[1:])
        return f"some avg10={fields['avg10']}% avg60={fields['avg60']}%"
    except (OSError, IndexError, KeyError, ValueError):
        return "n/a"
