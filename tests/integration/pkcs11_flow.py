"""The station's side of one board against a served site, with the ground truth it knows."""

from __future__ import annotations

from dataclasses import dataclass

from site_fixtures import PROFILE, SiteSetup, client, grant_body, sign_in

from hw_profiles import load_profile
from provisioner.crypto.keystream import KeyStream
from provisioner.station.imaging import build_board_image, open_grant_images
from provisioner.wire import GrantResponse


@dataclass(frozen=True)
class Programmed:
    """One board as the station programmed it: the key it derived itself."""

    device_id: int
    drbg_index: int
    key: bytes
    image_sha256: str


def program_board(url: str, setup: SiteSetup, station_id: str, chip_uid: str,
                  drbg_index: int, order_id: str | None = None) -> Programmed:
    """Grant, derive the key from the bundle's DRBG state, open and patch the template as the
    station does (``station.imaging``), complete."""
    station = setup.stations[station_id]
    with client(url, setup.ca_path, station) as http:
        auth = sign_in(http)
        answer = http.post(f"/v1/orders/{order_id or setup.order_id}/grants",
                           json=grant_body(chip_uid, drbg_index), headers=auth)
        assert answer.status_code == 200, answer.text
        grant = GrantResponse.model_validate(answer.json())
        template, application = open_grant_images(station.bundle.transport_key, grant)
        stream = KeyStream.from_state(station.bundle.drbg_state.reveal())
        key = stream.key_at(grant.drbg_index, grant.key_size_bytes)
        _image, digest = build_board_image(template, load_profile(PROFILE).patch_layout(),
                                           grant.device_id, key, application)
        done = http.post(f"/v1/grants/{grant.grant_id}/complete", headers=auth, json={
            "request_id": f"done-{grant.grant_id}", "result": "success",
            "image_sha256": digest, "verified": True})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "programmed"
    return Programmed(grant.device_id, grant.drbg_index, bytes(key.reveal()), digest)
