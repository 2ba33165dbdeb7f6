"""Runs moto_server (the AWS emulator the tests use) with two speed fixes for large SQS backlogs.

moto 5.2.5 recomputes every queue attribute, including three full scans of the queue for the
ApproximateNumberOf* counts, each time SendMessage reads ContentBasedDeduplication and each time
ReceiveMessage reads MessageRetentionPeriod for a message. That makes seeding and draining
O(n^2): 2,000 messages took 185 s to send on this machine, 10,000 would take over an hour. And
every timestamp goes through datetime arithmetic.

DeleteMessage then scans the queue building a list of receipt handles per message.

The fixes change no answer moto gives:
- inside those two calls the three counts read 0: neither call looks at them (GetQueueAttributes
  and everything else still get the real counts);
- "now" as epoch seconds comes from time.time() instead of utcnow() - epoch, the same number;
- a message "had" a receipt handle when it is its current or an old one, without a new list.

Two fixes are for correctness. Queue.delete_message rebuilds the message list without a lock, so two
DeleteMessageBatch requests on the threaded server lose each other's deletions (each reports
success; the lost messages stay in flight and come back after the visibility timeout), and an
append during a rebuild is lost. The rebuild now holds the lock moto takes for appends. And a
FIFO group could be handed out out of order: after its messages timed out, or to two
concurrent receives (see _receive_message_in_group_order).

Usage: <venv>/bin/python tests/support/moto_server.py -H 127.0.0.1 -p PORT (moto_server's flags).
"""

import sys
import threading
import time

import moto.core.utils as utils

_unix_time = utils.unix_time


def unix_time(dt=None):
    return time.time() if dt is None else _unix_time(dt)


utils.unix_time = unix_time

import moto.sqs.models as sqs  # noqa: E402  (after the patch, so its own import sees it)

sqs.unix_time = unix_time

_skip_counts = threading.local()
_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)


def _count(real):
    def get(queue):
        return 0 if getattr(_skip_counts, "on", False) else real(queue)

    return property(get)


def _without_counts(call):
    def wrapper(*args, **kwargs):
        before = getattr(_skip_counts, "on", False)
        _skip_counts.on = True
        try:
            return call(*args, **kwargs)
        finally:
            _skip_counts.on = before

    return wrapper


for name in _COUNTS:
    setattr(sqs.Queue, name, _count(getattr(sqs.Queue, name).fget))
# Each reads one attribute that is not a count (ContentBasedDeduplication, MessageRetentionPeriod).
sqs.SQSBackend.send_message = _without_counts(sqs.SQSBackend.send_message)
sqs.SQSBackend.is_message_valid_based_on_retention_period = _without_counts(
    sqs.SQSBackend.is_message_valid_based_on_retention_period
)


def _had_receipt_handle(message, receipt_handle):
    return receipt_handle == message.receipt_handle or receipt_handle in message._old_receipt_handles


sqs.Message.had_receipt_handle = _had_receipt_handle

_delete_message = sqs.Queue.delete_message


def _delete_message_locked(self, receipt_handle):
    with self._messages_lock:
        return _delete_message(self, receipt_handle)


sqs.Queue.delete_message = _delete_message_locked

_receive_message = sqs.SQSBackend.receive_message


def _receive_message_in_group_order(
    self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names=None
):
    # moto hands out a FIFO group's messages out of order in two ways, both seen by the fault
    # suite (SQS never does either):
    # - a receive releases a timed-out message only when it reaches it, and skips it while its
    #   group still has another pending message: when a consumer dies holding several messages
    #   of a group, they come back visible together, the first is skipped and a later one
    #   delivered first;
    # - a long poll takes its copy of the pending groups once, before waiting: a message that
    #   another receive takes during the wait does not block its group, and its successor goes
    #   out while it is in flight.
    # FIFO receives here release every timed-out message first, then look with a fresh copy, one
    # receive at a time, and long-poll by looking again every 200 ms.
    queue = self.get_queue(queue_name)
    if not queue.fifo_queue:
        return _receive_message(
            self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
        )
    deadline = time.time() + (wait_seconds_timeout or 0)
    while True:
        with queue._messages_lock:
            for message in list(queue.pending_messages):
                if message.visible:
                    queue.pending_messages.discard(message)
            result = _receive_message(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
        if result or time.time() >= deadline:
            return result
        time.sleep(min(0.2, max(0.0, deadline - time.time())))


sqs.SQSBackend.receive_message = _receive_message_in_group_order

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
