"""Tests for utils/run.pl, the local parallel job launcher."""
import os
import re

import pytest

RUN = "utils/run.pl"


def read(path):
    return path.read_text()


def test_job_substitution_in_log_names_and_arguments(run_tool, tmp_path):
    res = run_tool([RUN, "JOB=1:3", "log/x.JOB.log", "echo", "arg-JOB", "JOB.txt"],
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for i in (1, 2, 3):
        text = read(tmp_path / f"log/x.{i}.log")
        assert text.splitlines()[0] == f"# echo arg-{i} {i}.txt"
        assert f"\narg-{i} {i}.txt\n" in text
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == [
        "x.1.log", "x.2.log", "x.3.log"]


def test_any_variable_name_and_start_index(run_tool, tmp_path):
    res = run_tool([RUN, "SPLIT=2:3", "out/part.SPLIT.log", "echo", "piece", "SPLIT"],
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "part.2.log", "part.3.log"]
    assert "\npiece 3\n" in read(tmp_path / "out/part.3.log")


def test_log_format(run_tool, tmp_path):
    res = run_tool([RUN, "JOB=1:1", "a/b/c/job.JOB.log", "echo", "out;", "echo", "err", ">&2;", "exit", "3"],
                   cwd=tmp_path)
    assert res.returncode == 1
    lines = read(tmp_path / "a/b/c/job.1.log").splitlines()
    assert lines[0] == "# echo out; echo err >&2; exit 3"
    assert re.fullmatch(r"# Started at .*\d{4}", lines[1])
    assert lines[2:4] == ["out", "err"]
    assert re.fullmatch(r"# Accounting: time=\d+ threads=1", lines[4])
    assert re.fullmatch(r"# Ended \(code 3\) at .*, elapsed time \d+ seconds", lines[5])
    assert len(lines) == 6


def test_jobs_run_in_parallel(run_tool, tmp_path):
    # Each job marks its start, then waits (up to 30 s) until all three have started:
    # jobs run one after another would never see the others' marks and fail.
    (tmp_path / "meet.sh").write_text(
        "touch started.$1\n"
        "for _ in $(seq 300); do\n"
        "  [ -e started.1 ] && [ -e started.2 ] && [ -e started.3 ] && exit 0\n"
        "  sleep 0.1\n"
        "done\n"
        "exit 1\n")
    res = run_tool([RUN, "--max-jobs-run", "3", "JOB=1:3", "log/s.JOB.log", "bash", "meet.sh", "JOB"],
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for i in (1, 2, 3):
        assert "# Ended (code 0)" in read(tmp_path / f"log/s.{i}.log")


def test_jobs_run_in_parallel_when_jobs_use_one_thread(run_tool, tmp_path):
    # path.sh exports OMP_NUM_THREADS=1, which GNU nproc obeys: the default number of
    # jobs at once must still be the CPUs this process may use.
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: jobs cannot run at once")
    (tmp_path / "meet.sh").write_text(
        "touch started.$1\n"
        "for _ in $(seq 300); do\n"
        "  [ -e started.1 ] && [ -e started.2 ] && exit 0\n"
        "  sleep 0.1\n"
        "done\n"
        "exit 1\n")
    res = run_tool([RUN, "JOB=1:2", "log/s.JOB.log", "bash", "meet.sh", "JOB"], cwd=tmp_path,
                   env={"OMP_NUM_THREADS": "1", "OMP_THREAD_LIMIT": "1"})
    assert res.returncode == 0, (res.stderr, read(tmp_path / "log/s.1.log"))


def test_max_jobs_run_limits_parallelism(run_tool, tmp_path):
    # Each job logs its start and its end, 0.3 s apart: with one job at a time
    # every start follows the previous end.
    (tmp_path / "mark.sh").write_text("echo start $1 >> events; sleep 0.3; echo end $1 >> events\n")
    res = run_tool([RUN, "--max-jobs-run=1", "JOB=1:3", "log/s.JOB.log", "bash", "mark.sh", "JOB"],
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert read(tmp_path / "events").splitlines() == [
        "start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


def test_one_failing_job(run_tool, tmp_path):
    res = run_tool([RUN, "JOB=1:3", "log/f.JOB.log", "test", "JOB", "!=", "2"], cwd=tmp_path)
    assert res.returncode == 1
    assert "run.pl: 1 / 3 failed, log is in log/f.2.log" in res.stderr
    assert "f.1.log" not in res.stderr and "f.3.log" not in res.stderr
    assert "# Ended (code 1)" in read(tmp_path / "log/f.2.log")
    for i in (1, 3):
        assert "# Ended (code 0)" in read(tmp_path / f"log/f.{i}.log")


def test_several_failing_jobs_are_all_named(run_tool, tmp_path):
    res = run_tool([RUN, "JOB=1:4", "log/f.JOB.log", "test", "JOB", "-le", "2"], cwd=tmp_path)
    assert res.returncode == 1
    assert "2 / 4 failed, log is in log/f.3.log log/f.4.log" in res.stderr


def test_single_job_form(run_tool, tmp_path):
    res = run_tool([RUN, "log/one.log", "echo", "JOB", "alone"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text = read(tmp_path / "log/one.log")
    assert text.startswith("# echo JOB alone\n")
    assert "\nJOB alone\n" in text  # nothing substituted without VAR=a:b
    assert "# Ended (code 0)" in text


def test_single_job_failure(run_tool, tmp_path):
    res = run_tool([RUN, "log/one.log", "false"], cwd=tmp_path)
    assert res.returncode == 1
    assert "1 / 1 failed, log is in log/one.log" in res.stderr


def test_bare_pipe_argument_is_a_pipe(run_tool, tmp_path):
    # What a recipe writes as: run.pl JOB=1:2 log/p.JOB.log echo hello JOB \| tr a-z A-Z
    res = run_tool([RUN, "JOB=1:2", "log/p.JOB.log", "echo", "hello", "JOB", "|", "tr", "a-z", "A-Z"],
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "\nHELLO 2\n" in read(tmp_path / "log/p.2.log")


def test_argument_with_spaces_stays_one_word(run_tool, tmp_path):
    # As in Kaldi: --opt "a b" reaches the command as one argument, quotes and all.
    res = run_tool([RUN, "JOB=1:1", "log/q.JOB.log", "printf", "[%s]", "two words JOB",
                    "it's | not a pipe"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    log = read(tmp_path / "log/q.1.log")
    assert "[two words 1][it's | not a pipe]" in log


def test_compatibility_options_are_ignored(run_tool, tmp_path):
    res = run_tool([RUN, "--gpu", "1", "--mem=4G", "--num_threads", "2", "--time", "1:00:00",
                    "--config", "conf/none.conf", "JOB=1:2", "log/o.JOB.log", "true"],
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "# Ended (code 0)" in read(tmp_path / "log/o.2.log")


def test_unknown_option_is_an_error(run_tool, tmp_path):
    res = run_tool([RUN, "--frobnicate", "3", "log/u.log", "true"], cwd=tmp_path)
    assert res.returncode != 0
    assert "unknown option --frobnicate" in res.stderr
    assert "Usage:" in res.stderr
    assert not (tmp_path / "log").exists()


def test_missing_command_prints_usage(run_tool, tmp_path):
    res = run_tool([RUN, "JOB=1:2"], cwd=tmp_path)
    assert res.returncode != 0
    assert "Usage: run.pl" in res.stderr


def test_parallel_job_needs_variable_in_log_name(run_tool, tmp_path):
    res = run_tool([RUN, "JOB=1:2", "log/same.log", "true"], cwd=tmp_path)
    assert res.returncode != 0
    assert "does not contain JOB" in res.stderr
