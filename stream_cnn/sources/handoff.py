"""A bounded first-in-first-out hand-off between one producer thread and one consumer thread that wakes a
waiting side in batches.

``queue.Queue`` wakes the other side on every item. In the pipeline one side is nearly always waiting (the
decoder for the model, or the model for the decoder; the model for the encoder), so every frame paid a sleep and
a wake-up on both threads: lock churn that, on a 2-core machine shared with the decoder and encoder, is paid in
frames per second. Here a producer blocked on a full hand-off is woken only once it has drained to
``resume_below`` items, and a consumer blocked on an empty one only once ``wake_at`` items are ready (or the
producer has finished), so one wake-up moves several frames. Order and completeness are unchanged; only how
often the threads sleep and wake.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque


class BatchedHandoff:
    def __init__(self, capacity: int, wake_at: int = 1, resume_below: int | None = None):
        if capacity < 1:
            raise ValueError("hand-off capacity must be >= 1")
        self.capacity = int(capacity)
        self.wake_at = max(1, min(int(wake_at), self.capacity))
        self.resume_below = (self.capacity // 2 if resume_below is None
                             else max(0, min(int(resume_below), self.capacity - 1)))
        self._items: deque = deque()
        self._condition = threading.Condition(threading.Lock())
        self._producer_waiting = False
        self._consumer_waiting = False
        self._finished = False

    def put(self, item, timeout: float | None = None) -> bool:
        """Append ``item``, waiting while the hand-off is full; False if ``timeout`` passed while full."""
        with self._condition:
            items = self._items
            if len(items) >= self.capacity:
                self._producer_waiting = True
                try:
                    if not self._condition.wait_for(lambda: len(items) <= self.resume_below, timeout):
                        return False
                finally:
                    self._producer_waiting = False
            items.append(item)
            if self._consumer_waiting and len(items) >= self.wake_at:
                self._condition.notify()
        return True

    def finish(self):
        """The producer will put nothing more: a consumer waiting for a batch takes what is there."""
        with self._condition:
            self._finished = True
            self._condition.notify_all()

    def get(self, timeout: float | None = None):
        """The oldest item, waiting for a batch when empty; raises queue.Empty if ``timeout`` passes with
        nothing there. A timeout with fewer than ``wake_at`` items still returns the oldest."""
        with self._condition:
            items = self._items
            if not items:
                self._consumer_waiting = True
                deadline = None if timeout is None else time.monotonic() + timeout
                try:
                    while len(items) < self.wake_at and not self._finished:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            break
                        self._condition.wait(remaining)
                finally:
                    self._consumer_waiting = False
                if not items:
                    raise queue.Empty
            item = items.popleft()
            if self._producer_waiting and len(items) <= self.resume_below:
                self._condition.notify()
            return item

    def empty(self) -> bool:
        with self._condition:
            return not self._items

    def __len__(self) -> int:
        with self._condition:
            return len(self._items)
