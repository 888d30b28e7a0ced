"""Distributed training (DDP) with two CPU processes, started the way the recipe starts
a multi-node run: ``espnet2.bin.launch --cmd slurm.pl --num_nodes 2 --ngpu 0 …`` (as in
merit.sh's ``train_model``), utils/slurm.pl, then ``srun``, which starts one training
process per node with ``--dist_launcher slurm --dist_backend gloo`` and a shared-file
``--dist_init_method``. On a single-node launch ESPnet starts several processes only for
several GPUs, so the Slurm route is the launcher's one to two CPU processes; sbatch,
squeue and srun are stand-ins that run the job here (srun: one process per node, with
the SLURM_* variables a real step has).

The training command is test/ddp_probe.py: merit_train plus a record per rank of the
utterances its model saw, the confusion matrix behind ``valid.macro_f1`` and its final
parameters. Checked: the ranks see disjoint halves of every set and end with identical
parameters (so the gradients were averaged); every rank's matrix, and ``valid.macro_f1``,
are those of single-process decoding (``Speech2Merit``) of the whole dev set with the
same weights; a second launch with a larger ``max_epoch`` resumes at epoch 2.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from merit.data.audio_io import read_audio
from merit.data.datadir import read_kv
from merit.inference import Speech2Merit
from merit.metrics.classification import macro_f1
from merit.models.frontend import load_dumped
from tiny_experiment import train_command

REPO = Path(__file__).resolve().parent.parent
NODES = 2

# Runs the batch script at once (so squeue has nothing to list), as array task <first>,
# with the node count it was given.
FAKE_SBATCH = r"""#!/usr/bin/env bash
nodes=1; out=/dev/null; script=; array=1
for a in "$@"; do
  case $a in
    --nodes=*) nodes=${a#--nodes=} ;;
    --output=*) out=${a#--output=} ;;
    --array=*) array=${a#--array=}; array=${array%%-*} ;;
    -*) ;;
    *) script=$a ;;
  esac
done
SLURM_ARRAY_TASK_ID=$array SLURM_JOB_NUM_NODES=$nodes bash "$script" > "${out//%a/$array}" 2>&1
echo "4242;fake"
"""
FAKE_SQUEUE = "#!/usr/bin/env bash\nexit 0\n"
# One task per node of the job, each with the variables ESPnet's --dist_launcher slurm
# reads; fails when any task fails.
FAKE_SRUN = r"""#!/usr/bin/env bash
while [[ $1 == -* ]]; do shift; done
n=${SLURM_JOB_NUM_NODES:?not in a job}
pids=()
for ((i = 0; i < n; i++)); do
  SLURM_PROCID=$i SLURM_NODEID=$i SLURM_LOCALID=0 SLURM_NTASKS=$n SLURM_STEP_NUM_NODES=$n \
    SLURM_STEP_NODELIST=localhost "$@" &
  pids+=($!)
done
code=0
for p in "${pids[@]}"; do wait "$p" || code=1; done
exit $code
"""


def launch(root: Path, exp: Path, max_epoch: int, probe: Path, bin_dir: Path):
    """merit.sh's launcher call for ``--num_nodes 2 --ngpu 0`` under Slurm, training
    the tiny model (via ddp_probe.py) to ``max_epoch``; returns the launcher's result."""
    train = train_command(root, exp, max_epoch,
                          extra=["--num_workers", "0", "--use_matplotlib", "false"])
    probe_train = [train[0], str(REPO / "test" / "ddp_probe.py"), *train[3:]]
    assert train[1:3] == ["-m", "merit.bin.merit_train"]
    cmd = [sys.executable, "-m", "espnet2.bin.launch",
           "--cmd", str(REPO / "egs/TEMPLATE/merit/utils/slurm.pl"),
           "--log", str(exp / "train.log"), "--ngpu", "0", "--num_nodes", str(NODES),
           "--init_file_prefix", str(exp / ".dist_init_"),
           "--multiprocessing_distributed", "true", "--", *probe_train]
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               MERIT_DDP_PROBE=str(probe), MERIT_SLURM_POLL="0.1")
    return subprocess.run(cmd, cwd=exp.parent, env=env, capture_output=True, text=True,
                          timeout=300)


