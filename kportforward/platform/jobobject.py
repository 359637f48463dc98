"""A Windows Job Object with kill-on-close: the kernel ends every process in it when we die.

One job per manager, created on the first registration; its handle is never inherited and never
closed while we run. When the manager exits for any reason (crash, TerminateProcess, logoff) the
kernel closes the handle and, because of ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``, terminates every
process assigned to it, and every process those started after the assignment.

Limits: a process is assigned after it starts (Python cannot create it suspended), so a child it
spawns in the first instant escapes the job (the watchdog still covers the child we registered).
Since Windows 8 jobs nest, so this works when kportforward itself runs inside a job (a CI runner,
Windows Terminal); before that, an assignment fails and the watchdog is the only guard.

ctypes only, no new dependency. The kernel32 calls go through an object that tests replace, so this
module is exercised on any OS (``tests/unit/test_platform_jobobject.py``).
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9
PROCESS_SET_QUOTA = 0x0100
PROCESS_TERMINATE = 0x0001


class IO_COUNTERS(ctypes.Structure):
    """Win32 ``IO_COUNTERS``."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "ReadOperationCount",
            "WriteOperationCount",
            "OtherOperationCount",
            "ReadTransferCount",
            "WriteTransferCount",
            "OtherTransferCount",
        )
    ]


class JOBOBJECT_BASIC_LIMIT_INFORMATION(ctypes.Structure):
    """Win32 ``JOBOBJECT_BASIC_LIMIT_INFORMATION``."""

    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    ]


class JOBOBJECT_EXTENDED_LIMIT_INFORMATION(ctypes.Structure):
    """Win32 ``JOBOBJECT_EXTENDED_LIMIT_INFORMATION``."""

    _fields_ = [
        ("BasicLimitInformation", JOBOBJECT_BASIC_LIMIT_INFORMATION),
        ("IoInfo", IO_COUNTERS),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


class JobObjectError(OSError):
    """A kernel32 call failed; the message names the call and the Windows error code."""


def real_kernel32() -> Any:
    """kernel32 via ctypes (Windows only), with handle-sized return and argument types (the
    default ``int`` would truncate a 64-bit HANDLE)."""
    if sys.platform != "win32":
        raise JobObjectError("Job Objects exist only on Windows")
    k = ctypes.WinDLL("kernel32", use_last_error=True)
    handle, dword, boolean = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
    k.CreateJobObjectW.restype = handle
    k.CreateJobObjectW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p]
    k.SetInformationJobObject.restype = boolean
    k.SetInformationJobObject.argtypes = [handle, ctypes.c_int, ctypes.c_void_p, dword]
    k.OpenProcess.restype = handle
    k.OpenProcess.argtypes = [dword, boolean, dword]
    k.AssignProcessToJobObject.restype = boolean
    k.AssignProcessToJobObject.argtypes = [handle, handle]
    k.CloseHandle.restype = boolean
    k.CloseHandle.argtypes = [handle]
    return k


def _last_error() -> int:
    if sys.platform == "win32":
        return ctypes.get_last_error()
    return 0


class KillOnCloseJob:
    """One kill-on-close job; :meth:`assign` puts a running process (by pid) into it."""

    def __init__(self, kernel32: Any = None, last_error: Any = None) -> None:
        self._k = kernel32 if kernel32 is not None else real_kernel32()
        self._last_error = last_error or _last_error
        handle = self._k.CreateJobObjectW(None, None)
        if not handle:
            raise JobObjectError(f"CreateJobObjectW failed (error {self._last_error()})")
        info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        ok = self._k.SetInformationJobObject(
            handle,
            JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
            ctypes.byref(info),
            ctypes.sizeof(info),
        )
        if not ok:
            code = self._last_error()
            self._k.CloseHandle(handle)
            raise JobObjectError(f"SetInformationJobObject failed (error {code})")
        self.handle = handle
        """Kept open for the life of the process: closing it would kill every child."""

    def assign(self, pid: int) -> None:
        """Put process ``pid`` in the job (raises :class:`JobObjectError` with the reason)."""
        proc = self._k.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, False, pid)
        if not proc:
            raise JobObjectError(f"OpenProcess({pid}) failed (error {self._last_error()})")
        try:
            if not self._k.AssignProcessToJobObject(self.handle, proc):
                raise JobObjectError(
                    f"AssignProcessToJobObject({pid}) failed (error {self._last_error()})"
                )
        finally:
            self._k.CloseHandle(proc)
