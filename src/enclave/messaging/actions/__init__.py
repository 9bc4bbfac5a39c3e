"""Every messaging state change, split by concern (templates, sender domains,
broadcasts, transactional messages); each one authorizes, changes and audits in one transaction."""

from enclave.messaging.actions.broadcasts import (
    do_cancel_broadcast,
    do_create_broadcast,
    do_delete_broadcast,
    do_hold_account_broadcasts,
    do_pause_broadcast,
    do_queue_broadcast,
    do_resume_broadcast,
    do_schedule_broadcast,
    do_send_test_broadcast,
    local_wall,
    start_due_broadcasts,
)
from enclave.messaging.actions.messages import do_send_message
from enclave.messaging.actions.senders import (
    do_add_sender_domain,
    do_check_sender_domain,
    do_remove_sender_domain,
    do_rotate_dkim_key,
    do_set_postal_address,
    do_throttle_sender_domain,
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
    "do_hold_account_broadcasts",
    "do_pause_broadcast",
    "do_queue_broadcast",
    "do_remove_sender_domain",
    "do_resume_broadcast",
    "do_rotate_dkim_key",
    "do_schedule_broadcast",
    "do_send_message",
    "do_send_test_broadcast",
    "do_set_postal_address",
    "do_throttle_sender_domain",
    "local_wall",
    "start_due_broadcasts",
]
