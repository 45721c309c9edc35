# SPDX-License-Identifier: GPL-2.0-or-later
"""PipelinePort: callbacks never raise into pjsua2, even on a half-destroyed object (fail closed: silence);
ports are detached and reused rather than destroyed mid-run.

Why: pjsua2 destroys a port with the GIL released; the clock thread can then call the port's Python
callbacks after the object's attributes are gone (seen once in a 10-minute soak: the exception crossed into
pjsua2 and the worker died with its calls).  Runs in a subprocess: one pjsua2 Endpoint per process.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import json
    import numpy as np
    import pjsua2 as pj
    from dtmfguard.sip.pj.endpoint import EndpointSettings, create_endpoint, destroy_endpoint
    from dtmfguard.sip.pj.port import PipelinePort

    class Boom:
        def process_customer_frame(self, pcm):
            raise RuntimeError("detector fault")

    class Echo:
        def process_customer_frame(self, pcm):
            return pcm

    ep = create_endpoint(EndpointSettings(host="127.0.0.1", port=0, transports=("udp",)))
    ep.audDevManager().setNoDev()  # no clock thread: only the calls below drive the ports (with one, a
    # loaded host saw its tick reach a port between two of these calls: "received" 3, not 1)
    out = {}
    tone = (8000 * np.sin(np.arange(160) * 2 * np.pi * 697 / 8000)).astype("<i2").tobytes()

    def frame_in():
        f = pj.MediaFrame()
        f.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        f.buf = pj.ByteVector(tone)
        f.size = len(tone)
        return f

    ports = []
    for name, pipeline in (("echo", Echo()), ("boom", Boom()), ("dead", Echo())):
        port = PipelinePort(pipeline, name=name)
        ports.append(port)
        port.onFrameReceived(frame_in())
        if name == "dead":
            port.__dict__.clear()  # what the clock thread sees while pjsua2 destroys the port
            port.onFrameReceived(frame_in())
        req = pj.MediaFrame()
        port.onFrameRequested(req)
        data = bytes(req.buf)[: req.size] if req.size else b""
        out[name] = {"type": int(req.type), "echoed": data == tone,
                     "silent": not any(data), "errors": port.stats["errors"] if name != "dead" else None}
    # consecutive frames through the port's own output vector: each request gets its frame, and a frame handed
    # out earlier keeps its audio when the vector is written again (frame.buf holds a copy)
    seq = PipelinePort(Echo(), name="seq")
    ports.append(seq)
    frames = [bytes([k + 1]) * 320 for k in range(3)]
    handed = []
    for data in frames:
        f = pj.MediaFrame()
        f.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        f.buf = pj.ByteVector(data)
        f.size = len(data)
        seq.onFrameReceived(f)
        req = pj.MediaFrame()
        seq.onFrameRequested(req)
        handed.append(req)
    out["sequence"] = {"fast": seq._out_at is not None,
                       "frames": [bytes(r.buf)[: r.size] == d for r, d in zip(handed, frames)]}
    del seq  # ports must go before the library (below)
    # reuse: a detached port sends silence and counts nothing; attached again, it starts from clean counters
    port = ports[0]
    port.detach()
    port.onFrameReceived(frame_in())
    req = pj.MediaFrame()
    port.onFrameRequested(req)
    out["detached"] = {"silent": not any(bytes(req.buf)[: req.size]), "received": port.stats["received"]}
    port.attach(Echo())
    port.onFrameReceived(frame_in())
    req = pj.MediaFrame()
    port.onFrameRequested(req)
    out["reattached"] = {"echoed": bytes(req.buf)[: req.size] == tone, "received": port.stats["received"],
                         "errors": port.stats["errors"]}
    print(json.dumps(out))
    del port
    ports.clear()  # ports must go before the library (their destructor leaves the conference bridge)
    destroy_endpoint(ep, wait_s=0.2)
''')


@pytest.mark.needs_pjsua2
def test_callbacks_fail_closed_and_never_raise():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["echo"] == {"type": 1, "echoed": True, "silent": False, "errors": 0}
    # a pipeline fault: the agent gets silence, the error is counted
    assert out["boom"]["silent"] and not out["boom"]["echoed"] and out["boom"]["errors"] == 1
    # a port whose Python attributes are gone: no exception, the frame stays empty (a NONE frame: silence)
    assert out["dead"]["type"] != 1 or out["dead"]["silent"]
    assert not out["dead"]["echoed"]
    # the clock thread's output vector (this build's std::vector layout, checked at start): frame by frame
    assert out["sequence"] == {"fast": True, "frames": [True, True, True]}
    assert out["detached"] == {"silent": True, "received": 1}  # counted before detach, nothing after
    assert out["reattached"] == {"echoed": True, "received": 1, "errors": 0}


GAP_SCRIPT = textwrap.dedent('''
    import json
    import numpy as np
    import pjsua2 as pj
    from dtmfguard.media.pipeline import CallPipeline
    from dtmfguard.sip.pj.endpoint import EndpointSettings, create_endpoint, destroy_endpoint
    from dtmfguard.sip.pj.port import PipelinePort
    from dtmfguard.testkit.synth import dtmf_tone

    ep = create_endpoint(EndpointSettings(host="127.0.0.1", port=0, transports=("udp",)))
    ep.audDevManager().setNoDev()  # no clock thread: only the calls below drive the ports
    res = {}
    ports = []
    for k in (8, 16, 24):  # the key's first 1, 2, 3 ms end the last frame before the gap
        tone = np.round(dtmf_tone("5", 120, level_dbm0=-10, phase=(0.3, 1.1))).astype("<i2")
        head = np.zeros(1600, "<i2")
        head[-k:] = tone[:k]
        rest = np.concatenate([tone[k + 160:], np.zeros(1600, "<i2")])
        frames = [head[i:i + 160] for i in range(0, 1600, 160)] + [None] + \\
            [rest[i:i + 160] for i in range(0, rest.size - rest.size % 160, 160)]
        pipeline = CallPipeline(8000, mask_mode="always")
        port = PipelinePort(pipeline, name=f"gap{k}")
        ports.append(port)
        heard = []
        for f in frames:  # the clock thread's order: request (previous frame's output), then receive
            req = pj.MediaFrame()
            port.onFrameRequested(req)
            heard.append(np.frombuffer(bytes(req.buf)[: req.size], "<i2"))
            fr = pj.MediaFrame()
            if f is None:
                fr.type = pj.PJMEDIA_FRAME_TYPE_NONE  # no packet reached the bridge this tick
            else:
                fr.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
                fr.buf = pj.ByteVector(f.tobytes())
                fr.size = 320
            port.onFrameReceived(fr)
        out = np.concatenate(heard)
        lag = 160 + pipeline.masker.delay_samples  # one bridge frame + the masker's look-ahead
        seg = out[1600 - k + lag: 1600 + lag]
        res[k] = {"fragment_heard": int(np.count_nonzero(seg)), "gaps": pipeline.stats["gaps"],
                  "errors": port.stats["errors"] + pipeline.stats["errors"], "missing": port.stats["missing"]}
    print(json.dumps(res))
    del port
    ports.clear()  # ports must go before the library (their destructor leaves the conference bridge)
    destroy_endpoint(ep, wait_s=0.2)
''')


@pytest.mark.needs_pjsua2
def test_a_none_frame_after_a_key_onset_silences_it():
    """Issue 12 (hold test, loaded host): the bridge hands the port a NONE frame (no packet this tick: a
    stream stalled or being recreated by a re-INVITE) right after a key's first 1-3 ms.  The port tells the
    pipeline it is a gap, and the agent hears silence where those ms were, never the tone."""
    r = subprocess.run([sys.executable, "-c", GAP_SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for k, row in out.items():
        assert row == {"fragment_heard": 0, "gaps": 1, "errors": 0, "missing": 1}, (k, row)


STATE_SCRIPT = textwrap.dedent("""
    import json, threading, time
    import pjsua2 as pj
    from dtmfguard.sip.pj.endpoint import EndpointSettings, create_endpoint, destroy_endpoint
    from dtmfguard.sip.pj.port import PipelinePort

    local = threading.local()
    seen = []

    class Probe:
        def process_customer_frame(self, pcm, gap=False):
            if len(seen) < 50:  # how many frames this thread's thread-local data has lived through
                local.n = getattr(local, "n", 0) + 1
                seen.append((threading.get_native_id(), local.n))
            return pcm

    ep = create_endpoint(EndpointSettings(host="127.0.0.1", port=0, transports=("udp",)))
    ep.audDevManager().setNullDev()  # the null sound device's clock thread drives the conference bridge
    port = PipelinePort(Probe(), name="probe")
    port.startTransmit(port)  # a loop through the bridge: the clock thread calls both callbacks every tick
    deadline = time.monotonic() + 10
    while len(seen) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    port.stopTransmit(port)
    print(json.dumps({"frames": len(seen), "threads": len({t for t, _ in seen}),
                      "on_main": any(t == threading.get_native_id() for t, _ in seen),
                      "lived": [n for _, n in seen]}))
    del port
    destroy_endpoint(ep, wait_s=0.2)
""")


@pytest.mark.needs_pjsua2
def test_the_clock_thread_keeps_its_python_thread_state():
    """pjsua2 takes the GIL for each callback with PyGILState_Ensure/Release: on pjmedia's clock thread, a thread
    Python did not start, each pair created and deleted a Python thread state (and mapped and unmapped its frame
    stack) twice per call per tick.  The port keeps the state: thread-local data lives from frame to frame."""
    r = subprocess.run([sys.executable, "-c", STATE_SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["frames"] == 50 and out["threads"] == 1 and not out["on_main"]
    assert out["lived"] == list(range(1, 51))  # a new thread state for each callback: [1, 1, 1, ...]