def keys_of(probe: Path, mode: str):
    return [(probe / f"{mode}_keys.rank{r}").read_text().split() for r in range(NODES)]


def single_process_confusion(root: Path, exp: Path, weights: Path) -> np.ndarray:
    """The SER confusion matrix (rows: reference) of decoding the dev set one
    utterance at a time in this process with ``weights``."""
    decoder = Speech2Merit(exp, checkpoint=str(weights))
    wav = read_kv(root / "data/dev_noisy/wav.scp")
    feats = read_kv(root / "dump/dev_noisy/feats.scp")
    labels = read_kv(root / "data/dev_noisy/utt2emo")
    index = {c: i for i, c in enumerate(decoder.classes)}
    confusion = np.zeros((len(index), len(index)), dtype=np.int64)
    for utt in sorted(wav):
        posteriors = decoder(read_audio(wav[utt]), load_dumped(feats[utt])).outputs["ser"]
        confusion[index[labels[utt]], int(np.argmax(posteriors))] += 1
    return confusion


def test_two_processes_train_in_sync_and_resume(tiny_data, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", FAKE_SQUEUE), ("srun", FAKE_SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    exp = tmp_path / "exp" / "ddp"
    train_keys = sorted(read_kv(tiny_data / "data/train_noisy/wav.scp"))
    dev_keys = sorted(read_kv(tiny_data / "data/dev_noisy/wav.scp"))

    for epochs in (1, 2):  # the second launch resumes the first
        probe = tmp_path / f"probe{epochs}"
        res = launch(tiny_data, exp, epochs, probe, bin_dir)
        log = (exp / "train.log").read_text() if (exp / "train.log").exists() else ""
        assert res.returncode == 0, f"{res.stderr[-3000:]}\n{log[-6000:]}"
        assert f"{epochs}epoch results" in log
        if epochs == 2:
            assert "The training was resumed" in log and "1epoch results" not in log

        # (a) each rank its own part of every batch; together every utterance once
        for mode, keys in (("train", train_keys), ("valid", dev_keys)):
            per_rank = keys_of(probe, mode)
            assert all(per_rank), f"a rank saw no {mode} data: {per_rank}"
            assert not set(per_rank[0]) & set(per_rank[1]), per_rank
            assert sorted(per_rank[0] + per_rank[1]) == keys, per_rank

        # (b) the gradients were averaged: both ranks end with the same parameters,
        # which are the checkpoint's
        params = [torch.load(probe / f"params.rank{r}.pth") for r in range(NODES)]
        checkpoint = torch.load(exp / "checkpoint.pth", weights_only=False)
        assert params[0].keys() == params[1].keys() == checkpoint["model"].keys()
        for name in params[0]:
            assert torch.equal(params[0][name], params[1][name]), name
            assert torch.equal(params[0][name], checkpoint["model"][name]), name

        # (c) valid.macro_f1 counts the whole dev set on every rank, not each rank's
        # part: the same confusion matrix, and macro-F1, as decoding in one process
        logged = float(checkpoint["reporter"]["stats"][epochs]["valid"]["macro_f1"])
        single = single_process_confusion(tiny_data, exp, probe / "params.rank1.pth")
        print(f"epoch {epochs}: valid.macro_f1 {logged} (2 processes), "
              f"{macro_f1(single)} (1 process)")
        for r in range(NODES):
            np.testing.assert_array_equal(np.load(probe / f"confusion.rank{r}.npy"), single)
        assert logged == macro_f1(single)

    # (d) run 2 trained on from run 1's state: its parameters moved on from there
    first = torch.load(tmp_path / "probe1" / "params.rank0.pth")
    assert any(not torch.equal(first[n], params[0][n]) for n in first)
    assert sorted(checkpoint["reporter"]["stats"]) == [1, 2]
