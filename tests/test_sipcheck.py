# SPDX-License-Identifier: GPL-2.0-or-later
"""The pure checks the guard runs on every SIP request before pjsua sees it (dtmfguard.sip.sipcheck).

RFC 3261 names the answers; RFC 4475's torture messages (tests/data/rfc4475) are the reference inputs:
every invalid one is refused with the status the RFC (or RFC 3261) asks for, the valid ones pass.
"""
from __future__ import annotations

import pytest

from dtmfguard.sip.sipcheck import Refusal, answer_unparsed, check_request, check_sdp, is_initial_invite

from sip_fuzz import FIELDS, RFC4475_RESPONSES, rfc4475_messages

PARAMS = {"ghost": "127.0.0.1", "gport": 5170, "lhost": "127.0.0.1", "lport": 5555, "TP": "UDP", "uid": "u1",
          "rtp": 7000, "rtcp": 7001}


def _render_valid(sdp_extra: str = "", head_extra: str = "", **fields) -> bytes:
    from sip_fuzz import Message, _template

    m = Message("t", _template(fields, extra_head=head_extra, extra_sdp=sdp_extra))
    return m.render(**PARAMS)


def test_the_valid_invite_passes():
    raw = _render_valid()
    assert check_request(raw) is None
    assert is_initial_invite(raw)
    assert not is_initial_invite(raw.replace(b"To: <sip:agent@127.0.0.1>", b"To: <sip:agent@127.0.0.1>;tag=x"))


@pytest.mark.parametrize("name, code", [
    # RFC 4475 §3.1.2 (invalid messages) and §3.3 (transaction layer / application semantics)
    ("badvers", 505), ("clerr", 400), ("ncl", 400), ("scalar02", 400), ("quotbal", 400), ("ltgtruri", 400),
    ("lwsruri", 400), ("lwsstart", 400), ("trws", 400), ("mismatch01", 400), ("mismatch02", 400),
    ("unkscm", 416), ("novelsc", 416), ("bext01", 420), ("insuf", 400), ("mcl01", 400), ("multi01", 400),
    ("intmeth", 501), ("esc02", 501), ("regaut01", 405), ("unksm2", 405), ("invut", 415),
])
def test_rfc4475_invalid_messages_get_the_right_answer(name, code):
    raw = dict(rfc4475_messages())[name]
    r = check_request(raw)
    assert r is not None and r.code == code, (name, r)
    if code in (405, 501):
        assert dict(r.headers)["Allow"].startswith("INVITE, ACK, BYE")
    if code == 420:
        assert dict(r.headers)["Unsupported"] == "nothingSupportsThis, nothingSupportsThisEither"
    if code == 415:
        assert dict(r.headers)["Accept"] == "application/sdp"


@pytest.mark.parametrize("name", ["wsinv", "esc01", "escnull", "semiuri", "transports", "lwsdisp", "longreq",
                                  "sdp01", "zeromf", "dblreq", "cparam01"])
def test_rfc4475_valid_messages_are_not_refused_as_malformed(name):
    raw = dict(rfc4475_messages())[name]
    r = check_request(raw)
    # valid REGISTERs get 405 (no registrar here); nothing valid is called malformed
    assert r is None or r.code == 405, (name, r)


def test_all_49_rfc4475_messages_are_present():
    msgs = rfc4475_messages()
    assert len(msgs) == 49 and {n for n, _ in msgs} >= RFC4475_RESPONSES


