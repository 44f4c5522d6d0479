"""``edge-agent demo`` end to end: line, MQTT feed, agent, relay and the Odoo sandbox as real
processes."""

from __future__ import annotations

import re
import subprocess
import sys

ROW = re.compile(r"^(?P<order>WH/MO/\d{5})\s+(?P<what>good|scrap|consumed)\s+(?P<counts>.*)$")


def test_demo_counts_reach_odoo_once_across_a_wan_outage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "demo", "--duration", "10", "--outage-seconds", "3"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert out.startswith("Running for 10 s on loopback: a simulated line (OPC UA)")
    assert "posting into Odoo 18 sandbox" in out
    # A header names the progress columns; the stored/posted gap is explained.
    assert " time  the line makes" in out and "| the relay: events stored" in out
    assert "(signal.sampled telemetry) are kept at the relay and never posted to Odoo" in out
    assert re.search(r"The relay also stored \d+ temperature readings", out), out
    admin = re.search(r"relay admin page:  (http://127\.0\.0\.1:\d+/admin)   \(log in with", out)
    assert admin, out
    assert "log in with the admin token demo-admin-token" in out
    # The simulated line offers no secured endpoints, so asyncua has nothing to warn about.
    assert "No encrypting policy available" not in out + done.stderr
    assert "private key and certificate are not set" not in out + done.stderr
    assert "--- WAN outage" in out and "--- WAN restored ---" in out
    assert "odoo posted" in out and "dead 0" in out
    assert "totals agree" in out
    assert "MISMATCH" not in out and "dead letter" not in out

    rows = [m for line in out.splitlines() if (m := ROW.match(line))]
    counts = {(m["order"], m["what"]): [float(c) for c in m["counts"].split()] for m in rows}
    assert counts, out
    for key, (line, relay, odoo) in counts.items():
        assert line == relay == odoo, (key, out)
    # Both sources reached Odoo: parts over OPC UA, consumption over MQTT.
    assert counts[("WH/MO/00001", "good")][2] > 0
    assert counts[("WH/MO/00001", "consumed")][2] > 0
