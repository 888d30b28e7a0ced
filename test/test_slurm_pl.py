"""Tests for utils/slurm.pl against fake sbatch / squeue / sacct commands."""
import os
import re

import pytest

SLURM = "utils/slurm.pl"

# Records its arguments, then runs the array tasks in the background (honouring
# --array=A-B[%M] and --output=...%a...) and prints a --parsable job id.
FAKE_SBATCH = r"""#!/usr/bin/env bash
d=$FAKE_SLURM_DIR
printf '%s\n' "$@" > "$d/sbatch.args"
if [ -n "$FAKE_SBATCH_FAIL" ]; then echo "sbatch: error: $FAKE_SBATCH_FAIL" >&2; exit 1; fi
array=; out=; script=
for a in "$@"; do
  case $a in
    --array=*) array=${a#--array=} ;;
    --output=*) out=${a#--output=} ;;
    -*) ;;
    *) script=$a ;;
  esac
done
range=${array%\%*}; throttle=
[[ $array == *%* ]] && throttle=${array#*%}
lo=${range%-*}; hi=${range#*-}
touch "$d/running"
(
  for ((i = lo; i <= hi; i++)); do
    SLURM_ARRAY_TASK_ID=$i bash "$script" > "${out/\%a/$i}" 2>&1 &
    if [ -n "$throttle" ]; then
      while (( $(jobs -rp | wc -l) >= throttle )); do wait -n; done
    fi
  done
  wait
  rm -f "$d/running"
) < /dev/null > /dev/null 2>&1 &
echo "4242;fakecluster"
"""

# Lists the array while its tasks are still running.
FAKE_SQUEUE = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_SLURM_DIR/squeue.calls"
if [ -e "$FAKE_SLURM_DIR/running" ]; then echo "4242_1 normal x user R 0:01 1 node1"; fi
"""

FAKE_SACCT = r"""#!/usr/bin/env bash
echo "$*" > "$FAKE_SLURM_DIR/sacct.args"
cat "$FAKE_SLURM_DIR/sacct.txt" 2>/dev/null
"""


@pytest.fixture
def slurm(run_tool, tmp_path):
    """Runs slurm.pl in tmp_path/work with the fake Slurm commands first in PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", FAKE_SQUEUE),
                       ("sacct", FAKE_SACCT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    work = tmp_path / "work"
    work.mkdir()

    def _run(*args, env=None):
        full_env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_SLURM_DIR": str(fake_dir),
            "MERIT_SLURM_POLL": "0.1",
        }
        full_env.update(env or {})
        return run_tool([SLURM, *args], cwd=work, env=full_env, timeout=60)

    _run.work = work
    _run.fake = fake_dir
    _run.sbatch_args = lambda: (fake_dir / "sbatch.args").read_text().splitlines()
    return _run


def test_options_map_to_sbatch_and_jobs_run(slurm):
    res = slurm("--gpu", "2", "--mem", "4G", "--num_threads", "3", "--time=1:00:00",
                "--num_nodes", "2",
                "JOB=1:3", "exp/log/x.JOB.log", "echo", "job", "JOB;", "sleep", "0.3")
    assert res.returncode == 0, res.stderr
    args = slurm.sbatch_args()
    for expected in ("--parsable", "--array=1-3", "--gres=gpu:2", "--mem=4G",
                     "--cpus-per-task=3", "--time=1:00:00", "--nodes=2", "--ntasks-per-node=1",
                     "--output=exp/log/q/x.%a.out"):
        assert expected in args
    assert args[-1] == "exp/log/q/x.sh"
    assert (slurm.work / "exp/log/q/x.sh").is_file()
    for i in (1, 2, 3):
        lines = (slurm.work / f"exp/log/x.{i}.log").read_text().splitlines()
        assert lines[0] == f"# echo job {i}; sleep 0.3"
        assert lines[1].startswith("# Started at ")
        assert lines[2] == f"job {i}"
        assert re.fullmatch(r"# Accounting: time=\d+ threads=3", lines[3])
        assert re.fullmatch(r"# Ended \(code 0\) at .*, elapsed time \d+ seconds", lines[4])
    # slurm.pl waited: squeue saw the running array, then an empty listing.
    calls = (slurm.fake / "squeue.calls").read_text().splitlines()
    assert len(calls) >= 2
    assert calls[0] == "-h -j 4242"


