"""The Windows kill-on-close Job Object, with kernel32 injected (runs on any OS).

What is checked is what Windows would see: the limit flag and the structure size passed to
SetInformationJobObject, the access rights asked of OpenProcess, every handle closed except the
job's, and a failure anywhere turned into one error naming the call and the Windows error code.
The guard puts every registered child in the job when the platform is Windows.
"""

from __future__ import annotations

import ctypes
import struct
import sys

import pytest

from kportforward.platform import for_name
from kportforward.platform.guard import OrphanGuard
from kportforward.platform.jobobject import (
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JobObjectError,
    KillOnCloseJob,
    real_kernel32,
)


class FakeKernel32:
    """Records kernel32 calls; ``fail`` names the call that returns 0 (failure)."""

    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.calls: list[tuple] = []
        self.open_handles: set[int] = set()
        self.limit_flags: int | None = None
        self.info_size: int | None = None
        self._next = 100

    def _handle(self) -> int:
        self._next += 1
        self.open_handles.add(self._next)
        return self._next

    def CreateJobObjectW(self, attrs, name):
        self.calls.append(("CreateJobObjectW", attrs, name))
        return 0 if self.fail == "CreateJobObjectW" else self._handle()

    def SetInformationJobObject(self, job, cls, info_ref, size):
        self.calls.append(("SetInformationJobObject", job, cls, size))
        info = ctypes.cast(info_ref, ctypes.POINTER(JOBOBJECT_EXTENDED_LIMIT_INFORMATION)).contents
        self.limit_flags = info.BasicLimitInformation.LimitFlags
        self.info_size = size
        return 0 if self.fail == "SetInformationJobObject" else 1

    def OpenProcess(self, access, inherit, pid):
        self.calls.append(("OpenProcess", access, inherit, pid))
        return 0 if self.fail == "OpenProcess" else self._handle()

    def AssignProcessToJobObject(self, job, proc):
        self.calls.append(("AssignProcessToJobObject", job, proc))
        return 0 if self.fail == "AssignProcessToJobObject" else 1

    def CloseHandle(self, handle):
        self.calls.append(("CloseHandle", handle))
        self.open_handles.discard(handle)
        return 1


def test_the_job_kills_on_close_and_keeps_only_its_own_handle():
    k = FakeKernel32()
    job = KillOnCloseJob(k, last_error=lambda: 0)
    job.assign(4242)
    job.assign(4343)
    assert k.limit_flags == JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE == 0x2000
    assert k.calls[1][2] == 9  # JobObjectExtendedLimitInformation
    # The 64-bit layout Windows expects: 144 bytes (on a 64-bit Python).
    if struct.calcsize("P") == 8:
        assert k.info_size == ctypes.sizeof(JOBOBJECT_EXTENDED_LIMIT_INFORMATION) == 144
    opens = [c for c in k.calls if c[0] == "OpenProcess"]
    assert opens == [
        ("OpenProcess", 0x0101, False, 4242),  # PROCESS_SET_QUOTA | PROCESS_TERMINATE
        ("OpenProcess", 0x0101, False, 4343),
    ]
    assert [c[1] for c in k.calls if c[0] == "AssignProcessToJobObject"] == [job.handle] * 2
    assert k.open_handles == {job.handle}, "process handles closed, the job's kept open"


@pytest.mark.parametrize(
    ("fail", "when", "message"),
    [
        ("CreateJobObjectW", "create", "CreateJobObjectW failed (error 5)"),
        ("SetInformationJobObject", "create", "SetInformationJobObject failed (error 5)"),
        ("OpenProcess", "assign", "OpenProcess(4242) failed (error 5)"),
        ("AssignProcessToJobObject", "assign", "AssignProcessToJobObject(4242) failed (error 5)"),
    ],
)
def test_failures_name_the_call_and_leak_no_handle(fail, when, message):
    k = FakeKernel32(fail)
    with pytest.raises(JobObjectError, match=message.replace("(", r"\(").replace(")", r"\)")):
        job = KillOnCloseJob(k, last_error=lambda: 5)
        job.assign(4242)
    leaked = k.open_handles - ({job.handle} if when == "assign" else set())
    assert leaked == set()


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows refusal")
def test_the_real_kernel32_is_refused_off_windows():
    with pytest.raises(JobObjectError, match="only on Windows"):
        real_kernel32()


class FakeJob:
    def __init__(self, fail: bool = False) -> None:
        self.assigned: list[int] = []
        self.fail = fail

    def assign(self, pid: int) -> None:
        if self.fail:
            raise JobObjectError(f"AssignProcessToJobObject({pid}) failed (error 5)")
        self.assigned.append(pid)


def test_the_guard_puts_every_child_in_the_job_on_windows_only():
    job = FakeJob()
    win = OrphanGuard(
        for_name("win32"), env={"KPORTFORWARD_NO_WATCHDOG": "1"},
        job_factory=lambda: job, start_time=lambda pid: 1.0,
    )  # fmt: skip
    assert win.register(11) and win.register(12)
    assert job.assigned == [11, 12]
    assert "kill-on-close job" in win.describe()

    made: list[FakeJob] = []
    linux = OrphanGuard(
        for_name("linux"), env={"KPORTFORWARD_NO_WATCHDOG": "1"},
        job_factory=lambda: made.append(FakeJob()) or made[-1], start_time=lambda pid: 1.0,
    )  # fmt: skip
    assert not linux.register(11)  # watchdog off, no job on Linux: nothing guards it
    assert made == []


def test_a_job_that_cannot_be_created_is_not_retried_per_child(caplog):
    tries: list[int] = []

    def broken() -> FakeJob:
        tries.append(1)
        raise JobObjectError("CreateJobObjectW failed (error 5)")

    guard = OrphanGuard(
        for_name("win32"), env={"KPORTFORWARD_NO_WATCHDOG": "1"},
        job_factory=broken, start_time=lambda pid: 1.0,
    )  # fmt: skip
    assert not guard.register(1) and not guard.register(2)
    assert tries == [1]
    assert "CreateJobObjectW failed" in caplog.text
