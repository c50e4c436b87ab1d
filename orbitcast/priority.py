"""Who gives way when the cores are short.

Ray starts every worker at niceness 15 (`worker_niceness`), so the viewer path (Delivery
replicas, Serve's HAProxy) and the bulk work (decoding, encoding, sealing whole segments,
certifying them) compete as equals. A held LL-HLS request waits for the part's arrival and must
then be answered within milliseconds; the bulk work has a part's duration of slack. The bulk
actors therefore lower their own priority one step further (raising niceness needs no
privilege), so that the scheduler runs the replica first when both are ready, and the bulk
work keeps every core the viewer path leaves idle.

The viewer path also takes the lead where the system lets it (`take_lead`): niceness 0, the
priority of the viewers' own programs, for a process that runs as root, has CAP_SYS_NICE, or
an RLIMIT_NICE that reaches it (systemd's `LimitNICE=`, `ulimit -e`). Elsewhere the call
changes nothing and the viewer path stays at Ray's 15, ahead of the bulk work only.
"""

from __future__ import annotations

import os

# The lowest priority; CFS still gives it about 15/36 of a niceness-15 task's share.
# ORBITCAST_BULK_NICENESS=15 keeps the bulk actors at Ray's own value (to compare the two).
BULK_NICENESS = int(os.environ.get("ORBITCAST_BULK_NICENESS", "19"))
# A normal program's priority: a niceness-0 task weighs 28 times a niceness-15 one.
# ORBITCAST_VIEWER_NICENESS=15 keeps the viewer path at Ray's own value (to compare).
VIEWER_NICENESS = int(os.environ.get("ORBITCAST_VIEWER_NICENESS", "0"))


def _threads() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: niceness is the process's
        return [0]


def give_way(target: int = BULK_NICENESS) -> int:
    """Raise the niceness of every thread of this process to `target` (never lower it).

    On Linux niceness belongs to a thread, and a new thread inherits its creator's: the threads
    that exist now (a Ray actor's pool runs its methods on threads made before `__init__`) are
    set one by one, and those made later (encoder threads) inherit the value. Returns the
    calling thread's niceness.
    """
    for tid in _threads():
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
        except OSError:  # the thread ended meanwhile
            pass
    return os.getpriority(os.PRIO_PROCESS, 0)


CAP_SYS_NICE = 23


def _has_sys_nice() -> bool:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    except (OSError, ValueError):
        pass
    return False


def lowest_allowed() -> int:
    """The lowest niceness this process may take: -20 with CAP_SYS_NICE (root has it, unless a
    container dropped it), else what RLIMIT_NICE allows (its soft limit r permits 20 - r)."""
    if _has_sys_nice():
        return -20
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    except (ImportError, AttributeError, OSError):
        return 20
    if soft == resource.RLIM_INFINITY:
        return -20
    return max(-20, 20 - soft)


def take_lead(target: int = VIEWER_NICENESS) -> int:
    """Lower the niceness of every thread of this process to `target` (never raise it), as far
    as the system allows (`lowest_allowed`).
    Threads made later inherit it. Returns the calling thread's niceness."""
    for tid in _threads():
        try:
            now = os.getpriority(os.PRIO_PROCESS, tid)
            if now <= target:
                continue
            try:
                os.setpriority(os.PRIO_PROCESS, tid, target)
            except PermissionError:  # not that far: as far as the limit goes
                allowed = max(target, lowest_allowed())
                if allowed < now:
                    os.setpriority(os.PRIO_PROCESS, tid, allowed)
        except PermissionError:
            break  # no further for any thread
        except OSError:  # the thread ended meanwhile
            pass
    return os.getpriority(os.PRIO_PROCESS, 0)
