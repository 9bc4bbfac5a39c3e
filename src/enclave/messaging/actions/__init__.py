"""Every messaging state change, split by concern (templates, sender domains,
broadcasts); each one authorizes, changes and audits in one transaction."""

from enclave.messaging.actions.broadcasts import (
    do_cancel_broadcast,
    do_create_broadcast,
    do_delete_broadcast,
    do_queue_broadcast,
)
from enclave.messaging.actions.senders import (
    do_add_sender_domain,
    do_check_sender_domain,
    do_remove_sender_domain,
    do_rotate_dkim_key,
)
from enclave.messaging.actions.templates import (
    DUPLICATE_NAME,
    do_change_template,
    do_create_template,
    do_delete_template,
)

__all__ = [
    "DUPLICATE_NAME",
    "do_add_sender_domain",
    "do_cancel_broadcast",
    "do_change_template",
    "do_check_sender_domain",
    "do_create_broadcast",
    "do_create_template",
    "do_delete_broadcast",
    "do_delete_template",
    "do_queue_broadcast",
    "do_remove_sender_domain",
    "do_rotate_dkim_key",
]
