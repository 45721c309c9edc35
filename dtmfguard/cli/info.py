# SPDX-License-Identifier: GPL-2.0-or-later
"""``dtmfguard info``: version, active kernel backend, pjsua2 version."""
from __future__ import annotations

import json
import platform


def collect() -> dict:
    from .. import __version__
    from ..dsp import goertzel

    info = {
        "version": __version__,
        "python": platform.python_version(),
        "backend": goertzel.backend(),
        "backends_available": list(goertzel.available_backends()),
    }
    try:
        import numpy
        info["numpy"] = numpy.__version__
    except ImportError:  # pragma: no cover
        info["numpy"] = None
    info["pjsua2"] = _pjsua2_version()
    return info


def _pjsua2_version():
    # Only the version string: importing pjsua2 here creates no Endpoint and touches no network.
    try:
        from importlib.metadata import version

        return version("pjsua2-python")
    except Exception:
        return None


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            if isinstance(value, list):
                value = ", ".join(value)
            print(f"{key:20s} {value if value is not None else 'not installed'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("info", help="show version, DSP backend and pjsua2 version",
                       description="Show the version, the active DSP backend (DTMFGUARD_BACKEND) and pjsua2's version.",
                       epilog="Example: dtmfguard info --json\nExit codes: 0 ok.",
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
