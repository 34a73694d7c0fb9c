"""A throwaway Slurm cluster for the tests (Debian's slurm-wlm): slurmctld,
slurmd and munged of its own, all inside one temporary folder, on random free
ports, with fake GPUs made by mknod and listed in gres.conf. Clients find it
through SLURM_CONF (Cluster.env). Stopped by the daemons' pids, never by name.

Needs root (slurmd runs jobs as their users; mknod) and slurm-wlm + munge
(scripts/setup-deps --test). Cluster.unavailable() says why not, or None.

  with Cluster(tmp, cpus=2, gpus=2) as c:
      subprocess.run(['sbatch', ...], env=c.env)
"""
import os
import shutil
import signal
import socket
import subprocess
import time

DAEMONS = ('slurmctld', 'slurmd', 'munged')
CLIENTS = ('sbatch', 'squeue', 'scancel', 'scontrol', 'sinfo')


def _which(name):
    for d in ('/usr/sbin', '/usr/bin', '/sbin', '/bin'):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def unavailable():
    """Why no throwaway cluster can run here (None: it can)."""
    missing = [n for n in DAEMONS + CLIENTS if not _which(n)]
    if missing:
        return ('slurm-wlm/munge are not installed (missing ' + ', '.join(missing) +
                '); scripts/setup-deps --test installs them')
    if os.geteuid() != 0:
        return 'the throwaway Slurm cluster needs root (slurmd, mknod)'
    return None


def _free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(') ', 1)[1][0] not in 'ZX'
    except OSError:
        return False


