"""Who gives way when the cores are short.

Ray starts every worker at niceness 15 (`worker_niceness`), so the viewer path (Delivery
replicas, Serve's HAProxy) and the bulk work (decoding, encoding, sealing whole segments,
certifying them) compete as equals. A held LL-HLS request waits for the part's arrival and must
then be answered within milliseconds; the bulk work has a part's duration of slack. The bulk
actors therefore lower their own priority one step further (raising niceness needs no
privilege), so that the scheduler runs the replica first when both are ready, and the bulk
work keeps every core the viewer path leaves idle.
"""

from __future__ import annotations

import os

# The lowest priority; CFS still gives it about 15/36 of a niceness-15 task's share.
# ORBITCAST_BULK_NICENESS=15 keeps the bulk actors at Ray's own value (to compare the two).
BULK_NICENESS = int(os.environ.get("ORBITCAST_BULK_NICENESS", "19"))


def give_way(target: int = BULK_NICENESS) -> int:
    """Raise the niceness of every thread of this process to `target` (never lower it).

    On Linux niceness belongs to a thread, and a new thread inherits its creator's: the threads
    that exist now (a Ray actor's pool runs its methods on threads made before `__init__`) are
    set one by one, and those made later (encoder threads) inherit the value. Returns the
    calling thread's niceness.
    """
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: niceness is the process's
        tids = [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
        except OSError:  # the thread ended meanwhile
            pass
    return os.getpriority(os.PRIO_PROCESS, 0)
