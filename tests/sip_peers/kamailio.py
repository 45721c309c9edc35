# SPDX-License-Identifier: GPL-2.0-or-later
"""Kamailio (Debian) in front of the guard or of relay mode, started one way for every test.

* :func:`kamailio_config`: ``dtmfguard kamailio-config ... --json`` into ``tmp/kam``, its script checked
  with ``kamailio -c``; returns the command's JSON (the paths it wrote).
* :class:`Kamailio`: one Kamailio process on a script (optionally inside a network namespace), waited for
  with an OPTIONS it answers itself (an event, not a sleep), stopped with SIGTERM then SIGKILL.
* :func:`ng`: one rtpengine "ng" command to a relay; :func:`relay_proc`: a ``dtmfguard relay`` process.
* :class:`RelayCall`: relay mode's whole set-up (the agent peer, N relays, Kamailio with the relay-mode
  script in front), with customers calling Kamailio, like :class:`sip_peers.SipCall` for the guard.

A test that uses them needs the program: mark it ``needs_program("kamailio")`` (it then skips naming the
package, or fails under ``DTMFGUARD_REQUIRE_CORPORA=1``).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from dtmfguard.server.procs import stop_process

from . import PEERS, PYTHON, Proc, free_port, rtp_base, sip_options_ok

__all__ = ["kamailio_config", "Kamailio", "ng", "relay_proc", "RelayCall"]


def kamailio_config(tmp_path, *args, check: bool = True) -> dict:
    """Run ``dtmfguard kamailio-config ARGS --output tmp/kam --json``; with ``check`` its Kamailio script must
    pass ``kamailio -c``.  Returns the JSON it printed (``kamailio_cfg`` is the script's path)."""
    out = subprocess.run([PYTHON, "-m", "dtmfguard", "kamailio-config", *args, "--output",
                          str(Path(tmp_path) / "kam"), "--json"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    paths = json.loads(out.stdout)
    if check:
        r = subprocess.run(["kamailio", "-c", "-f", paths["kamailio_cfg"]], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    return paths


class Kamailio:
    """Kamailio in the foreground (``-DD -E``) on script ``cfg``, logging to ``tmp/kam.out`` and ``kam.err``;
    ``netns``: inside that network namespace (``ip netns exec``)."""

    def __init__(self, tmp_path, cfg: str, *, netns: str | None = None, run_dir: str = "run"):
        self.tmp = Path(tmp_path)
        (self.tmp / run_dir).mkdir(exist_ok=True)
        self.err_path = self.tmp / "kam.err"
        self.netns = netns
        prefix = ["ip", "netns", "exec", netns] if netns else []
        with open(self.tmp / "kam.out", "w") as out, open(self.err_path, "w") as err:
            self.p = subprocess.Popen([*prefix, "kamailio", "-DD", "-E", "-f", cfg, "-Y", str(self.tmp / run_dir)],
                                      stdout=out, stderr=err, start_new_session=True)

    def wait_up(self, port: int, host: str = "127.0.0.1", timeout: float = 15.0, src: str | None = None) -> None:
        """Until Kamailio answers an OPTIONS to itself on ``host:port`` (its children are up), sent from
        ``src`` (default ``host``: an address its allow-list lets in)."""
        if self.netns is None:
            up = sip_options_ok(port, timeout, host, src)
        else:  # the probe runs in Kamailio's namespace
            code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r}); "
                    "from sip_peers import sip_options_ok; "
                    f"sys.exit(0 if sip_options_ok({port}, {timeout}, {host!r}, {src!r}) else 1)")
            up = subprocess.run(["ip", "netns", "exec", self.netns, PYTHON, "-c", code],
                                timeout=timeout + 30).returncode == 0
        assert up, "kamailio did not answer OPTIONS: " + self.log()[-2000:]

    def poll(self):
        return self.p.poll()

    def log(self) -> str:
        return self.err_path.read_text()

    def stop(self) -> int | None:
        return stop_process(self.p, 10)


def ng(port: int, msg: dict, timeout: float = 2.0, host: str = "127.0.0.1") -> dict:
    """One rtpengine ng command (bencoded, with a fresh cookie: a repeated one gets the cached reply)."""
    from dtmfguard.relay import bencode

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        cookie = os.urandom(6).hex().encode()
        s.sendto(cookie + b" " + bencode.encode(msg), (host, port))
        data, _ = s.recvfrom(65535)
    return bencode.decode(data.split(b" ", 1)[1])


def relay_proc(tmp_path, name: str, ngport: int, control: int | None = None, env=None, *, verbose=True,
               extra=()) -> Proc:
    """A ``dtmfguard relay`` on 127.0.0.1:``ngport`` with 200 RTP ports of its own (and a control API);
    ``extra``: more of its options (e.g. ``--mask-mode payment``)."""
    base = rtp_base()
    args = ["-m", "dtmfguard", *(["-v"] if verbose else []), "relay", "--ng", f"127.0.0.1:{ngport}",
            "--rtp-range", f"{base}-{base + 199}", *extra]
    if control:
        args += ["--control", f"127.0.0.1:{control}"]
    return Proc(args, name, Path(tmp_path), env=env)


class RelayCall:
    """Relay mode end to end on 127.0.0.1: the agent peer (recording into ``tmp/agent``), ``relays`` relays
    (the first with a control API when ``control``) and Kamailio with the relay-mode script in front::

        with RelayCall(tmp_path, agent_args=["--srtp", "mandatory"]) as call:  # all up
            customer = call.customer("--play", wav, "--play-s", "3")            # calls Kamailio
            assert customer.wait(60) == 0 and call.agent.wait(15) == 0
            stats = call.ng({"command": "statistics"})

    Leaving the block stops every process (relays, Kamailio, customers, the agent)."""

    def __init__(self, tmp_path, *, relays: int = 1, control: bool = False, env=None, agent_args=(),
                 timeout: int = 60, agent: bool = True, relay_args=()):
        self.tmp = Path(tmp_path)
        self._start_agent = agent  # False: the test runs its own agent (baresip, sipp) on ``self.aport``
        self.front, self.aport = free_port(), free_port()
        self.ngports = [free_port() for _ in range(relays)]
        self.ctl = free_port() if control else None
        self._env, self._agent_args, self.timeout = env, list(agent_args), timeout
        self._relay_args = list(relay_args)
        self.agent = self.kam = None
        self.relays: list = []
        self.customers: list = []

    def __enter__(self):
        (self.tmp / "agent").mkdir(exist_ok=True)
        try:
            if self._start_agent:
                self.agent = Proc([*PEERS, "agent", "--port", str(self.aport), "--rtp", str(rtp_base()),
                                   "--record-dir", str(self.tmp / "agent"), "--timeout", str(self.timeout),
                                   *self._agent_args], "agent", self.tmp)
            self.relays = [relay_proc(self.tmp, f"relay{i}" if len(self.ngports) > 1 else "relay", p,
                                      self.ctl if i == 0 else None, self._env, extra=self._relay_args)
                           for i, p in enumerate(self.ngports)]
            if self.agent is not None:
                self.agent.wait_ready()
            for r in self.relays:
                r.wait_ready()
            relay_args = [a for p in self.ngports for a in ("--relay", f"127.0.0.1:{p}")]
            for attempt in range(3):
                paths = kamailio_config(self.tmp, "--mode", "relay", *relay_args, "--agent",
                                        f"sip:agent@127.0.0.1:{self.aport}", "--front", f"127.0.0.1:{self.front}")
                self.kam = Kamailio(self.tmp, paths["kamailio_cfg"])  # after the relays: it pings them at start
                try:
                    self.kam.wait_up(self.front)
                    break
                except AssertionError:
                    # the front port was free when drawn but taken before Kamailio bound it (a port another
                    # test process's guard took meanwhile): draw another; any other failure is the test's
                    if attempt == 2 or "Address already in use" not in self.kam.log():
                        raise
                    self.kam.stop()
                    self.front = free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def customer(self, *args, name: str = "customer", timeout: int | None = None) -> Proc:
        proc = Proc([*PEERS, "customer", "--port", str(free_port()), "--rtp", str(rtp_base()), "--to",
                     f"sip:agent@127.0.0.1:{self.front}", "--timeout", str(timeout or self.timeout), *args],
                    name, self.tmp)
        self.customers.append(proc)
        return proc

    def ng(self, msg: dict, relay: int = 0) -> dict:
        return ng(self.ngports[relay], msg)

    def recording(self, index: int = 0):
        import soundfile as sf

        rec, rate = sf.read(self.tmp / "agent" / f"call-{index}.wav", dtype="int16")
        assert rate == 8000, rate
        return rec

    def stop(self) -> None:
        self.rc_relays = [r.stop() for r in self.relays]
        if self.kam is not None:
            self.kam.stop()
        for proc in (*self.customers, self.agent):
            if proc is not None:
                proc.stop()

    def __exit__(self, *exc):
        self.stop()
        return False

    def output(self) -> str:
        """Everything every process wrote, Kamailio's log included (searched for card data)."""
        procs = (*self.relays, self.agent, *self.customers)
        return "".join(p.output() for p in procs if p is not None) + (self.kam.log() if self.kam else "")
