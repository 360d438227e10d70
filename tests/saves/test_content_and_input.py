"""Downloads and visibility across users, the content hash vectors, and bad input."""

from __future__ import annotations

import hashlib

import pytest
from factories import count
from saves_helpers import hide_rom, parse, sync_row, zip_bytes

from romshelf.core.storage import LocalStorage
from romshelf.saves import service
from romshelf.saves.models import Save


# --- /content ---------------------------------------------------------------------------------------
def test_download_by_owner_and_sync(env):
    dev = env.device()
    save = env.upload(b"bytes!", "game.srm").json()
    r = env.client.get(
        f"/api/saves/{save['id']}/content", params={"optimistic": "false", "device_id": dev}, headers=env.a
    )
    assert r.status_code == 200 and r.content == b"bytes!"
    assert "attachment" in r.headers["content-disposition"] and "game.srm" in r.headers["content-disposition"]
    assert sync_row(env.ctx, dev, save["id"]) is None  # optimistic=false: the client calls /downloaded
    r = env.client.get(f"/api/saves/{save['id']}/content", params={"device_id": dev}, headers=env.a)
    assert r.status_code == 200
    assert sync_row(env.ctx, dev, save["id"]).last_synced_at == parse(save["updated_at"])
    r = env.client.get(f"/api/saves/{save['id']}/content", headers={**env.a, "Range": "bytes=0-1"})
    assert r.status_code == 206 and r.content == b"by"


def test_download_404s(env):
    r = env.client.get("/api/saves/999/content", headers=env.a)
    assert r.status_code == 404 and r.json()["detail"] == "Save with ID 999 not found"
    save = env.upload().json()
    env.ctx.storages.assets.delete(save["full_path"])
    r = env.client.get(f"/api/saves/{save['id']}/content", headers=env.a)
    assert r.status_code == 404 and r.json()["detail"] == "Save file not found on disk"


def test_public_save_for_another_user(env):
    bob_dev = env.device(env.bob)
    save = env.upload(b"share me").json()
    r = env.client.get(f"/api/saves/{save['id']}/content", headers=env.b)
    assert r.status_code == 404 and r.json()["detail"] == f"Save with ID {save['id']} not found"
    env.client.put(f"/api/saves/{save['id']}/visibility", json={"is_public": True}, headers=env.a)
    r = env.client.get(f"/api/saves/{save['id']}/content", params={"device_id": bob_dev}, headers=env.b)
    assert r.status_code == 200 and r.content == b"share me"
    assert sync_row(env.ctx, bob_dev, save["id"]) is None  # no bookkeeping for a non-owner
    # everything else stays owner-only
    assert env.client.get(f"/api/saves/{save['id']}", headers=env.b).status_code == 404
    assert env.client.get("/api/saves", headers=env.b).json() == []
    assert env.client.post("/api/saves/delete", json={"saves": [save["id"]]}, headers=env.b).status_code == 404
    # a ROM bob hid masks it
    hide_rom(env.ctx, env.bob.id, env.rom.id)
    assert env.client.get(f"/api/saves/{save['id']}/content", headers=env.b).status_code == 404
    assert env.client.get(f"/api/saves/{save['id']}/content", headers=env.a).status_code == 200


# --- content hash --------------------------------------------------------------------------------------
def test_content_hash_vectors(env):
    one = zip_bytes({"save.bin": b"\x42" * 256})
    r = env.upload(one, "save.zip").json()
    assert r["content_hash"] == "b3636b49ca5c3d807adee33e75d410ca"
    nested = zip_bytes({"top.bin": b"\x00\x01\x02", "inner/b.txt": b"beta", "inner/a.txt": b"alpha"}, dirs=("inner/",))
    r = env.upload(nested, "nested.zip").json()
    assert r["content_hash"] == "8cf6bb36a82a5ee4d7d15fc98599908d"
    r = env.upload(b"plain bytes", "plain.sav").json()
    assert r["content_hash"] == hashlib.md5(b"plain bytes").hexdigest()


def test_content_hash_function(tmp_path):
    st = LocalStorage(tmp_path)
    st.write("a.zip", zip_bytes({"save.bin": b"\x42" * 256}))
    assert service.content_hash(st, "a.zip") == "b3636b49ca5c3d807adee33e75d410ca"
    st.write("b.bin", b"x" * 3_000_000)
    assert service.content_hash(st, "b.bin") == hashlib.md5(b"x" * 3_000_000).hexdigest()
    st.write("bad.zip", b"PK\x03\x04 not really a zip")
    assert service.content_hash(st, "bad.zip") == hashlib.md5(b"PK\x03\x04 not really a zip").hexdigest()


# --- bad input -----------------------------------------------------------------------------------------
def test_missing_parts_and_params(env):
    r = env.client.post("/api/saves", params={"rom_id": env.rom.id}, headers=env.a)
    assert r.status_code == 422 and "saveFile" in str(r.json()["detail"])
    r = env.client.post("/api/saves", params={"rom_id": env.rom.id}, files={"other": ("x.sav", b"x")}, headers=env.a)
    assert r.status_code == 422
    r = env.client.post("/api/saves", files={"saveFile": ("x.sav", b"x")}, headers=env.a)
    assert r.status_code == 422 and "rom_id" in str(r.json()["detail"])
    r = env.client.post("/api/saves", params={"rom_id": "abc"}, files={"saveFile": ("x.sav", b"x")}, headers=env.a)
    assert r.status_code == 422