def test_throttle_config_and_extra_args(slurm):
    conf = slurm.work / "slurm.conf"
    conf.write_text("# defaults\ngpu 1\npartition gpuq\nmem 2G\nmax-jobs-run 2\n")
    res = slurm("--config", str(conf), "--mem", "8G", "JOB=1:3", "log/t.JOB.log", "true",
                env={"MERIT_SLURM_EXTRA_ARGS": "--account=abc --comment 'a b'"})
    assert res.returncode == 0, res.stderr
    args = slurm.sbatch_args()
    assert "--array=1-3%2" in args
    assert "--gres=gpu:1" in args
    assert "--partition=gpuq" in args
    assert "--mem=8G" in args and "--mem=2G" not in args  # command line wins
    assert args[args.index("--comment") + 1] == "a b"
    assert "--account=abc" in args
    for i in (1, 2, 3):
        assert "# Ended (code 0)" in (slurm.work / f"log/t.{i}.log").read_text()


def test_no_gpu_no_gres_and_single_job_form(slurm):
    res = slurm("--gpu", "0", "log/single.log", "echo", "JOB", "alone")
    assert res.returncode == 0, res.stderr
    args = slurm.sbatch_args()
    assert "--array=1-1" in args
    assert not any(a.startswith("--gres") for a in args)
    text = (slurm.work / "log/single.log").read_text()
    assert text.startswith("# echo JOB alone\n")
    assert "\nJOB alone\n" in text
    assert "# Ended (code 0)" in text


def test_failing_job_is_reported_with_sacct_state(slurm):
    (slurm.fake / "sacct.txt").write_text(
        "4242_1|COMPLETED|0:0\n4242_1.batch|COMPLETED|0:0\n"
        "4242_2|FAILED|1:0\n4242_2.batch|FAILED|1:0\n4242_3|COMPLETED|0:0\n")
    res = slurm("JOB=1:3", "log/f.JOB.log", "test", "JOB", "!=", "2")
    assert res.returncode == 1
    assert "slurm.pl: 1 / 3 failed, log is in log/f.2.log [FAILED]" in res.stderr
    assert "f.1.log" not in res.stderr
    assert "# Ended (code 1)" in (slurm.work / "log/f.2.log").read_text()
    for i in (1, 3):
        assert "# Ended (code 0)" in (slurm.work / f"log/f.{i}.log").read_text()
    assert (slurm.fake / "sacct.args").read_text().split() == [
        "-n", "-P", "-j", "4242", "-o", "JobID,State,ExitCode"]


def test_job_killed_without_ended_line_fails_despite_stale_log(slurm):
    log = slurm.work / "log/k.1.log"
    log.parent.mkdir(parents=True)
    log.write_text("# stale log of an earlier run\n# Ended (code 0) at then\n")
    # The command kills the batch script, so no "# Ended" line gets written.
    res = slurm("JOB=1:2", "log/k.JOB.log", "test", "JOB", "=", "2", "||", "kill", "-9", "$PPID")
    assert res.returncode == 1
    assert "1 / 2 failed, log is in log/k.1.log" in res.stderr
    assert "no exit status in the log of job(s) 1" in res.stderr
    assert "Ended" not in log.read_text()


def test_sbatch_failure(slurm):
    res = slurm("JOB=1:2", "log/s.JOB.log", "true",
                env={"FAKE_SBATCH_FAIL": "invalid partition specified: nope"})
    assert res.returncode == 1
    assert "sbatch: error: invalid partition specified: nope" in res.stderr
    assert not (slurm.fake / "squeue.calls").exists()


def test_unknown_option_and_bad_config(slurm):
    res = slurm("--queue", "q", "log/u.log", "true")
    assert res.returncode == 1
    assert "unknown option --queue" in res.stderr
    conf = slurm.work / "bad.conf"
    conf.write_text("colour blue\n")
    res = slurm("--config", str(conf), "log/u.log", "true")
    assert res.returncode == 1
    assert "unknown option 'colour'" in res.stderr
    assert not (slurm.fake / "sbatch.args").exists()
