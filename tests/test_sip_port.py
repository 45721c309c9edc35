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
    assert out["detached"] == {"silent": True, "received": 1}  # counted before detach, nothing after
    assert out["reattached"] == {"echoed": True, "received": 1, "errors": 0}
