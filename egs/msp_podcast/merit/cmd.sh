# How recipe jobs are launched. Copied (not linked) into each recipe: edit freely.
#
# cmd_backend=local  runs jobs on this machine with utils/run.pl
# cmd_backend=slurm  submits them as sbatch array jobs with utils/slurm.pl;
#                    site options (partition, account) go in conf/slurm.conf
#
# Callers add resources per call, e.g. ${cuda_cmd} --gpu 1 log/train.log ...
cmd_backend=${MERIT_CMD_BACKEND:-local}

case "${cmd_backend}" in
    local)
        export train_cmd="run.pl"
        export cuda_cmd="run.pl"
        export decode_cmd="run.pl"
        ;;
    slurm)
        export train_cmd="slurm.pl --config conf/slurm.conf"
        export cuda_cmd="slurm.pl --config conf/slurm.conf"
        export decode_cmd="slurm.pl --config conf/slurm.conf"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (expected local or slurm)" >&2
        return 1
        ;;
esac
