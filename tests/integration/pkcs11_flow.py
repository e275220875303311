"""The station's side of one board against a served site, with the ground truth it knows."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from site_fixtures import PROFILE, SiteSetup, client, grant_body, sign_in

from hex_generator import parse_ihex, patch
from hw_profiles import load_profile
from provisioner.crypto.grant_firmware import open_sealed
from provisioner.crypto.keystream import KeyStream
from provisioner.wire import GrantResponse, template_aad


@dataclass(frozen=True)
class Programmed:
    """One board as the station programmed it: the key it derived itself."""

    device_id: int
    drbg_index: int
    key: bytes
    image_sha256: str


def program_board(url: str, setup: SiteSetup, station_id: str, chip_uid: str,
                  drbg_index: int, order_id: str | None = None) -> Programmed:
    """Grant, derive the key from the bundle's DRBG state, patch, complete."""
    station = setup.stations[station_id]
    with client(url, setup.ca_path, station) as http:
        auth = sign_in(http)
        answer = http.post(f"/v1/orders/{order_id or setup.order_id}/grants",
                           json=grant_body(chip_uid, drbg_index), headers=auth)
        assert answer.status_code == 200, answer.text
        grant = GrantResponse.model_validate(answer.json())
        text = open_sealed(station.bundle.transport_key, base64.b64decode(grant.template),
                           template_aad("template", grant.grant_id, grant.device_id))
        stream = KeyStream.from_state(station.bundle.drbg_state.reveal())
        key = bytes(stream.key_at(grant.drbg_index, grant.key_size_bytes).reveal())
        layout = load_profile(PROFILE).patch_layout()
        image = patch(parse_ihex(bytes(text).decode("ascii")), layout, grant.device_id, key)
        digest = image.sha256(layout.image_start, layout.image_end, layout.fill_byte).hex()
        done = http.post(f"/v1/grants/{grant.grant_id}/complete", headers=auth, json={
            "request_id": f"done-{grant.grant_id}", "result": "success",
            "image_sha256": digest, "verified": True})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "programmed"
    return Programmed(grant.device_id, grant.drbg_index, key, digest)
