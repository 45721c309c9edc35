# SPDX-License-Identifier: GPL-2.0-or-later
"""Security of the SIP path with real pjsua2 peers: SRTP per leg, TLS to the agent, certificate checks.

Why: card digits typed in-band travel as audio, so on the wire they are as readable as the call itself
(PCI DSS req. 4.2: strong cryptography for cardholder data over open networks).  SRTP (RFC 3711, keys by
SDES, RFC 4568) encrypts the audio; SDES keys ride in the SDP, so a mandatory-SRTP leg must also have TLS
signalling (RFC 4568 §8.3) unless the operator relaxes it.

Checked with real processes: a call with SRTP and TLS on both legs is still masked toward the agent and
still captured; every peer and the guard see RTP/SAVP; the RTP packets on the loopback interface carry
the 10-byte SRTP authentication tag and look like random bytes (raw capture, needs CAP_NET_RAW); a
mandatory-SRTP leg refuses a plain-RTP peer with 488; the guard refuses an agent whose certificate it
cannot verify.  Pure-Python checks: impossible configurations get one clear error.
"""
from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from dtmfguard.server.config import ConfigError, GuardConfig, load_config, uses_tls

from _capture_util import make_tls_cert
from sip_peers import LoopbackUdp, SipCall, free_port, rtp_base

PAN = "4111111111111111"
RTP_HEADER = 12
PCMU_20MS = 160
SRTP_TAG = 10  # AES_CM_128/256_HMAC_SHA1_80: 80-bit authentication tag (RFC 3711 §4.2, RFC 4568 §6.2)


# -- configuration (pure Python) ------------------------------------------------------------------------

def test_uses_tls():
    assert uses_tls("sips:agent@10.0.0.5") and uses_tls("sip:agent@10.0.0.5:5061;transport=TLS")
    assert uses_tls("sip:a@b;transport=tls;lr") and not uses_tls("sip:a@b;transport=tcp")
    assert not uses_tls("sip:a@b;transport=tlsx") and not uses_tls("")


@pytest.mark.parametrize("fields, message", [
    ({"customer_srtp": "always"}, "media.customer_srtp must be off, optional or mandatory"),
    ({"agent_srtp": "yes"}, "media.agent_srtp must be off, optional or mandatory"),
    ({"srtp_signaling": "sips"}, "media.srtp_signaling must be 'tls' or 'any'"),
    ({"customer_srtp": "mandatory"}, "media.customer_srtp = 'mandatory' needs TLS signalling"),
    ({"agent_srtp": "mandatory"}, "media.agent_srtp = 'mandatory' needs TLS signalling to the agent"),
    ({"agent_uri": "sips:agent@10.0.0.5"}, "the agent target uses TLS"),
    ({"agent_uri": "sip:agent@10.0.0.5;transport=tls", "transports": ("udp", "tls"), "tls_cert": "c",
      "tls_key": "k"}, "agent.tls_verify is on but sip.tls_ca is not set"),
    ({"agent_from": "request-uri", "agent_template": "sip:{user}@pbx;transport=tls", "transports": ("tls",),
      "tls_cert": "c", "tls_key": "k"}, "agent.tls_verify is on but sip.tls_ca is not set"),
    ({"agent_tls_verify": "no"}, "agent.tls_verify must be true or false"),
])
def test_impossible_security_settings_one_clear_error(fields, message):
    cfg = GuardConfig(**{"agent_uri": "sip:agent@10.0.0.5", **fields})
    with pytest.raises(ConfigError) as info:
        cfg.check()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_security_settings_that_are_allowed():
    tls = {"transports": ("udp", "tls"), "tls_cert": "c", "tls_key": "k"}
    # the explicit relaxation: SDES keys in clear SIP
    GuardConfig(agent_uri="sip:a@b", customer_srtp="mandatory", agent_srtp="mandatory",
                srtp_signaling="any").check()
    # optional SRTP never needs TLS (it must let plain-SIP peers through)
    GuardConfig(agent_uri="sip:a@b", customer_srtp="optional", agent_srtp="optional").check()
    GuardConfig(agent_uri="sip:a@b;transport=tls", agent_srtp="mandatory", customer_srtp="mandatory",
                tls_ca="ca.pem", **tls).check()
    GuardConfig(agent_uri="sips:a@b", agent_tls_verify=False, **tls).check()
    # header targets are only known per call: nothing to refuse up front
    GuardConfig(agent_from="header", agent_srtp="mandatory", **tls).check()


