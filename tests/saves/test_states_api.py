"""/api/states: the mirror of saves without slots, hashes or devices (notes §1b, §7 26)."""

from __future__ import annotations

from factories import count
from saves_helpers import hide_rom

from romshelf.saves import service
from romshelf.saves.models import Screenshot, State


def test_upload_list_get(env):
    r = env.upload_state(b"state!", "test_state.state", emulator="mgba", screenshot=("test_state.png", b"png"))
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["file_name"] == "test_state.state" and st["emulator"] == "mgba" and st["file_size_bytes"] == 6
    assert st["file_path"] == f"users/{service.user_folder(env.alice.id)}/states/gba/{env.rom.id}/mgba"
    assert st["screenshot"]["file_name"] == "test_state.png"
    assert "content_hash" not in st and "slot" not in st
    env.upload_state(b"bob", "bob.state", headers=env.b)
    assert [x["id"] for x in env.client.get("/api/states", headers=env.a).json()] == [st["id"]]
    assert env.client.get("/api/states", params={"rom_id": env.rom.id}, headers=env.a).json()[0]["id"] == st["id"]
    assert env.client.get("/api/states/identifiers", headers=env.a).json() == [st["id"]]
    assert env.client.get(f"/api/states/{st['id']}", headers=env.a).json()["id"] == st["id"]
    r = env.client.get(f"/api/states/{st['id']}", headers=env.b)
    assert r.status_code == 404 and r.json()["detail"] == f"State with ID {st['id']} not found"


def test_content_and_visibility(env):
    st = env.upload_state(b"state!", "test_state.state", screenshot=("test_state.png", b"png")).json()
    r = env.client.get(f"/api/states/{st['id']}/content", headers=env.a)
    assert r.status_code == 200 and r.content == b"state!"
    assert r.headers["content-type"] == "application/octet-stream" and "attachment" in r.headers["content-disposition"]
    assert env.client.get(f"/api/states/{st['id']}/content", headers=env.b).status_code == 404
    r = env.client.put(f"/api/states/{st['id']}/visibility", json={"is_public": True}, headers=env.a)
    assert r.status_code == 200 and r.json()["screenshot"]["is_public"] is True
    assert env.client.get(f"/api/states/{st['id']}/content", headers=env.b).status_code == 200
    assert (
        env.client.put(f"/api/states/{st['id']}/visibility", json={"is_public": False}, headers=env.b).status_code
        == 404
    )
    hide_rom(env.ctx, env.bob.id, env.rom.id)
    assert env.client.get(f"/api/states/{st['id']}/content", headers=env.b).status_code == 404
    assert env.client.get("/api/states/999/content", headers=env.a).status_code == 404
    env.ctx.storages.assets.delete(st["full_path"])
    r = env.client.get(f"/api/states/{st['id']}/content", headers=env.a)
    assert r.status_code == 404 and r.json()["detail"] == "State file not found on disk"


def test_image_state_is_inline(env):
    st = env.upload_state(b"\x89PNG", "snap.png").json()
    r = env.client.get(f"/api/states/{st['id']}/content", headers=env.a)
    assert r.headers["content-type"] == "image/png" and r.headers["content-disposition"].startswith("inline")


def test_hidden_rom_upload_is_404_without_a_write(env):
    hide_rom(env.ctx, env.alice.id, env.rom.id)
    r = env.upload_state()
    assert r.status_code == 404 and r.json()["detail"] == f"Rom with id '{env.rom.id}' not found"
    assert count(env.ctx, State) == 0 and env.files() == []


def test_reupload_moves_emulator_and_removes_old_file(env):
    first = env.upload_state(b"one", "s.state", emulator="emu1").json()
    second = env.upload_state(b"two!", "s.state", emulator="emu2").json()
    assert second["id"] == first["id"] and second["file_path"].endswith("/emu2") and second["file_size_bytes"] == 4
    assert env.files() == [second["full_path"]]