@pytest.mark.parametrize("fields, extra, code", [
    ({"sdp_c_addr": "A" * 254}, "", 488),  # pj_sockaddr_in_set_str_addr asserts on 254+ characters
    ({"sdp_c_addr": "A" * 253}, "", 488),  # a name: never resolved on the SIP thread
    ({"sdp_c_addr": "::1"}, "", 488),  # IP6 address under IP4
    ({"sdp_m_proto": "UDP/TLS/RTP/SAVPF"}, "a=fingerprint:sha-256 AB:CD\r\n", 488),  # DTLS-SRTP: SIGSEGV
    ({"sdp_m_proto": "UDP/TLS/RTP/SAVP"}, "", 488),
    ({"sdp_m_port": "70000"}, "", 400),
    ({"sdp_m_fmt": "0 999"}, "", 400),
    ({"rtpmap_enc": "PCMU/0"}, "", 488),
    ({"rtpmap_enc": "PCMU/8000/99"}, "", 488),
    ({"rtcp": "9 IN IP4 " + "A" * 300}, "", 488),
    ({"ptime": "0"}, "", 488),
    ({"sdp_v": "1"}, "", 400),
    ({}, "m=audio 5000 RTP/AVP 0\r\n" * 20, 488),
    ({}, "a=x:y\r\n" * 100, 488),
    ({}, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD\r\n", 488),
    ({}, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "QUJD" * 200 + "\r\n", 488),
    ({}, "a=fmtp:0 " + ";".join(f"p{i}=1" for i in range(40)) + "\r\n", 488),
])
def test_sdp_that_pjmedia_must_not_see(fields, extra, code):
    r = check_request(_render_valid(sdp_extra=extra, **fields))
    assert r is not None and r.code == code, r


def test_sdp_that_passes():
    good_crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
    assert check_request(_render_valid(sdp_extra=good_crypto, sdp_m_proto="RTP/SAVP")) is None
    assert check_request(_render_valid(sdp_c_addr="0.0.0.0")) is None  # RFC 2543 hold
    assert check_request(_render_valid(sdp_extra="m=video 0 UDP/TLS/RTP/SAVPF 96\r\n")) is None  # disabled
    assert check_sdp(b"v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n") is None


@pytest.mark.parametrize("fields, head, code", [
    ({"method": "FOOBAR", "cseq_method": "FOOBAR"}, "", 501),
    ({"method": "REGISTER", "cseq_method": "REGISTER"}, "", 405),
    ({"version": "SIP/7.0"}, "", 505),
    ({"cseq_method": "BYE"}, "", 400),
    ({"cseq_method": "A" * 64}, "", 400),
    ({"cseq_num": "4294967296"}, "", 400),
    ({"max_forwards": "256"}, "", 400),
    ({"call_id": "a b"}, "", 400),
    ({}, "Require: x-nobody\r\n", 420),
    ({}, "Content-Length: 5\r\n", 400),  # two Content-Lengths
    ({"ctype": "text/plain"}, "", 415),
])
def test_header_checks(fields, head, code):
    r = check_request(_render_valid(head_extra=head, **fields))
    assert r is not None and r.code == code, r


def test_content_length_larger_than_the_datagram():
    raw = _render_valid()
    raw = raw.replace(b"Content-Length: ", b"Content-Length: 9")
    assert check_request(raw).code == 400
    assert check_request(raw, datagram=True).reason == "Content-Length larger than the message"


def test_a_malformed_ack_is_dropped_never_answered():
    raw = _render_valid(method="ACK", cseq_method="ACK", sdp_c_addr="A" * 300)
    assert check_request(raw) == Refusal(0, "malformed ACK dropped")
    assert answer_unparsed(raw, "127.0.0.1") is None


def test_answer_unparsed_echoes_the_dialog_headers_and_routes_by_via():
    raw = dict(rfc4475_messages())["badvers"]
    resp, code, port = answer_unparsed(raw, "192.0.2.9")
    assert code == 505 and port == 5060
    text = resp.decode()
    assert text.startswith("SIP/2.0 505 Version Not Supported\r\n")
    assert ";received=192.0.2.9" in text and "Call-ID: badvers." in text and text.endswith("\r\n\r\n")
    # rport: back to the source port; a response needs no answer
    raw2 = _render_valid(version="SIP/7.0")
    assert answer_unparsed(raw2, "127.0.0.1")[2] is None
    assert answer_unparsed(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a\r\n\r\n") is None
    assert answer_unparsed(b"INVITE sip:a@b SIP/2.0\r\nFrom: x\r\n\r\n") is None  # no Via: nowhere to answer


def test_refusal_reasons_never_echo_the_request():
    # a card number placed in every field never appears in a reason (reasons reach the log)
    pan = "4111111111111111"
    for name in FIELDS:
        r = check_request(_render_valid(**{name: pan + "%n" * 3}))
        if r is not None:
            assert pan not in r.reason
    r = check_request(_render_valid(head_extra=pan + ": " + "x" * 5000 + "\r\n"))
    assert r is not None and pan not in r.reason


def test_multipart_sdp_is_checked_not_refused():
    """SIP-I/SIP-T carriers send SDP with ISUP in multipart/mixed: pjsua takes the SDP part."""
    def mp(sdp_addr):
        raw = _render_valid(sdp_c_addr=sdp_addr)
        head, body = raw.split(b"\r\n\r\n", 1)
        head = head.replace(b"Content-Type: application/sdp", b"Content-Type: multipart/mixed;boundary=unique-b")
        multi = (b"--unique-b\r\nContent-Type: application/sdp\r\n\r\n" + body + b"\r\n--unique-b\r\n"
                 b"Content-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x00\x49\r\n--unique-b--\r\n")
        import re
        head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(multi), head)
        return head + b"\r\n\r\n" + multi

    assert check_request(mp("192.0.2.1")) is None
    assert check_request(mp("A" * 300)).code == 488
