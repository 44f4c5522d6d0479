"""``edge-agent demo`` end to end: line, MQTT feed, agent and relay as real processes."""

from __future__ import annotations

import subprocess
import sys


def test_demo_counts_agree_across_a_wan_outage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "demo", "--duration", "10", "--outage-seconds", "3"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "--- WAN outage" in out and "--- WAN restored ---" in out
    assert "totals agree" in out
    assert "MISMATCH" not in out
    # Both sources were exercised: parts over OPC UA, consumption over MQTT.
    assert "good" in out and "consumed" in out
