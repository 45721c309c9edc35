# SPDX-License-Identifier: GPL-2.0-or-later
"""The demo's picture: the customer's line above the agent's recording, masked spans shaded (matplotlib)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .options import RATE

__all__ = ["write_spectrogram"]


def write_spectrogram(png: Path, customer: np.ndarray, agent: np.ndarray, key_spans, mask_spans,
                      lag: int, rate: int = RATE) -> bool:
    """Customer's line above, agent's recording below, on the agent's time axis; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from ...dsp.params import DTMF_HZ

    shifted = np.concatenate([np.zeros(max(lag, 0)), np.asarray(customer, dtype=np.float64)])
    length = max(shifted.size, agent.size)
    fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True, constrained_layout=True)
    panels = ((axes[0], shifted, [(s.start + lag, s.end + lag) for s in key_spans],
               "customer's line: speech and in-band key presses (RFC 4733 / SIP INFO keys are not audio)"),
              (axes[1], np.asarray(agent, dtype=np.float64), mask_spans,
               f"agent's recording: {len(mask_spans)} masked span(s) shaded"))
    for ax, sig, spans, title in panels:
        sig = np.concatenate([sig, np.zeros(length - sig.size)])
        with np.errstate(divide="ignore"):
            ax.specgram(sig / 32768.0, NFFT=256, Fs=rate, noverlap=192, cmap="magma", vmin=-140)
        for s, e in spans:
            ax.axvspan(s / rate, e / rate, color="cyan", alpha=0.25, lw=0)
        for f in DTMF_HZ:
            ax.axhline(f, color="white", lw=0.3, alpha=0.5)
        ax.set_ylim(0, rate / 2)
        ax.set_ylabel("Hz")
        ax.set_title(title, fontsize=10)
    axes[1].set_xlabel("s")
    fig.suptitle("dtmfguard demo: what the customer sent and what the agent heard", fontsize=11)
    try:
        fig.savefig(png, dpi=90)
    finally:
        plt.close(fig)
    return True
