"""The sender identity's inbox: the delivery receipts that recipients (the edge among them)
send back through the gateway. It holds the sender's key (to open them), nothing else."""

from __future__ import annotations

from collections import Counter

import ray

from orbitcast.sealed_delivery import SealingPlan
from orbitcast.sealing.messages import DeliveryReceipt
from orbitcast.sealing.receiver import Receiver

from .packager import gateway_client

KEEP = 100_000  # confirmed message ids kept


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class SenderInbox:
    def __init__(self, plan: SealingPlan, gateway: "ray.actor.ActorHandle | None" = None) -> None:
        assert plan.sender_keys is not None and plan.edge_keys is None, "the inbox holds the sender key only"
        client = gateway_client(plan, plan.sender, plan.sender_secret, gateway)
        self.receiver = Receiver(plan.sender, plan.sender_keys, plan.sender_secret, client.public_key)
        self.delivered: dict[str, str] = {}  # message id -> recipient that confirmed it
        self.counters: Counter[str] = Counter()

    def handle_callbacks(self, bodies: list[bytes]) -> list[int]:
        return [self.handle_callback(body) for body in bodies]

    def handle_callback(self, body: bytes) -> int:
        """One gateway callback for the sender identity; the HTTP status to answer."""
        status, received = self.receiver.answer_callback(body)
        if received is not None and isinstance(received.message, DeliveryReceipt):
            for message_id in received.message.message_ids:
                self.delivered[message_id.hex()] = received.sender
            self.counters["receipts"] += 1
            while len(self.delivered) > KEEP:
                self.delivered.pop(next(iter(self.delivered)))
        return status

    def receipts(self) -> dict[str, str]:
        return dict(self.delivered)
