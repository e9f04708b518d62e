"""The launch scripts: --dry-run prints the exact commands; missing arguments fail clearly; the real
paths run against fake gcloud / srun / scontrol / python executables that log their arguments."""

import os
import pathlib
import shlex
import shutil
import socket
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TPU = REPO / "launch" / "tpu_vm.sh"
GPU = REPO / "launch" / "gpu.sh"
SLURM = REPO / "launch" / "slurm.sbatch"
SWEEP_ARRAY = REPO / "launch" / "sweep_array.sbatch"
CONFIG = "--config=experiments/configs/cifar10_resnet.py:resnet20"
OVERRIDES = ["--config.batch_size=256", "--config.optimizer.learning_rate=0.2"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the scripts need bash")


def _run(script, *args, env=None):
  full_env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
  full_env.update(env or {})
  return subprocess.run(
    ["bash", str(script), *args], capture_output=True, text=True, env=full_env, timeout=30
  )


def _commands(stdout):
  """The printed commands ('+ ...' lines), each split back into its arguments."""
  return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def _fake_bin(tmp_path, name, body):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  path = bin_dir / name
  path.write_text("#!/usr/bin/env bash\n" + body)
  path.chmod(0o755)
  return bin_dir


def _logger(tmp_path, name, exit_code=0):
  """A fake executable that appends its arguments to a log, one call per line, NUL-separated."""
  log = tmp_path / f"{name}.log"
  body = f'printf "%s\\0" "$@" >> {shlex.quote(str(log))}; echo >> {shlex.quote(str(log))}\n'
  body += f"exit {exit_code}\n"
  return _fake_bin(tmp_path, name, body), log


def _logged_calls(log):
  return [line.rstrip("\0").split("\0") for line in log.read_text().splitlines() if line]


# ---------------------------------------------------------------------------------- tpu_vm.sh


def test_tpu_dry_run_prints_create_copy_install_train_delete():
  result = _run(
    TPU,
    "--dry-run",
    "--name=my-tpu",
    "--zone=us-central2-b",
    "--accelerator-type=v4-32",
    "--version=tpu-ubuntu2204-base",
    "--project=proj",
    CONFIG,
    "--workdir=/mnt/bucket/run1",
    *OVERRIDES,
    "--delete",
  )
  assert result.returncode == 0, result.stderr
  commands = _commands(result.stdout)
  create, archive, scp, unpack, install, train, delete = commands
  assert create == [
    "gcloud",
    "compute",
    "tpus",
    "tpu-vm",
    "create",
    "my-tpu",
    "--zone=us-central2-b",
    "--project=proj",
    "--accelerator-type=v4-32",
    "--version=tpu-ubuntu2204-base",
  ]
  assert archive[:4] == ["git", "-C", str(REPO), "archive"] and archive[-1] == "HEAD"
  assert scp[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "scp", archive[-2].split("=")[1]]
  assert "--worker=all" in scp
  for ssh in (unpack, install, train):
    assert ssh[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-tpu"]
    assert "--worker=all" in ssh and "--zone=us-central2-b" in ssh
  assert '"jax[tpu]"' in install[-1] and '-e ".[train]"' in install[-1]
  remote = install[-1].removeprefix("--command=")
  assert "uv venv" in remote and "--python=3.12" in remote
  train_argv = shlex.split(train[-1].removeprefix("--command="))
  assert train_argv == [
    "cd",
    "research",
    "&&",
    ".venv/bin/python",
    "-m",
    "research.main",
    "--distributed",
    CONFIG,
    "--workdir=/mnt/bucket/run1",
    *OVERRIDES,
  ]
  assert delete == [
    "gcloud",
    "compute",
    "tpus",
    "tpu-vm",
    "delete",
    "my-tpu",
    "--zone=us-central2-b",
    "--project=proj",
    "--quiet",
  ]


def test_tpu_dry_run_git_url_clones_on_every_worker_and_skip_create():
  result = _run(
    TPU,
    "--dry-run",
    "--name=t",
    "--zone=z",
    "--repo=https://example.com/me/research.git",
    "--ref=dev",
    "--skip-create",
    CONFIG,
    "--workdir=/mnt/b/r",
  )
  assert result.returncode == 0, result.stderr
  commands = _commands(result.stdout)
  assert not any("create" in c for c in commands)
  clone = commands[0]
  assert "--worker=all" in clone
  assert clone[-1].startswith(
    "--command=git clone --depth=1 --branch=dev https://example.com/me/research.git research"
  )
  assert len(commands) == 3  # clone, install, train


def test_tpu_overrides_with_spaces_survive_remote_quoting():
  override = "--config.note=two words 'quoted'"
  result = _run(TPU, "--dry-run", "--name=t", "--zone=z", CONFIG, "--workdir=w", override)
  assert result.returncode == 0, result.stderr
  train = _commands(result.stdout)[-1]
  assert shlex.split(train[-1].removeprefix("--command="))[-1] == override


@pytest.mark.parametrize(
  "args, missing",
  [
    (["--zone=z", CONFIG, "--workdir=w"], "--name=NAME"),
    (["--name=t", CONFIG, "--workdir=w"], "--zone=ZONE"),
    (["--name=t", "--zone=z", "--workdir=w"], "--config="),
    (["--name=t", "--zone=z", CONFIG], "--workdir=DIR"),
  ],
)
def test_tpu_missing_required_argument_is_a_clear_error(args, missing):
  result = _run(TPU, "--dry-run", *args)
  assert result.returncode == 2
  assert "missing required argument" in result.stderr and missing in result.stderr
  assert result.stdout == ""


def test_tpu_real_run_calls_gcloud_and_deletes_even_when_training_fails(tmp_path):
  bin_dir, log = _logger(tmp_path, "gcloud", exit_code=0)
  # Fail only the training ssh call: the command that runs research.main.
  (bin_dir / "gcloud").write_text(
    (bin_dir / "gcloud")
    .read_text()
    .replace("exit 0", 'case "$*" in *research.main*) exit 3 ;; esac\nexit 0')
  )
  result = _run(
    TPU,
    "--name=t",
    "--zone=z",
    "--skip-create",
    "--repo=https://example.com/r.git",
    CONFIG,
    "--workdir=/mnt/b/r",
    "--delete",
    env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
  )
  assert result.returncode == 3
  calls = _logged_calls(log)
  assert [c[3] for c in calls] == ["ssh", "ssh", "ssh", "delete"]
  assert calls[-1][-1] == "--quiet"


def test_tpu_spot_dry_run_creates_a_spot_vm_mounts_the_bucket_and_describes_the_restart():
  result = _run(
    TPU,
    "--dry-run",
    "--name=t",
    "--zone=z",
    "--spot",
    "--retries=3",
    "--bucket=my-bucket",
    CONFIG,
    "--workdir=~/gcs/my-bucket/run",
  )
  assert result.returncode == 0, result.stderr
  commands = _commands(result.stdout)
  assert commands[0][:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"]
  assert "--spot" in commands[0]
  assert any("gcsfuse --implicit-dirs my-bucket ~/gcs/my-bucket" in " ".join(c) for c in commands)
  assert "up to 3 times" in result.stdout and "resumes" in result.stdout


def test_tpu_bucket_url_workdir_is_refused_with_the_mount_to_use():
  result = _run(TPU, "--dry-run", "--name=t", "--zone=z", CONFIG, "--workdir=gs://b/run")
  assert result.returncode == 2 and "--bucket=BUCKET" in result.stderr


def test_tpu_preempted_run_is_recreated_and_resumed(tmp_path):
  """Fake gcloud: the first training call exits 143 (SIGTERM, checkpoint saved) and the VM is
  then PREEMPTED; the script deletes it, creates it again, reinstalls and trains again."""
  log = tmp_path / "gcloud.log"
  state = tmp_path / "trained_once"
  body = (
    f'printf "%s\\0" "$@" >> {shlex.quote(str(log))}; echo >> {shlex.quote(str(log))}\n'
    'case "$*" in\n'
    f"  *research.main*) if [[ -e {shlex.quote(str(state))} ]]; then exit 0; fi\n"
    f"    touch {shlex.quote(str(state))}; exit 143 ;;\n"
    "  *describe*) echo PREEMPTED ;;\n"
    "esac\nexit 0\n"
  )
  bin_dir = _fake_bin(tmp_path, "gcloud", body)
  result = _run(
    TPU,
    "--name=t",
    "--zone=z",
    "--spot",
    "--retries=2",
    "--repo=https://example.com/r.git",
    CONFIG,
    "--workdir=/mnt/b/r",
    env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
  )
  assert result.returncode == 0, result.stderr
  assert "restart 1 of 2" in result.stderr
  verbs = [c[3] for c in _logged_calls(log)]
  assert verbs == [
    "create",
    "ssh",
    "ssh",
    "ssh",
    "describe",
    "delete",
    "create",
    "ssh",
    "ssh",
    "ssh",
  ]
  trains = [c for c in _logged_calls(log) if any("research.main" in a for a in c)]
  assert len(trains) == 2 and trains[0] == trains[1]  # the same command resumes


def test_tpu_unknown_argument_is_rejected():
  result = _run(TPU, "--dry-run", "--name=t", "--zone=z", CONFIG, "--workdir=w", "--zone", "x")
  assert result.returncode == 2 and "unknown argument '--zone'" in result.stderr


# ---------------------------------------------------------------------------------- gpu.sh


def test_gpu_dry_run_installs_cuda_jax_and_runs_main():
  result = _run(GPU, "--dry-run", "--gpus=0,1", CONFIG, "--workdir=/tmp/run", *OVERRIDES)
  assert result.returncode == 0, result.stderr
  commands = _commands(result.stdout)
  venv = str(REPO / ".venv")
  assert commands[0] == ["cd", str(REPO)]
  assert commands[1] == ["python3", "-m", "venv", venv]
  assert [venv + "/bin/pip", "install", "-e", ".[train]", "jax[cuda13]"] in commands
  assert ["export", "CUDA_VISIBLE_DEVICES=0,1"] in commands
  assert commands[-1] == [
    venv + "/bin/python",
    "-m",
    "research.main",
    CONFIG,
    "--workdir=/tmp/run",
    *OVERRIDES,
  ]


def test_gpu_cuda12_and_no_install():
  result = _run(GPU, "--dry-run", "--cuda=12", CONFIG, "--workdir=w")
  assert ["jax[cuda12]"] == [a for c in _commands(result.stdout) for a in c if "cuda" in a]
  result = _run(GPU, "--dry-run", "--no-install", CONFIG, "--workdir=w")
  assert not any("pip" in " ".join(c) for c in _commands(result.stdout))
  result = _run(GPU, "--dry-run", "--cuda=11", CONFIG, "--workdir=w")
  assert result.returncode == 2 and "--cuda=11" in result.stderr


@pytest.mark.parametrize("args", [[CONFIG], ["--workdir=w"], []])
def test_gpu_missing_required_argument_is_a_clear_error(args):
  result = _run(GPU, "--dry-run", *args)
  assert result.returncode == 2 and "missing required argument" in result.stderr


def test_gpu_real_run_uses_the_venv_python(tmp_path):
  venv = tmp_path / "venv"
  _, log = _logger(tmp_path, "python")
  (venv / "bin").mkdir(parents=True)
  shutil.move(tmp_path / "bin" / "python", venv / "bin" / "python")
  result = _run(GPU, "--no-install", f"--venv={venv}", CONFIG, "--workdir=w", *OVERRIDES)
  assert result.returncode == 0, result.stderr
  check, train = _logged_calls(log)
  assert check[0] == "-c"
  assert train == ["-m", "research.main", CONFIG, "--workdir=w", *OVERRIDES]


# ---------------------------------------------------------------------------------- slurm.sbatch


def test_slurm_header_requests_one_task_per_node():
  header = [line for line in SLURM.read_text().splitlines() if line.startswith("#SBATCH")]
  assert "#SBATCH --ntasks-per-node=1" in header
  assert any(line.startswith("#SBATCH --gpus-per-node=") for line in header)


def test_slurm_dry_run_outside_slurm_prints_srun_with_distributed_arguments():
  result = _run(SLURM, "--dry-run", CONFIG, "--workdir=/shared/run", *OVERRIDES)
  assert result.returncode == 0, result.stderr
  assert "example values" in result.stdout
  srun = next(c for c in _commands(result.stdout) if c[0] == "srun")
  assert srun[:4] == ["srun", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
  assert srun[4:8] == ["bash", "-c", 'exec "$@" --process_id="$SLURM_PROCID"', "bash"]
  assert srun[8:] == [
    str(REPO / ".venv/bin/python"),
    "-m",
    "research.main",
    CONFIG,
    "--workdir=/shared/run",
    "--coordinator_address=node001:21234",
    "--num_processes=2",
    *OVERRIDES,
  ]


def test_slurm_outside_slurm_without_dry_run_refuses():
  result = _run(SLURM, CONFIG, "--workdir=w")
  assert result.returncode == 2 and "not inside a Slurm allocation" in result.stderr


@pytest.mark.parametrize("args", [[CONFIG], ["--workdir=w"]])
def test_slurm_missing_required_argument_is_a_clear_error(args):
  result = _run(SLURM, "--dry-run", *args)
  assert result.returncode == 2 and "missing required argument" in result.stderr


def test_slurm_bad_port_is_rejected():
  result = _run(SLURM, "--dry-run", "--port=70000", CONFIG, "--workdir=w")
  assert result.returncode == 2 and "--port=70000" in result.stderr


def test_slurm_inside_allocation_gives_each_task_its_process_id(tmp_path):
  """Fake scontrol and srun (srun starts --ntasks copies with SLURM_PROCID=0..N-1, as Slurm
  does); the fake python logs what each process receives."""
  _fake_bin(tmp_path, "scontrol", 'printf "gpu-a17\\ngpu-b03\\ngpu-b04\\n"\n')
  bin_dir = _fake_bin(
    tmp_path,
    "srun",
    'n=1; while [[ "$1" == --* ]]; do [[ "$1" == --ntasks=* ]] && n="${1#*=}"; shift; done\n'
    'for ((i = 0; i < n; i++)); do SLURM_PROCID=$i "$@" || exit; done\n',
  )
  venv = tmp_path / "venv"
  (venv / "bin").mkdir(parents=True)
  log = tmp_path / "python.log"
  python = venv / "bin" / "python"
  python.write_text(f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> {log}; echo >> {log}\n')
  python.chmod(0o755)
  env = {
    "PATH": f"{bin_dir}:{os.environ['PATH']}",
    "SLURM_JOB_NODELIST": "gpu-a17,gpu-b[03-04]",
    "SLURM_NTASKS": "3",
    "SLURM_JOB_ID": "55",
    "SLURM_SUBMIT_DIR": str(REPO),
  }
  result = _run(SLURM, f"--venv={venv}", CONFIG, "--workdir=w", "--config.x=a b", env=env)
  assert result.returncode == 0, result.stderr
  calls = _logged_calls(log)
  assert len(calls) == 3
  for process_id, argv in enumerate(calls):
    assert argv == [
      "-m",
      "research.main",
      CONFIG,
      "--workdir=w",
      "--coordinator_address=gpu-a17:20055",
      "--num_processes=3",
      "--config.x=a b",
      f"--process_id={process_id}",
    ]


def test_slurm_header_asks_for_a_warning_signal_and_allows_requeue():
  header = [line for line in SLURM.read_text().splitlines() if line.startswith("#SBATCH")]
  assert any(line.startswith("#SBATCH --signal=TERM@") for line in header)
  assert "#SBATCH --requeue" in header and "#SBATCH --open-mode=append" in header


@pytest.mark.parametrize(
  "srun_exit, requeued, code", [(143, True, 0), (0, False, 0), (2, False, 2), (3, False, 3)]
)
def test_slurm_requeues_a_run_stopped_by_sigterm_and_nothing_else(
  tmp_path, srun_exit, requeued, code
):
  """A fake srun that exits as research.main does (143: stopped by SIGTERM with a checkpoint)."""
  _fake_bin(tmp_path, "srun", f"exit {srun_exit}\n")
  log = tmp_path / "scontrol.log"
  bin_dir = _fake_bin(
    tmp_path,
    "scontrol",
    f'if [[ "$1" == show ]]; then echo node001; else echo "$@" >> {shlex.quote(str(log))}; fi\n',
  )
  env = {
    "PATH": f"{bin_dir}:{os.environ['PATH']}",
    "SLURM_JOB_NODELIST": "node001",
    "SLURM_NTASKS": "1",
    "SLURM_JOB_ID": "77",
    "SLURM_SUBMIT_DIR": str(REPO),
  }
  result = _run(SLURM, f"--venv={tmp_path}", CONFIG, "--workdir=w", env=env)
  assert result.returncode == code, result.stderr
  assert (log.read_text() if log.exists() else "") == ("requeue 77\n" if requeued else "")


def test_slurm_dry_run_shows_the_requeue():
  result = _run(SLURM, "--dry-run", CONFIG, "--workdir=/shared/run")
  assert result.returncode == 0 and "+ scontrol requeue 1234" in result.stdout


def test_scripts_are_shellcheck_clean():
  shellcheck = shutil.which("shellcheck")
  if shellcheck is None:
    pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
  result = subprocess.run(
    [
      shellcheck,
      "-x",
      str(TPU),
      str(GPU),
      str(SLURM),
      str(SWEEP_ARRAY),
      str(TPU.parent / "_common.sh"),
    ],
    capture_output=True,
    text=True,
    timeout=60,
    cwd=TPU.parent.parent,  # -x follows `source`
  )
  assert result.returncode == 0, result.stdout


def test_distributed_flags_exist_in_research_main():
  """The flags the scripts pass are research.main's own (absl would reject unknown ones)."""
  result = subprocess.run(
    [sys.executable, "-m", "research.main", "--helpfull"],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=120,
  )
  for flag in ("--distributed", "--coordinator_address", "--num_processes", "--process_id"):
    assert flag in result.stdout, f"research.main has no {flag}"


@pytest.mark.slow
def test_slurm_script_trains_two_real_processes(tmp_path):
  """slurm.sbatch with a fake srun that starts both tasks at once on this machine: two real
  research.main processes meet at the coordinator and train the digits MLP together."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  _fake_bin(tmp_path, "scontrol", "echo 127.0.0.1\necho 127.0.0.2\n")
  bin_dir = _fake_bin(
    tmp_path,
    "srun",
    'n=1; while [[ "$1" == --* ]]; do [[ "$1" == --ntasks=* ]] && n="${1#*=}"; shift; done\n'
    'pids=(); for ((i = 0; i < n; i++)); do SLURM_PROCID=$i "$@" & pids+=($!); done\n'
    'for p in "${pids[@]}"; do wait "$p" || exit 1; done\n',
  )
  workdir = tmp_path / "run"
  env = {
    "PATH": f"{bin_dir}:{os.environ['PATH']}",
    "SLURM_JOB_NODELIST": "node[1-2]",
    "SLURM_NTASKS": "2",
    "SLURM_JOB_ID": "7",
    "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    "JAX_PLATFORMS": "cpu",
  }
  result = subprocess.run(
    [
      "bash",
      str(SLURM),
      f"--repo={REPO}",
      f"--port={port}",
      "--config=experiments/configs/mlp_digits.py:test",
      f"--workdir={workdir}",
      "--config.num_train_steps=4",
    ],
    capture_output=True,
    text=True,
    env={**{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}, **env},
    timeout=300,
  )
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  assert "2 process(es)" in result.stdout + result.stderr
  assert (workdir / "metrics.jsonl").exists()


# ---------------------------------------------------------------------------- sweep_array.sbatch

SWEEP_ARGS = [
  "--config=experiments/configs/mlp_digits.py:test",
  "--space=optimizer.learning_rate=loguniform(1e-3,1e-1)",
  "--trials=2",
]


def test_sweep_array_dry_run_runs_the_task_id_as_one_sequential_trial():
  result = _run(
    SWEEP_ARRAY,
    "--dry-run",
    *SWEEP_ARGS,
    "--workdir=/shared/sweep",
    "--config.num_train_steps=4",
    env={"SLURM_ARRAY_TASK_ID": "1", "SLURM_JOB_ID": "9"},
  )
  assert result.returncode == 0, result.stderr
  (command, requeue) = _commands(result.stdout)
  assert command[1:] == [
    "-m",
    "research.sweep",
    SWEEP_ARGS[0],
    "--workdir=/shared/sweep",
    "--mode=sequential",
    "--trial=1",
    *SWEEP_ARGS[1:],
    "--config.num_train_steps=4",
  ]
  assert requeue == ["scontrol", "requeue", "9"]


@pytest.mark.parametrize(
  "args, missing",
  [(SWEEP_ARGS[:2], "--trials=N"), ([SWEEP_ARGS[0], SWEEP_ARGS[2]], "--space=KEY=DISTRIBUTION")],
)
def test_sweep_array_missing_argument_or_task_id_is_one_clear_line(args, missing):
  result = _run(SWEEP_ARRAY, *args, "--workdir=w")
  assert result.returncode == 2 and missing in result.stderr.splitlines()[0]
  result = _run(SWEEP_ARRAY, *SWEEP_ARGS, "--workdir=w")
  assert result.returncode == 2 and "SLURM_ARRAY_TASK_ID is unset" in result.stderr


def test_sweep_array_header_and_requeue_on_sigterm(tmp_path):
  header = [line for line in SWEEP_ARRAY.read_text().splitlines() if line.startswith("#SBATCH")]
  assert any(line.startswith("#SBATCH --array=") for line in header)
  assert "#SBATCH --requeue" in header and any(
    line.startswith("#SBATCH --signal=TERM@") for line in header
  )
  venv = tmp_path / "venv"
  (venv / "bin").mkdir(parents=True)
  fake_python = venv / "bin" / "python"
  fake_python.write_text("#!/usr/bin/env bash\nexit 143\n")  # the trial saved and stopped
  fake_python.chmod(0o755)
  bin_dir, log = _logger(tmp_path, "scontrol")
  result = _run(
    SWEEP_ARRAY,
    f"--venv={venv}",
    *SWEEP_ARGS,
    "--workdir=w",
    env={
      "PATH": f"{bin_dir}:{os.environ['PATH']}",
      "SLURM_ARRAY_TASK_ID": "0",
      "SLURM_JOB_ID": "41",
      "SLURM_SUBMIT_DIR": str(REPO),
    },
  )
  assert result.returncode == 0, result.stderr
  assert _logged_calls(log) == [["requeue", "41"]]


@pytest.mark.slow
def test_sweep_array_tasks_run_together_into_one_sweep(tmp_path):
  """Two real array tasks at once into one directory: each runs its trial; the report is
  whole (written by the last to finish); the same command without --trial only reports."""
  workdir = tmp_path / "sweep"
  args = [*SWEEP_ARGS, f"--workdir={workdir}", "--config.num_train_steps=4"]
  env = {
    **{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")},
    "JAX_PLATFORMS": "cpu",
  }
  tasks = [
    subprocess.Popen(
      ["bash", str(SWEEP_ARRAY), f"--repo={REPO}", *args],
      env={**env, "SLURM_ARRAY_TASK_ID": str(i), "SLURM_JOB_ID": str(i)},
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in (0, 1)
  ]
  outputs = [t.communicate(timeout=300) for t in tasks]
  assert [t.returncode for t in tasks] == [0, 0], outputs
  import json  # noqa: PLC0415

  lines = [json.loads(x) for x in (workdir / "trials.jsonl").read_text().splitlines()]
  assert [r["trial"] for r in lines] == [0, 1]
  assert all(r["mode"] == "sequential" for r in lines)
  assert sum("best: trial" in out for out, _ in outputs) >= 1
  report = subprocess.run(
    [sys.executable, "-m", "research.sweep", *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert report.returncode == 0 and "to run" not in report.stdout, report.stderr[-2000:]
  assert "best: trial" in report.stdout
