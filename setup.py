# SPDX-License-Identifier: GPL-2.0-or-later
"""Build hook for the optional C kernel in native/.

The extension is marked optional: on a machine without a C compiler the build
prints a warning and the package still installs (numpy backend only).
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dtmfguard.dsp._native",
            sources=["native/goertzel.c"],
            depends=["native/clones.h", "native/goertzel_kernel.h"],
            extra_compile_args=["-O3", "-std=c99"],
            optional=True,
        ),
        Extension(
            "dtmfguard.dsp._masker_native",
            sources=["native/masker.c"],
            depends=["native/clones.h"],
            extra_compile_args=["-O3", "-std=c99"],
            optional=True,
        ),
        Extension(
            "dtmfguard.dsp._detector_native",
            sources=["native/detector.c"],
            depends=["native/clones.h", "native/goertzel_kernel.h"],
            extra_compile_args=["-O3", "-std=c99"],
            optional=True,
        ),
        Extension(
            "dtmfguard.relay._relay_native",
            sources=["native/relayio.c"],
            extra_compile_args=["-O2", "-std=gnu99"],
            optional=True,
        ),
        Extension(
            "dtmfguard.server._procwatch",
            sources=["native/procwatch.c"],
            extra_compile_args=["-O2", "-std=gnu99"],
            optional=True,
        ),
    ]
)