def test_toml_keys_and_cli_flags(tmp_path):
    f = tmp_path / "guard.toml"
    f.write_text('[agent]\nuri = "sip:a@b"\ntls_verify = false\n'
                 '[media]\ncustomer_srtp = "optional"\nagent_srtp = "mandatory"\nsrtp_signaling = "any"\n')
    cfg = load_config(str(f))
    assert (cfg.customer_srtp, cfg.agent_srtp, cfg.srtp_signaling, cfg.agent_tls_verify) == \
        ("optional", "mandatory", "any", False)
    f.write_text('[agent]\nuri = "sip:a@b"\ntls_verify = "yes"\n')
    with pytest.raises(ConfigError, match="agent.tls_verify must be a bool, got str"):
        load_config(str(f))
    r = subprocess.run([sys.executable, "-m", "dtmfguard", "serve", "--listen", "127.0.0.1:5999", "--agent",
                        "sip:a@127.0.0.1", "--customer-srtp", "mandatory"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "needs TLS signalling" in r.stderr


# -- real peers ----------------------------------------------------------------------------------------

def _rtp_stats(payloads):
    """(packets, their UDP payload lengths, Shannon entropy of the RTP payload bytes in bits/byte)."""
    rtp = [p for p in payloads if len(p) > RTP_HEADER and p[0] >> 6 == 2 and (p[1] & 0x7F) < 72]  # not RTCP
    counts = Counter(b for p in rtp for b in p[RTP_HEADER:])
    total = sum(counts.values()) or 1
    entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
    return len(rtp), Counter(len(p) for p in rtp), entropy


def _guard_toml(path, cert, key, ca, **media):
    lines = ["[sip]", f'tls_cert = "{cert}"', f'tls_key = "{key}"', f'tls_ca = "{ca}"', "[media]"]
    lines += [f'{k} = "{v}"' for k, v in media.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def call_through_guard(tmp_path, *, guard_media, agent_args=(), customer_args=(), agent_tls=False,
                       customer_tls=False, ca=None, play=None, play_s=1.0, rfc="", capture=False):
    """One call customer -> guard_probe -> agent; returns the processes' results (see test_sip_call)."""
    cert, key = make_tls_cert(tmp_path)
    gport, aport = free_port(), free_port()
    g_rtp, a_rtp = rtp_base(), rtp_base()
    while a_rtp == g_rtp:
        a_rtp = rtp_base()
    c_rtp = rtp_base()  # the customer's: the capture tells the call's own flows by their source ports too
    while c_rtp in (g_rtp, a_rtp):
        c_rtp = rtp_base()
    toml = _guard_toml(tmp_path / "guard.toml", cert, key, ca or cert, **guard_media)
    tls_peer = ["--tls-cert", str(cert), "--tls-key", str(key)]
    target = f"sip:agent@127.0.0.1:{aport + 1};transport=tls" if agent_tls else f"sip:agent@127.0.0.1:{aport}"
    to = f"sip:guard@127.0.0.1:{gport + 1};transport=tls" if customer_tls else f"sip:guard@127.0.0.1:{gport}"
    sniffer = None
    sip = SipCall(tmp_path, timeout=40, gport=gport, aport=aport, agent_uri=target, guard_rtp=g_rtp, agent_rtp=a_rtp,
                  agent_args=[*(tls_peer if agent_tls else ()), *agent_args],
                  guard_args=["--config", str(toml), "--transports", "udp,tcp,tls"])
    with sip:
        try:
            if capture:
                try:
                    sniffer = LoopbackUdp(lambda port: g_rtp <= port < g_rtp + 100 or a_rtp <= port < a_rtp + 40)
                except PermissionError:
                    sniffer = None
            sip.customer("--play-s", f"{play_s:.2f}", *(tls_peer if customer_tls else ()),
                         *(["--play", str(play)] if play else ()), *(["--rfc2833", rfc] if rfc else ()),
                         *customer_args, to=to, rtp=c_rtp)
            sip.wait(60, 10)
        finally:
            if sniffer is not None:
                sniffer.stop()
    customer, agent, guard = sip.customers[0], sip.agent, sip.guard
    rc_customer, rc_agent, rc_guard = sip.rc
    rec_dir = sip.rec_dir
    last = lambda p: ([e for e in p.events() if e.get("event") == "done"] or [None])[-1]  # noqa: E731
    recording = rec_dir / "call-0.wav"
    return {"rc": (rc_customer, rc_agent, rc_guard), "customer": last(customer), "agent": last(agent),
            "probe": last(guard), "guard_log": guard.err_path.read_text(), "procs": (customer, agent, guard),
            "recording": sf.read(recording, dtype="int16")[0] if recording.exists() else None,
            "capture": list(sniffer.datagrams) if sniffer is not None else None, "rtp": (g_rtp, a_rtp, c_rtp)}


@pytest.fixture(scope="module")
def srtp_call(tmp_path_factory):
    """Customer -(TLS + SRTP)-> guard -(TLS, agent certificate verified, SRTP)-> agent; speech, a test PAN
    in-band, then RFC 4733 digits."""
    from test_sip_call import _customer_audio

    tmp = tmp_path_factory.mktemp("srtp")
    wav = tmp / "customer.wav"
    x, speech, spans = _customer_audio(wav, PAN, speech_after=False)
    r = call_through_guard(tmp, guard_media={"customer_srtp": "mandatory", "agent_srtp": "mandatory"},
                           agent_tls=True, customer_tls=True, play=wav, play_s=len(x) / 8000 + 0.3, rfc="123",
                           agent_args=["--srtp", "mandatory", "--srtp-require-tls"],
                           customer_args=["--srtp", "mandatory", "--srtp-require-tls"], capture=True)
    r.update(speech=speech, spans=spans)
    return r


@pytest.mark.sip
@pytest.mark.slow
def test_srtp_tls_call_connects_and_every_side_sees_srtp(srtp_call):
    r = srtp_call
    assert r["rc"] == (0, 0, 0), r["guard_log"][-3000:]
    assert r["customer"]["connected"] and r["customer"]["srtp"] is True
    assert r["agent"]["calls"][0]["confirmed"] and r["agent"]["calls"][0]["srtp"] is True
    assert "SRTP customer True, agent True" in r["guard_log"]
    assert "agent TLS certificate verified" in r["guard_log"]


@pytest.mark.sip
@pytest.mark.slow
def test_srtp_call_still_masks_and_captures(srtp_call):
    from dtmfguard.testkit.adversary import count_recovered, recover_digits
    from dtmfguard.dsp.detector import detect
    from dtmfguard.testkit.audio_match import speech_match

    r = srtp_call
    assert r["probe"]["digits_sha256"] == hashlib.sha256((PAN + "123").encode()).hexdigest(), r["probe"]
    assert r["probe"]["sources"] == {"inband": 16, "rfc4733": 3}
    rec = r["recording"]
    corr, lag = speech_match(rec, r["speech"])
    assert corr > 0.6, corr  # the agent hears the customer through SRTP both ways
    assert detect(rec) == []
    assert count_recovered(rec.astype(np.float64), r["spans"], 8000, offset=lag) == 0
    assert len(recover_digits(rec.astype(np.float64), 8000)) <= 1  # the prompt's one speech false alarm
    for proc in r["procs"]:
        assert PAN not in proc.output() and PAN[-8:] not in proc.output()


@pytest.mark.sip
@pytest.mark.slow
def test_rtp_on_the_wire_is_encrypted(srtp_call):
    """Every audio packet to the guard and to the agent carries the SRTP tag, and its payload bytes are
    indistinguishable from random (plain G.711 speech and silence: far below 8 bits/byte)."""
    r = srtp_call
    if r["capture"] is None:
        pytest.skip("raw packet capture needs CAP_NET_RAW (run as root, as .ci/run does)")
    g_rtp, a_rtp, c_rtp = r["rtp"]
    guard, agent, customer = (lambda port, lo=lo, hi=hi: lo <= port < hi
                              for lo, hi in ((g_rtp, g_rtp + 100), (a_rtp, a_rtp + 40), (c_rtp, c_rtp + 40)))
    # the call's own flows, by destination and source port: other tests' peers on a shared loopback (baresip
    # picks random RTP ports) sent plain RTP into the agent's port range once on a loaded CI run
    flows = (("to the guard (both legs)", lambda sp, dp: guard(dp) and (agent(sp) or customer(sp))),
             ("to the agent", lambda sp, dp: agent(dp) and guard(sp)))
    for name, flow in flows:
        payloads = [d[5] for d in r["capture"] if flow(d[1], d[2])]
        n, lengths, entropy = _rtp_stats(payloads)
        assert n > 100, (name, n)
        # RFC 4733 event packets are shorter (4-byte payload + tag); every audio packet is 12 + 160 + 10
        assert lengths[RTP_HEADER + PCMU_20MS + SRTP_TAG] > 0.9 * n, (name, lengths)
        assert lengths[RTP_HEADER + PCMU_20MS] == 0, (name, lengths)
        assert entropy > 7.9, (name, entropy)


@pytest.mark.sip
@pytest.mark.slow
@pytest.mark.parametrize("signaling, customer_args, code", [
    ("any", [], 488),  # a plain-RTP customer: 488 Not Acceptable Here (RFC 3261 §21.4.26)
    # SRTP offered, but over UDP (its keys were readable on the way): pjsua answers 406 (PJSIP_ESESSIONINSECURE)
    ("tls", ["--srtp", "mandatory"], 406),
])
def test_mandatory_srtp_customer_leg_refuses_a_plain_peer(tmp_path, signaling, customer_args, code):
    r = call_through_guard(tmp_path, guard_media={"customer_srtp": "mandatory", "srtp_signaling": signaling},
                           agent_args=["--timeout", "8"], customer_args=customer_args)
    assert r["customer"]["status"] == code and not r["customer"]["connected"]
    assert r["agent"]["calls"] == []  # the agent was never called
    assert r["rc"][2] == 0


@pytest.mark.sip
@pytest.mark.slow
def test_mandatory_srtp_agent_leg_refuses_a_plain_agent(tmp_path):
    r = call_through_guard(tmp_path, guard_media={"agent_srtp": "mandatory", "srtp_signaling": "any"})
    # the agent side's 488 reaches the customer as 488 (503 would make a front door retry the same agent)
    assert r["customer"]["status"] == 488 and not r["customer"]["connected"]
    assert r["agent"]["calls"] == []  # the agent's pjsua answered 488 itself: no call reached its application
    assert "agent leg failed: 488 Not Acceptable Here" in r["guard_log"] and r["rc"][2] == 0


@pytest.mark.sip
@pytest.mark.slow
def test_optional_srtp_agent_leg_accepts_a_plain_agent(tmp_path):
    r = call_through_guard(tmp_path, guard_media={"customer_srtp": "optional", "agent_srtp": "optional"},
                           customer_args=["--srtp", "optional"])
    assert r["rc"] == (0, 0, 0) and r["customer"]["connected"]
    assert r["customer"]["srtp"] is True and r["agent"]["calls"][0]["srtp"] is False
    assert "SRTP customer True, agent False" in r["guard_log"]


@pytest.mark.sip
@pytest.mark.slow
def test_agent_with_an_untrusted_certificate_is_not_called(tmp_path):
    """The agent's certificate is not signed by sip.tls_ca: the TLS connection is dropped before any SIP
    goes out, the customer gets 503 and the guard says why."""
    (tmp_path / "other").mkdir()
    other_ca, _ = make_tls_cert(tmp_path / "other")
    r = call_through_guard(tmp_path, guard_media={}, agent_tls=True, ca=other_ca, agent_args=["--timeout", "8"])
    assert r["customer"]["status"] == 500 and not r["customer"]["connected"]
    assert r["agent"]["calls"] == []
    assert "agent leg failed: 503 SSL certificate verification error" in r["guard_log"] and r["rc"][2] == 0


@pytest.mark.sip
@pytest.mark.slow
def test_legs_are_independent_and_a_tls_agent_can_hang_up(tmp_path):
    """SRTP on the agent leg only (customer in clear RTP over UDP), agent over verified TLS: the agent's
    BYE (sent to the guard's verifying TLS transport) ends the customer leg long before its 20 s of play."""
    r = call_through_guard(tmp_path, guard_media={"agent_srtp": "mandatory"}, agent_tls=True, play_s=20,
                           agent_args=["--hangup-after", "1", "--srtp", "mandatory", "--srtp-require-tls"])
    assert r["rc"] == (0, 0, 0) and r["customer"]["connected"]
    assert r["customer"]["srtp"] is False and r["agent"]["calls"][0]["srtp"] is True
    assert "SRTP customer False, agent True" in r["guard_log"] and "ended (agent-hangup)" in r["guard_log"]
