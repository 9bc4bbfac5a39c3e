"""The embedded job queue's transport: a message file appears whole or not at all."""

from __future__ import annotations

import queue

import pytest
from kombu import Connection

from enclave.core import queue_files


@pytest.fixture
def channel(tmp_path):
    folder = tmp_path / "messages"
    folder.mkdir()
    (tmp_path / "control").mkdir()
    connection = Connection(transport=queue_files.Transport, transport_options={
        "data_folder_in": str(folder), "data_folder_out": str(folder),
        "control_folder": str(tmp_path / "control"), "store_processed": False})
    channel = connection.default_channel
    channel.folder = folder
    yield channel
    connection.release()


class TestMessageFiles:
    def test_a_message_put_is_read_back_whole(self, channel):
        channel._put("celery", {"body": "x" * 10_000})
        assert channel._get("celery") == {"body": "x" * 10_000}

    def test_a_message_still_being_written_is_left_alone(self, channel):
        # What a reader sees mid-write: kombu's own transport would show "<name>.msg"
        # empty here (the worker stopped on it); this one writes "<name>.msg.part".
        (channel.folder / "1_abc.celery.msg.part").write_bytes(b'{"bo')
        with pytest.raises(queue.Empty):
            channel._get("celery")
        assert (channel.folder / "1_abc.celery.msg.part").exists()

    def test_nothing_but_whole_messages_is_left_in_the_folder(self, channel):
        for i in range(20):
            channel._put("celery", {"n": i})
        names = [p.name for p in channel.folder.iterdir()]
        assert len(names) == 20
        assert all(name.endswith(".celery.msg") for name in names)

    def test_the_alias_resolves_to_this_transport(self):
        from kombu.transport import resolve_transport

        queue_files.register()
        assert resolve_transport(queue_files.ALIAS) is queue_files.Transport
