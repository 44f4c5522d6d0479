"""Write the golden wire vectors: a fixed test key and one signed two-event batch.

Run by hand from the repository root when the wire format changes on purpose:

    PYTHONPATH=. python3 tests/wire/vectors/make_vectors.py          # write the files
    PYTHONPATH=. python3 tests/wire/vectors/make_vectors.py --check  # exit 1 if they differ

Everything is deterministic: the key comes from a fixed seed, the events and ``created`` are
fixed, and Ed25519 signatures are deterministic, so a second run writes identical bytes.
The key is a published test key: never register it for a real gateway.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire.batch import BATCH_PATH, encode_batch
from wire.events import Event
from wire.keys import key_id, private_key_pem, public_key_pem
from wire.signing import sign_request

HERE = Path(__file__).resolve().parent
KEY_FILE = "test-gateway.pem"
PUBLIC_KEY_FILE = "test-gateway.pem.pub"
VECTOR_FILE = "signed-batch.json"

SEED_LABEL = b"plant-link wire test vector key 1"
GATEWAY_ID = "line-1-gw"
URL = "https://relay.example.test" + BATCH_PATH
CREATED = 1767225600  # 2026-01-01T00:00:00Z
EVENTS: tuple[dict[str, Any], ...] = (
    {
        "id": "017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
        "gateway_id": GATEWAY_ID,
        "seq": 1,
        "type": "production.reported",
        "occurred_at": "2026-01-01T00:00:00.250000Z",
        "source": "mqtt:plant/line1/press/count",
        "data": {"order": "WH/MO/00042", "qty": 12.0, "uom": "Units", "workcenter": "Presse Süd"},
    },
    {
        "id": "017f22e2-79b0-7cc3-98c4-dc0c0c073990",
        "gateway_id": GATEWAY_ID,
        "seq": 2,
        "type": "material.consumed",
        "occurred_at": "2026-01-01T00:00:01.000000Z",
        "source": "opcua:ns=2;s=Line1.Feeder.Consumed",
        "data": {"order": "WH/MO/00042", "product": "STEEL-2MM", "qty": 3.5, "lot": "L-0007"},
    },
)


def test_key() -> Ed25519PrivateKey:
    """The fixed test key: its seed is SHA-256 of a public label."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(SEED_LABEL).digest())


def signature_base(method: str, url: str, headers: dict[str, str]) -> str:
    """The RFC 9421 signature base, spelled out for readers of the vector file."""
    params = headers["Signature-Input"].split("=", 1)[1]
    return (
        f'"@method": {method}\n"@target-uri": {url}\n'
        f'"content-digest": {headers["Content-Digest"]}\n"@signature-params": {params}'
    )


def build() -> dict[str, bytes]:
    """Every vector file's name and exact bytes."""
    key = test_key()
    events = [Event.model_validate(e).encode() for e in EVENTS]
    body = encode_batch(GATEWAY_ID, 1, len(events), events)
    headers = sign_request("POST", URL, body, key, created=CREATED)
    vector = {
        "description": "A batch of two events signed with test-gateway.pem (RFC 9421, ed25519).",
        "method": "POST",
        "url": URL,
        "body": body.decode("utf-8"),
        "created": CREATED,
        "key_id": key_id(key.public_key()),
        "private_key_file": KEY_FILE,
        "public_key_file": PUBLIC_KEY_FILE,
        "signature_base": signature_base("POST", URL, headers),
        "headers": headers,
    }
    return {
        KEY_FILE: private_key_pem(key),
        PUBLIC_KEY_FILE: public_key_pem(key.public_key()),
        VECTOR_FILE: (json.dumps(vector, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    stale = []
    for name, data in build().items():
        path = HERE / name
        if path.exists() and path.read_bytes() == data:
            continue
        stale.append(name)
        if not args.check:
            path.write_bytes(data)
            if name == KEY_FILE:
                path.chmod(0o600)
    verb = "differ" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "vectors up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
