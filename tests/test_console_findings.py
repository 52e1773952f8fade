"""The lab's reading of a box's console: a task the kernel reports blocked on I/O through a NAS
outage is counted, anything else the kernel complains about is bad (aoelab.resilience)."""

from aoelab import resilience

# Taken from a box's console in CI: the NAS away for 200 s, the kernel's hung-task timer at 120 s.
WAITED_FOR_THE_NAS = """\
[  206.428154] aoelab-resilien (712): drop_caches: 3
[  363.445998] INFO: task btrfs-transacti:461 blocked for more than 120 seconds.
[  363.518206]       Not tainted 6.12.118+deb13-amd64 #1 Debian 6.12.118-1
[  363.518699] task:btrfs-transacti state:D stack:0     pid:461   tgid:461   ppid:2
[  363.519633] Call Trace:
[  363.519942]  <TASK>
[  363.520300]  __schedule+0x4ea/0xbe0
[  363.522494]  io_schedule+0x46/0x70
[  363.522635]  folio_wait_writeback+0x2b/0x80
[  363.525726]  </TASK>
[  363.525850] INFO: task jbd2/etherd!e11:694 blocked for more than 120 seconds.
[  363.526405] Call Trace:
[  363.526460]  <TASK>
[  363.526722]  io_schedule+0x46/0x70
[  363.527121]  jbd2_journal_commit_transaction+0x1311/0x1c80 [jbd2]
[  363.528041]  </TASK>
[  380.000000] aoe: e11.0: setting 1024 byte data frames
"""

# A hung task that waits on a lock, not on the disk: a real hang, whatever the NAS does.
STUCK_ON_A_LOCK = """\
[  500.000000] INFO: task kworker/0:1:42 blocked for more than 120 seconds.
[  500.000100] Call Trace:
[  500.000200]  <TASK>
[  500.000300]  __schedule+0x4ea/0xbe0
[  500.000400]  schedule_preempt_disabled+0x15/0x30
[  500.000500]  __mutex_lock.constprop.0+0x3a1/0x6a0
[  500.000600]  </TASK>
"""


def test_tasks_blocked_on_io_during_an_outage_are_counted_not_bad():
    findings = resilience.console_findings(WAITED_FOR_THE_NAS)
    assert findings.bad == []
    assert findings.waited_for_io == ["btrfs-transacti:461", "jbd2/etherd!e11:694"]


def test_a_task_blocked_on_anything_but_io_is_bad():
    findings = resilience.console_findings(WAITED_FOR_THE_NAS + STUCK_ON_A_LOCK)
    assert findings.bad == [STUCK_ON_A_LOCK.splitlines()[0]]
    assert len(findings.waited_for_io) == 2


def test_a_report_cut_off_before_its_end_is_bad():
    cut = "\n".join(WAITED_FOR_THE_NAS.splitlines()[:6])  # the console ended mid-trace
    findings = resilience.console_findings(cut)
    assert findings.bad == [cut.splitlines()[1]]
    assert findings.waited_for_io == []


def test_an_oops_and_an_io_error_outside_any_report_are_bad():
    oops = ("[  12.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
            "[  12.1] Call Trace:\n"
            "[  13.0] blk_update_request: I/O error, dev etherd/e11.0, sector 2048\n")
    findings = resilience.console_findings(WAITED_FOR_THE_NAS + oops)
    assert findings.bad == oops.splitlines()


def test_a_bad_line_inside_a_report_is_still_bad():
    lines = WAITED_FOR_THE_NAS.splitlines()
    error = "[  363.5200] Buffer I/O error on dev etherd/e11.0p3, logical block 9"
    findings = resilience.console_findings("\n".join(lines[:7] + [error] + lines[7:]))
    assert findings.bad == [error]
    assert len(findings.waited_for_io) == 2