class Cluster:
    """One node (node0) with `cpus` CPUs and `gpus` fake GPUs, partition debug."""

    def __init__(self, tmp, cpus=2, gpus=2, min_job_age=600, kill_wait=5, extra_conf=''):
        self.dir = os.path.join(tmp, 'slurm')
        self.cpus, self.gpus = cpus, gpus
        self.min_job_age, self.kill_wait = min_job_age, kill_wait
        self.extra_conf = extra_conf
        self.conf = os.path.join(self.dir, 'slurm.conf')
        self.jobcomp = os.path.join(self.dir, 'log', 'jobcomp.txt')
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.started = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _write_conf(self):
        d = self.dir
        ctl, node = _free_ports(2)
        gres = f' Gres=gpu:{self.gpus}' if self.gpus else ''
        # more CPUs than the machine has: slurmd trusts slurm.conf instead of draining the node
        overrides = 'SlurmdParameters=config_overrides\n' if self.cpus > (os.cpu_count() or 1) else ''
        with open(self.conf, 'w') as f:
            f.write(f"""ClusterName=throwaway
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.sock
SlurmctldPort={ctl}
SlurmdPort={node}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
ReturnToService=2
KillWait={self.kill_wait}
MinJobAge={self.min_job_age}
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
GresTypes=gpu
NodeName=node0 NodeAddr=127.0.0.1 NodeHostname=localhost CPUs={self.cpus} RealMemory=1000{gres} State=UNKNOWN
PartitionName=debug Nodes=node0 Default=YES MaxTime=INFINITE State=UP
{overrides}{self.extra_conf}""")
        with open(os.path.join(d, 'gres.conf'), 'w') as f:
            if self.gpus:
                f.write(f'NodeName=node0 Name=gpu File={d}/dev/nvidia[0-{self.gpus - 1}]\n')

    def start(self, timeout=60):
        d = self.dir
        for sub in ('state', 'spool/node0', 'log', 'dev'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        key = os.path.join(d, 'munge.key')
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        for i in range(self.gpus):
            os.mknod(os.path.join(d, 'dev', f'nvidia{i}'), 0o666 | 0o020000, os.makedev(195, i))
        self._write_conf()
        subprocess.run([_which('munged'), '--force', f'--key-file={key}', f'--socket={d}/munge.sock',
                        f'--pid-file={d}/munged.pid', f'--log-file={d}/log/munged.log',
                        f'--seed-file={d}/munge.seed'], check=True, env=self.env)
        self.started = True
        subprocess.run([_which('slurmctld'), '-i'], check=True, env=self.env)
        self._wait_pid('slurmctld')
        subprocess.run([_which('slurmd'), '-N', 'node0'], check=True, env=self.env)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = subprocess.run(['sinfo', '-h', '-o', '%T'], env=self.env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            if p.stdout.strip().startswith('idle'):
                return
            time.sleep(0.05)
        raise RuntimeError('the throwaway Slurm node did not become idle:\n' + self.logs())

    def _wait_pid(self, name, timeout=30):
        path = os.path.join(self.dir, f'{name}.pid')
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if os.path.exists(path) and open(path).read().strip():
                return
            time.sleep(0.02)

    def stop_controller(self):
        """Stops slurmctld alone (a controller restart); its state stays in the state folder."""
        pid = self.pid('slurmctld')
        if pid > 0 and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + 30
            while _pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
        try:
            os.unlink(os.path.join(self.dir, 'slurmctld.pid'))  # slurmctld may have removed it
        except FileNotFoundError:
            pass

    def start_controller(self, timeout=60):
        subprocess.run([_which('slurmctld'), '-i'], check=True, env=self.env)
        self._wait_pid('slurmctld')
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if subprocess.run(['squeue', '-h'], env=self.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError('slurmctld did not answer after its restart:\n' + self.logs())

    def forget_completed(self, job_id):
        """Removes a job's records from the jobcomp log (as if it had none), in place: slurmctld appends."""
        if not os.path.exists(self.jobcomp):
            return
        with open(self.jobcomp, 'r+') as f:
            keep = [line for line in f if not line.startswith(f'JobId={job_id} ')]
            f.seek(0)
            f.truncate()
            f.writelines(keep)

    def pid(self, name):
        try:
            with open(os.path.join(self.dir, f'{name}.pid')) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def stop(self):
        """Cancels every job, then stops the daemons by pid (TERM, then KILL)."""
        if not self.started:
            return
        subprocess.run(['scancel', '-u', 'root'], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        end = time.monotonic() + self.kill_wait + 10  # the jobs' processes go before slurmd does
        while time.monotonic() < end and any(st in ('RUNNING', 'COMPLETING', 'PENDING')
                                             for _, st, _ in self.jobs().values()):
            time.sleep(0.1)
        for name in DAEMONS:  # slurmd waits for its jobs to go, munged last
            pid = self.pid(name)
            if pid <= 0 or not _pid_alive(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + 15
            while _pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def run(self, *args, check=False):
        """A Slurm client command against this cluster: (status, stdout, stderr)."""
        p = subprocess.run(list(args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f'{args}: exit {p.returncode}: {p.stderr}')
        return p.returncode, p.stdout, p.stderr

    def jobs(self):
        """Every job Slurm still knows: {job id: (name, state, reason)}."""
        _, out, _ = self.run('squeue', '-h', '-t', 'all', '-o', '%i|%j|%T|%r')
        res = {}
        for line in out.splitlines():
            f = line.split('|')
            if len(f) == 4 and f[0].isdigit():
                res[int(f[0])] = (f[1], f[2], f[3])
        return res

    def job(self, job_id):
        """`scontrol show job` as a dict (empty when Slurm forgot it)."""
        rc, out, _ = self.run('scontrol', '-o', 'show', 'job', str(job_id))
        res = {}
        if rc == 0:
            for word in out.split():
                k, _, v = word.partition('=')
                res.setdefault(k, v)
        return res

    def completed(self):
        """The jobcomp records: one dict per finished job, in order."""
        res = []
        if os.path.exists(self.jobcomp):
            with open(self.jobcomp) as f:
                for line in f:
                    rec = {}
                    for word in line.split():
                        k, _, v = word.partition('=')
                        rec[k] = v
                    res.append(rec)
        return res

    def log_count(self, name, text):
        """How many lines of a daemon's log ('slurmd.log') contain text."""
        p = os.path.join(self.dir, 'log', name)
        if not os.path.exists(p):
            return 0
        with open(p, errors='replace') as f:
            return sum(1 for line in f if text in line)

    def logs(self):
        out = []
        for name in ('slurmctld.log', 'slurmd.log', 'munged.log'):
            p = os.path.join(self.dir, 'log', name)
            if os.path.exists(p):
                with open(p, errors='replace') as f:
                    out.append(f'---- {name} (last 40 lines) ----\n' + ''.join(f.readlines()[-40:]))
        return '\n'.join(out)
