"""The lab's reading of a box's console: a task the kernel reports blocked while the NAS was away
is the wait asked for and is counted; anything else the kernel complains about is bad
(aoelab.resilience.console_findings)."""

from aoelab import resilience

# From a box's console in a run of test_resilience: the NAS away from the box's last record
# before, at 195.555 s, to its first after, at 396.214 s; the hung-task timer at 120 s.
OUTAGE = (195.555, 396.214)
WAITED_FOR_THE_NAS = """\
[  206.428154] aoelab-resilien (712): drop_caches: 3
[  363.787814] INFO: task btrfs-transacti:461 blocked for more than 120 seconds.
[  363.788391]       Not tainted 6.12.118+deb13-amd64 #1 Debian 6.12.118-1
[  363.788956] task:btrfs-transacti state:D stack:0     pid:461   tgid:461   ppid:2
[  363.789981] Call Trace:
[  363.790364]  <TASK>
[  363.791329]  __schedule+0x4ea/0xbe0
[  363.792747]  btrfs_commit_transaction+0x988/0xc40 [btrfs]
[  363.795931]  </TASK>
[  363.796126] INFO: task jbd2/etherd!e11:692 blocked for more than 120 seconds.
[  363.797276] Call Trace:
[  363.797380]  <TASK>
[  363.797900]  io_schedule+0x46/0x70
[  363.798641]  jbd2_journal_commit_transaction+0x1311/0x1c80 [jbd2]
[  363.802618]  </TASK>
[  397.000000] aoe: e11.0: setting 1024 byte data frames
"""

# The same kind of report long after the NAS came back: a task stuck for another reason.
STUCK_LATER = """\
[  600.000000] INFO: task kworker/0:1:42 blocked for more than 120 seconds.
[  600.000100] Call Trace:
[  600.000200]  <TASK>
[  600.000500]  __mutex_lock.constprop.0+0x3a1/0x6a0
[  600.000600]  </TASK>
"""


def test_tasks_blocked_while_the_nas_was_away_are_counted_not_bad():
    findings = resilience.console_findings(WAITED_FOR_THE_NAS, [OUTAGE])
    assert findings.bad == []
    assert findings.waited_for_the_nas == ["btrfs-transacti:461", "jbd2/etherd!e11:692"]


def test_without_an_outage_every_hung_task_is_bad():
    findings = resilience.console_findings(WAITED_FOR_THE_NAS)
    headers = [line for line in WAITED_FOR_THE_NAS.splitlines() if "INFO: task" in line]
    assert findings.bad == headers
    assert findings.waited_for_the_nas == []


def test_a_task_blocked_after_the_nas_came_back_is_bad():
    findings = resilience.console_findings(WAITED_FOR_THE_NAS + STUCK_LATER, [OUTAGE])
    assert findings.bad == [STUCK_LATER.splitlines()[0]]
    assert len(findings.waited_for_the_nas) == 2


def test_a_report_cut_off_before_its_end_is_bad():
    cut = "\n".join(WAITED_FOR_THE_NAS.splitlines()[:6])  # the console ended mid-trace
    findings = resilience.console_findings(cut, [OUTAGE])
    assert findings.bad == [cut.splitlines()[1]]
    assert findings.waited_for_the_nas == []


def test_a_bad_line_inside_a_report_is_still_bad():
    lines = WAITED_FOR_THE_NAS.splitlines()
    error = "[  363.7900] Buffer I/O error on dev etherd/e11.0p3, logical block 9"
    findings = resilience.console_findings("\n".join(lines[:6] + [error] + lines[6:]), [OUTAGE])
    assert findings.bad == [error]
    assert len(findings.waited_for_the_nas) == 2


def test_an_oops_and_an_io_error_outside_any_report_are_bad():
    oops = (
        "[  12.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
        "[  12.1] Call Trace:\n"
        "[  13.0] blk_update_request: I/O error, dev etherd/e11.0, sector 2048\n"
    )
    findings = resilience.console_findings(WAITED_FOR_THE_NAS + oops, [OUTAGE])
    assert findings.bad == oops.splitlines()