def test_params_as_form_fields(env):
    dev = env.device()
    r = env.client.post(
        "/api/saves",
        data={"rom_id": str(env.rom.id), "slot": "main", "emulator": "mgba", "device_id": dev},
        files={"saveFile": ("x.sav", b"x")},
        headers=env.a,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["slot"] == "main" and body["emulator"] == "mgba" and body["origin_device_id"] == dev


def test_empty_file(env):
    r = env.upload(b"")
    assert r.status_code == 400 and "empty" in r.json()["detail"].lower()
    assert count(env.ctx, Save) == 0 and env.files() == []


def test_unknown_rom(env):
    r = env.upload(rom_id=424242)
    assert r.status_code == 404 and r.json()["detail"] == "Rom with id '424242' not found"


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\evil.sav", "evil.sav"),
        ("a/b/c.sav", "c.sav"),
        ("we:ird|na*me?<>+.sav", "we-ird-name.sav"),
        ("  spaced.sav  ", "spaced.sav"),
    ],
)
def test_path_like_names_are_sanitised(env, name, stored):
    r = env.upload(b"x", name)
    assert r.status_code == 200, r.text
    assert r.json()["file_name"] == stored
    assert env.files() == [r.json()["full_path"]]
    assert r.json()["full_path"].startswith(f"users/{service.user_folder(env.alice.id)}/saves/")


@pytest.mark.parametrize("name", ["..", ".", "/", "***", "a" * 451, "a" * 300, "é" * 120])
def test_unusable_names_are_400(env, name):
    r = env.upload(b"x", name)
    assert r.status_code in (400, 422), r.text
    assert r.status_code == 400 or name == "/"
    assert count(env.ctx, Save) == 0 and env.files() == []


def test_long_names_that_fit_the_file_system(env):
    name = "a" * (service.MAX_NAME_BYTES - 4) + ".sav"
    r = env.upload(b"x", name, slot="main")
    assert r.status_code == 200, r.text
    r = env.upload(b"y", name, slot="main")
    assert r.status_code == 200, r.text


def test_bad_screenshot_name_rejects_before_storing(env):
    r = env.upload(b"x", "ok.sav", screenshot=("..", b"png"))
    assert r.status_code == 400
    assert count(env.ctx, Save) == 0 and env.files() == []


def test_path_like_emulator(env):
    r = env.upload(b"x", "e.sav", emulator="../../x")
    assert r.status_code == 200
    assert r.json()["file_path"].endswith("/x")
    r = env.upload(b"x", "e.sav", emulator="..")
    assert r.status_code == 400
    r = env.upload(b"x", "e.sav", emulator="e" * 256)
    assert r.status_code == 400
    assert count(env.ctx, Save) == 1


def test_several_save_parts_are_refused(env):
    r = env.client.post(
        "/api/saves",
        params={"rom_id": env.rom.id},
        files=[("saveFile", ("a.sav", b"a")), ("saveFile", ("b.sav", b"b"))],
        headers=env.a,
    )
    assert r.status_code == 400 and count(env.ctx, Save) == 0
    assert list(env.ctx.storages.assets.list(service.INCOMING)) == []


def test_credentials_answer_before_the_body_and_parameters(env):
    """The upload checks credentials inside its own worker-thread call (no hop of their own):
    a bad token, a missing scope or a too-large body still answer before a malformed body, a bad
    parameter or an unknown ROM, as when the check ran before the endpoint."""
    bad = {"Authorization": "Bearer rmm_not-a-token"}
    read_only = env.users.headers(env.alice, scopes=["assets.read"])
    no_devices = env.users.headers(env.alice, scopes=["assets.write"])
    broken = {"content-type": "multipart/form-data; boundary=x"}
    for headers, status in ((bad, 401), (read_only, 403)):
        assert env.upload(headers=headers).status_code == status
        assert env.upload(headers=headers, rom_id=99999).status_code == status
        assert env.upload(headers=headers, overwrite="maybe").status_code == status
        r = env.client.post("/api/saves", params={"rom_id": env.rom.id}, content=b"--y", headers={**headers, **broken})
        assert r.status_code == status
    assert env.upload(headers=no_devices, device_id="nope").status_code == 403
    r = env.client.post(
        "/api/saves",
        params={"rom_id": env.rom.id, "device_id": "nope"},
        content=b"--y",
        headers={**no_devices, **broken},
    )
    assert r.status_code == 403
    assert env.upload(overwrite="maybe").status_code == 422
    assert env.upload(rom_id=99999).status_code == 404
    env.ctx.settings.max_asset_upload_bytes = 10
    try:
        r = env.client.post("/api/saves", params={"rom_id": 99999}, content=b"-" * 70_000, headers={**env.a, **broken})
        assert r.status_code == 413
        assert env.client.post("/api/saves", content=b"-" * 70_000, headers={**bad, **broken}).status_code == 401
    finally:
        env.ctx.settings.max_asset_upload_bytes = 0
    assert env.files() == []
