"""mitremap.files: atomic writes keep the previous good file; the one folder walker."""

from __future__ import annotations

import pytest

from mitremap.errors import OutputError
from mitremap.files import atomic_writer, check_writable_folder, visible_files, write_text


def test_write_text_replaces_the_file_whole(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left behind


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "good")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half")
        raise RuntimeError("disk gone")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_writing_onto_a_folder_is_a_user_error(tmp_path):
    with pytest.raises(OutputError, match="folder"):
        write_text(tmp_path, "x")


def test_check_writable_folder_refuses_a_file(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(OutputError):
        check_writable_folder(a_file)


def test_visible_files_walks_in_name_order_without_hidden_entries(tmp_path):
    for name in ("b.txt", "a.txt", ".hidden", "sub/z.md", "sub/.x", ".git/config", "a/c.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in visible_files(tmp_path)]
    assert found == ["a.txt", "b.txt", "a/c.txt", "sub/z.md"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_honours_the_umask_and_a_replaced_one_keeps_its_mode(tmp_path, umask):
    import os
    import stat

    old = os.umask(umask)
    try:
        target = tmp_path / f"out-{umask:o}.txt"
        write_text(target, "x")
        assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
        target.chmod(0o640)
        write_text(target, "y")
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    finally:
        os.umask(old)
