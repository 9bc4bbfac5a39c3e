"""kombu's filesystem transport with messages that appear whole (the embedded job queue).

kombu's own ``_put`` creates the message file empty, then locks it and writes — but the
lock is advisory and its ``_get`` never takes it: a worker listing the folder in between
moves the empty file away, fails to decode it and stops ("Unrecoverable error:
JSONDecodeError"), and the message written afterwards into the moved file is lost. Here
a message is written under a name no reader picks up (``<name>.msg.part``: the reader
takes only names ending exactly in ``.<queue>.msg``) and renamed into place, which is
atomic: a reader sees the whole message or nothing.

Registered as the transport alias ``enclave-fs`` (``settings.CELERY_BROKER_URL``) when
``core.jobs`` is imported — by every process that publishes or consumes.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "enclave-fs"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: written aside, then renamed into place."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = Path(self.data_folder_out) / name
        partial = final.with_name(f"{name}.part")
        try:
            partial.write_bytes(str_to_bytes(dumps(payload)))
            partial.replace(final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
