"""Train a MERIT model with ESPnet's trainer: ``python -m merit.bin.merit_train --config …``.

Several GPUs: ``python -m espnet2.bin.launch --ngpu N … -- python -m merit.bin.merit_train``
or ``--ngpu N --multiprocessing_distributed true``.
"""
from merit.tasks.merit_task import MeritTask


def main(cmd=None):
    MeritTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
