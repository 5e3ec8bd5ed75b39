"""Celery baseline of the job-system benchmark: a Celery app with one no-op task, and a CLI.

The Rust benchmark compares its own publish and drain rates with Celery's on the same RabbitMQ
broker. It starts a worker of this app with
``python -m celery -A celery_baseline worker --queues <queue> ...`` (cwd = this folder) and
publishes with ``python celery_baseline.py publish --count N [--wait]`` (several at once for
concurrent publishers: with ``--wait`` each connects, says it is ready, and starts on a line
of standard input, so the caller can time them all from the first start to the last end).

Environment:
    CELERY_BROKER_URL  amqp URL, e.g. ``amqp://guest:guest@127.0.0.1:5672/%2f``
    CELERY_MODE        ``defaults``: Celery as shipped (no publisher confirms, ack before
                       running the task); ``safe``: the Rust system's guarantees (publisher
                       confirms, ack after the task, requeue if the worker dies)
    CELERY_QUEUE       the queue: a durable quorum queue (Celery >= 5.5,
                       ``task_default_queue_type='quorum'``) bound to a durable direct
                       exchange of the same name, as the Rust system's work queues are quorum
    CELERY_PREFETCH_MULTIPLIER
                       the worker's ``worker_prefetch_multiplier`` (default 4, Celery's); its
                       prefetch is this times the concurrency (per consumer: on a quorum
                       queue Celery turns global QoS off)

Messages are persistent in both modes (Celery's ``task_default_delivery_mode`` is 2).
"""

import argparse
import json
import os
import sys
import time

from celery import Celery

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
MODE = os.environ.get("CELERY_MODE", "defaults")
QUEUE = os.environ.get("CELERY_QUEUE", "celery_bench")
MODES = ("defaults", "safe")
if MODE not in MODES:
    sys.exit(f"celery_baseline: CELERY_MODE must be one of {MODES}, not {MODE!r}")

app = Celery("celery_baseline", broker=BROKER_URL)
app.conf.update(
    # The queue (and its direct exchange and routing key) Celery makes for the default queue.
    task_default_queue=QUEUE,
    task_default_queue_type="quorum",
    worker_prefetch_multiplier=int(os.environ.get("CELERY_PREFETCH_MULTIPLIER", "4")),
    task_ignore_result=True,
    result_backend=None,
    broker_connection_retry_on_startup=True,  # today's behaviour, minus the warning
)
if MODE == "safe":
    app.conf.update(
        # py-amqp puts every channel in confirm mode and waits for each publish's basic.ack.
        broker_transport_options={"confirm_publish": True},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
    )


# An explicit name, so the CLI (module __main__) and the worker agree on it.
@app.task(name="celery_baseline.noop", ignore_result=True)
def noop():
    return None


def publish(count, wait):
    """Publishes `count` tasks as a Celery user would: one ``delay()`` call per task.

    With `wait`, prints ``{"ready": true}`` once connected and waits for a line on stdin.
    Start and end are wall-clock times (``time.time()``), comparable across processes.
    """
    # Connect and declare the queue first, so the timing is of publishing alone. The pool hands
    # this same producer (and connection) to the delay() calls below.
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=3)
        producer.maybe_declare(app.amqp.queues[QUEUE])
    if wait:
        print(json.dumps({"ready": True}), flush=True)
        sys.stdin.readline()
    start = time.time()
    for _ in range(count):
        noop.delay()
    end = time.time()
    app.close()
    seconds = end - start
    return {
        "mode": MODE,
        "count": count,
        "start": start,
        "end": end,
        "seconds": seconds,
        "per_second": count / seconds,
    }


def queue_depth():
    """Messages ready in the queue, from a passive declare (which fails if it is missing)."""
    with app.connection_for_write() as connection:
        _, messages, consumers = connection.default_channel.queue_declare(QUEUE, passive=True)
    return messages, consumers


def wait_empty(timeout, interval):
    """Polls the queue until no message is left in it; returns the seconds that took."""
    start = time.perf_counter()
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        while True:
            _, messages, _ = channel.queue_declare(QUEUE, passive=True)
            seconds = time.perf_counter() - start
            if messages == 0:
                return {"queue": QUEUE, "seconds": seconds}
            if seconds > timeout:
                sys.exit(f"celery_baseline: {messages} messages still in {QUEUE} after {timeout}s")
            time.sleep(interval)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    publish_parser = commands.add_parser("publish", help="publish N noop tasks, print the rate")
    publish_parser.add_argument("--count", type=int, required=True)
    publish_parser.add_argument(
        "--wait", action="store_true", help='print {"ready": true}, start on a stdin line'
    )
    commands.add_parser("depth", help="print the messages ready in the queue")
    wait_parser = commands.add_parser("wait-empty", help="wait until the queue is empty")
    wait_parser.add_argument("--timeout", type=float, default=600.0)
    wait_parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()

    if args.command == "publish":
        if args.count <= 0:
            parser.error("--count must be positive")
        result = publish(args.count, args.wait)
    elif args.command == "depth":
        messages, consumers = queue_depth()
        result = {"queue": QUEUE, "messages": messages, "consumers": consumers}
    else:
        result = wait_empty(args.timeout, args.interval)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
