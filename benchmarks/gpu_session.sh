#!/usr/bin/env bash
# One lent GPU's work, as run on 2026-12-04 (one H200, 16 cores, under ten minutes):
#   1. the paper-size baseline and HTP side by side (speed, training step, peak memory);
#   2. trainings side by side on the one GPU: the bundled recipe wider and with 8x the batch
#      (issue 12's scaling study), each sized by --minutes, and two lanes of the issue-9
#      seed study (2000 steps of batch 16, exactly the CPU recipe) one after another;
#   3. evaluations of what finished, on the GPU, until the time is up.
# Run from the repository root with ../shared beside it (or the data in .gpu/, which this
# copies there). OUT: where results go; SECONDS_TOTAL: the time it may take.
# DEVICE=cpu QUICK=1 runs the same steps in miniature (to check the script itself).
set -u
OUT=${OUT:-runs/gpu}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
SECONDS_TOTAL=${SECONDS_TOTAL:-540}
EVAL_S=150
source "$(dirname "$0")/gpu_setup.sh"

# 1. Paper size: the models side by side, alternating (medians).
if [ "$QUICK" = 1 ]; then PAPER="--set model.width=32"; else PAPER=""; fi
P="$H profile --baseline configs/h36m_d3dp.yaml --pruned configs/h36m_htp.yaml --device $DEVICE $PAPER"
timeout 100 $P --hypotheses 1 --steps 1 --train-batch 4 --time 10 > "$OUT/profile_h1k1.txt" 2>&1
timeout 100 $P --hypotheses 20 --steps 10 --train-batch 4 --time 3 > "$OUT/profile_h20k10.txt" 2>&1

# 2. Trainings. The wide ones end by EVAL_S before the end; the lanes start a run only if it
# can finish, and a run cut off by its timeout is not evaluated.
MIN=$(python3 -c "print(max(0.5, ($(left) - $EVAL_S) / 60 - 0.5))")
if [ "$QUICK" = 1 ]; then SHORT="--steps 60"; MIN=0.4; WIDE_BATCH=16; else SHORT="--steps 2000"; WIDE_BATCH=128; fi
wide() {  # NAME CONFIG OVERRIDES...
    local name=$1 config=$2; shift 2
    timeout "$(until_evals)" $H train --config "$config" --device $DEVICE $D \
        --minutes "$MIN" --set train.batch_size=$WIDE_BATCH --set train.loader_workers=3 "$@" \
        --no-progress --out "$R/$name" > "$R/$name.log" 2>&1
}
lane() {  # NAME:SEED:CONFIG[:OVERRIDE] ...
    for spec in "$@"; do
        IFS=: read -r name seed config override <<< "$spec"
        [ "$(left)" -lt $((EVAL_S + 120)) ] && [ "$QUICK" != 1 ] && break
        timeout "$(until_evals)" $H train --config "$config" --device $DEVICE $D $SHORT \
            --seed "$seed" --set train.loader_workers=1 ${override:+--set $override} \
            --no-progress --out "$R/$name" > "$R/$name.log" 2>&1
    done
}
HTP=configs/cmu_wide_htp.yaml
FULL=configs/cmu_wide.yaml
export OMP_NUM_THREADS=2  # eleven trainings and loaders share the cores
wide g128_htp $HTP --set model.width=128 &
wide g128_unpruned $FULL --set model.width=128 &
wide g64_htp $HTP &
lane random_s2:2:$HTP:model.pruning.scoring=random small40_s1:1:$FULL:model.width=40 \
    unpruned_s1:1:$FULL curric50_s1:1:$HTP:data.pose.tilt_from=0.5 &
lane small40_s2:2:$FULL:model.width=40 unpruned_s2:2:$FULL curric50_s0:0:$HTP:data.pose.tilt_from=0.5 \
    curric50_s2:2:$HTP:data.pose.tilt_from=0.5 &
wait

# 3. Evaluations on the GPU while time is left (the rest are run on the CPU afterwards).
export OMP_NUM_THREADS=3
E="$H evaluate --subjects S9 --views 0 --hypotheses 20 --device $DEVICE --no-progress"
for split in val test test_wide; do
    for run in "$R"/*/; do
        name=$(basename "$run")
        model=$run/model.safetensors
        grep -q '^model:' "$R/$name.log" || continue  # finished runs only
        case $name in g*) ;; *) [ "$split" = test_wide ] && continue ;; esac
        [ "$(left)" -lt 25 ] && break 2
        timeout $(( $(left) - 20 )) $E --checkpoint "$model" --split $split \
            --json "$R/$name.$split.json" > "$R/$name.$split.txt" 2>&1 &
        while [ "$(jobs -rp | wc -l)" -ge 6 ]; do sleep 1; done
    done
done
wait

# What comes back: weights and logs (no optimizer state but the widest HTP run's).
tar czf "$OUT/runs.tgz" --exclude='previous.safetensors' --exclude='*/g64_htp/last.safetensors' \
    --exclude='*/g128_unpruned/last.safetensors' --exclude='*_s[0-9]/last.safetensors' \
    --exclude='*_s[0-9]/best.safetensors' -C "$OUT" runs
split -b 15m "$OUT/runs.tgz" "$OUT/runs.tgz.part-" && rm "$OUT/runs.tgz"
rm -r "$R"
echo "done in $(($(date +%s) - T0)) s"
ls -la "$OUT"
