"""A private one-node SLURM cluster for the queue tests: munged, slurmctld and slurmd as root, no systemd.

Everything (munge key and socket, slurm.conf, spool and state dirs, logs) lives in one folder; the
daemons use their own ports, so a system SLURM, if any, is untouched. ``SLURM_CONF`` points the
client commands (sbatch, squeue, scancel) at it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SBIN = ("munged", "slurmctld", "slurmd")
BIN = ("sbatch", "squeue", "scancel", "sinfo")


def missing() -> str | None:
    """Why the cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return "SLURM daemons need root"
    absent = [b for b in SBIN + BIN if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]
    return f"not installed: {', '.join(absent)} (apt-get install slurm-wlm slurm-client munge)" if absent else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class SlurmCluster:
    def __init__(self, root: Path, cpus: int = 1):
        self.root = Path(root)
        self.cpus = cpus
        self.procs: list[subprocess.Popen] = []
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60) -> SlurmCluster:
        r = self.root
        for d in ("munge", "state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        sock = r / "munge" / "munge.sock"
        self._spawn([_exe("munged"), "-F", "--force", f"--key-file={key}", f"--socket={sock}",
                     f"--pid-file={r / 'munge' / 'munged.pid'}", f"--log-file={r / 'log' / 'munged.log'}",
                     f"--seed-file={r / 'munge' / 'munged.seed'}"])
        self._wait(lambda: sock.exists(), 10, "munged socket")
        host = socket.gethostname().split(".")[0]
        ctl, slurmd = _free_port(), _free_port()
        self.conf.write_text(f"""\
ClusterName=coatflowtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctl}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={r / 'log' / 'jobcomp.txt'}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MinJobAge=600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        self._spawn([_exe("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._spawn([_exe("slurmd"), "-D", "-f", str(self.conf), "-N", host])
        self._wait(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False).stdout, timeout, "an idle node")
        return self

    def _spawn(self, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{Path(cmd[0]).name}.out", "ab")  # noqa: SIM115 - closed with the process
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                           start_new_session=True))

    def _wait(self, ok, timeout: float, what: str) -> None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            if ok():
                return
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited ({p.returncode}); see {self.root / 'log'}")
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}; see {self.root / 'log'}")

    def run(self, *cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check, **kw)

    def queue(self) -> list[str]:
        """Job ids in squeue."""
        return self.run("squeue", "-h", "-o", "%i").stdout.split()

    def wait_empty(self, timeout: float = 300) -> None:
        self._wait(lambda: not self.queue(), timeout, "an empty queue")

    def completed_states(self) -> dict[str, str]:
        """{job id: final state} from jobcomp/filetxt (sacct would need slurmdbd)."""
        path = self.root / "log" / "jobcomp.txt"
        states = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            states[f.get("JobId")] = f.get("JobState")
        return states

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
