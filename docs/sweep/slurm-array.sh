#!/bin/bash
# A sweep of `unplug workloads` as a Slurm job array (docs/SWEEP.md): array task K runs shard K of
# N (N = the size of the array, which must be 0..N-1) and writes its JSON lines to $OUT; a job that
# depends on the array merges them into the report of the whole run.
#
#   mkdir -p logs && jid=$(sbatch --parsable docs/sweep/slurm-array.sh)
#   sbatch --dependency=afterok:$jid --wrap 'unplug merge sweep/seq3/shard-*.jsonl > seq3.txt'
#
# Every option must be the same in every task (merge refuses shards of different runs), and every
# task must run the same unplug binary (the version is compared too).
#SBATCH --job-name=unplug-seq3
#SBATCH --array=0-99
#SBATCH --cpus-per-task=2
#SBATCH --mem=2G
#SBATCH --time=24:00:00
#SBATCH --output=logs/%A_%a.out

set -u
if [ "${SLURM_ARRAY_TASK_MIN:-0}" != 0 ]; then
    echo "the array must be 0..N-1 (it starts at $SLURM_ARRAY_TASK_MIN)" >&2
    exit 2
fi
N=$((SLURM_ARRAY_TASK_MAX + 1))
I=$SLURM_ARRAY_TASK_ID
OUT=${OUT:-$PWD/sweep/seq3}
UNPLUG=${UNPLUG:-unplug}
mkdir -p "$OUT"
part="$OUT/shard-$I.jsonl.part"
# rayon uses every CPU it sees: give it the task's.
export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-2}
# --max-memory explicit: the default (half the memory available) differs between nodes, and the
# budget can decide a verdict (not proven); it is then one of the options merge compares.
"$UNPLUG" workloads --ops 3 --files 2 --dirs 2 --max-memory 1GiB --shard "$I/$N" > "$part"
rc=$?
# 0 holds, 1 a model-order violation, 3 not proven: the shard ran to its end. A shard that
# failed leaves only its .part file (merge would refuse it anyway: it has no end record).
case $rc in
    0|1|3) mv "$part" "$OUT/shard-$I.jsonl" ;;
    *) exit "$rc" ;;
esac