def test_put_and_delete(env):
    st = env.upload_state(b"old", "s.state", screenshot=("s.png", b"png")).json()
    r = env.client.put(f"/api/states/{st['id']}", files={"stateFile": ("s.state", b"newer")}, headers=env.a)
    assert r.status_code == 200 and r.json()["file_size_bytes"] == 5
    assert env.ctx.storages.assets.open(st["full_path"]).read() == b"newer"
    assert env.client.put(f"/api/states/{st['id']}", files={"stateFile": ("s", b"x")}, headers=env.b).status_code == 404
    r = env.client.post("/api/states/delete", json={"states": []}, headers=env.a)
    assert r.status_code == 400 and r.json()["detail"] == "No states were provided"
    assert env.client.post("/api/states/delete", json={"states": [st["id"]]}, headers=env.b).status_code == 404
    r = env.client.post("/api/states/delete", json={"states": [st["id"]]}, headers=env.a)
    assert r.status_code == 200 and r.json() == [st["id"]]
    assert count(env.ctx, State) == 0 and count(env.ctx, Screenshot) == 0 and env.files() == []


def test_bad_input(env):
    r = env.client.post("/api/states", params={"rom_id": env.rom.id}, headers=env.a)
    assert r.status_code == 422 and "stateFile" in str(r.json()["detail"])
    assert env.upload_state(b"").status_code == 400
    assert env.upload_state(b"x", "..").status_code == 400
    assert env.upload_state(rom_id=99999).status_code == 404
    r = env.upload_state(b"x", "../../evil.state")
    assert r.status_code == 200 and r.json()["file_name"] == "evil.state"
    assert (
        env.client.post("/api/states", params={"rom_id": env.rom.id}, files={"stateFile": ("a", b"x")}).status_code
        == 401
    )
    read_only = env.users.headers(env.alice, scopes=["assets.read"])
    assert env.upload_state(headers=read_only).status_code == 403


def test_service_without_http(env):
    """The service functions other tools build on (CLI export/import, benchmarks)."""
    res = service.store_state_stream(
        env.ctx, user_id=env.alice.id, rom_id=env.rom.id, filename="c.state", source=[b"a", b"b"]
    )
    assert res.state.file_size_bytes == 2
    saved = service.store_save_stream(
        env.ctx, user_id=env.alice.id, rom_id=env.rom.id, filename="c.sav", source=b"abc", slot="main", emulator="e"
    )
    assert saved.save.slot == "main" and saved.save.emulator == "e"
    with env.ctx.db.read() as s:
        assert [x.id for x in service.list_saves(s, env.alice.id, rom_id=env.rom.id)] == [saved.save.id]
        assert service.usage_bytes(s, env.alice.id) == 5
    assert service.delete_saves(env.ctx, env.alice.id, [saved.save.id]) == [saved.save.id]
    assert service.delete_states(env.ctx, env.alice.id, [res.state.id]) == [res.state.id]
    assert env.files() == []


def test_screenshot_content_and_delete(env):
    st = env.upload_state(b"s", "game.state", screenshot=("game.png", b"\x89PNG shot")).json()
    shot = st["screenshot"]
    r = env.client.get(shot["download_path"], headers=env.a)
    assert r.status_code == 200 and r.content == b"\x89PNG shot" and r.headers["content-type"] == "image/png"
    assert env.client.get(shot["download_path"], headers=env.b).status_code == 404
    env.client.put(f"/api/states/{st['id']}/visibility", json={"is_public": True}, headers=env.a)
    assert env.client.get(shot["download_path"], headers=env.b).status_code == 200
    assert env.client.delete(f"/api/screenshots/{shot['id']}", headers=env.b).status_code == 404
    assert env.client.delete(f"/api/screenshots/{shot['id']}", headers=env.a).status_code == 204
    assert env.files() == [st["full_path"]]
    assert env.client.get(f"/api/states/{st['id']}", headers=env.a).json()["screenshot"] is None
    r = env.client.get(shot["download_path"], headers=env.a)
    assert r.status_code == 404 and r.json()["detail"] == f"Screenshot with ID {shot['id']} not found"
