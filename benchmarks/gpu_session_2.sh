#!/usr/bin/env bash
# The second lent GPU's work (2026-12-04, third session; one H200, 16 cores, under ten minutes):
#   1. the frame plan and the paper-size models at little work per call, where HTP was 0.30x
#      the baseline's speed before the plan's greedy loop moved to the host (one 243-frame
#      window, H x K = 1 x 1), and with evenly spaced frames (no plan at all) beside it;
#   2. the issue-9 controls not yet trained with the tilt curriculum (random frames,
#      HoT-style, a third unpruned seed) and the window-length curve (f = 27 and 243), each
#      exactly the CPU recipe (2000 steps of batch 16), in lanes sharing the one GPU;
#   3. evaluations of what finished, on the GPU, until the time is up (the rest on the CPU).
# Run from the repository root with ../shared beside it (or the data in .gpu/).
# OUT: where results go; SECONDS_TOTAL: the time it may take.
# PLAN=rest (a second call, as run): only the runs the first call had no time for.
# DEVICE=cpu QUICK=1 runs the same steps in miniature (to check the script itself).
set -u
OUT=${OUT:-runs/gpu2}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
SECONDS_TOTAL=${SECONDS_TOTAL:-500}
EVAL_S=140
source "$(dirname "$0")/gpu_setup.sh"

if [ "${PLAN:-all}" = all ]; then
# 1. The plan alone, then the models side by side (alternating, medians), inference only.
if [ "$QUICK" = 1 ]; then PAPER="--set model.width=32"; RUNS=3; else PAPER=""; RUNS=10; fi
timeout 60 python3 benchmarks/tcep_plan_speed.py --device "$DEVICE" --runs $RUNS \
    > "$OUT/tcep_plan_speed.txt" 2>&1
P="$H profile --baseline configs/h36m_d3dp.yaml --pruned configs/h36m_htp.yaml --device $DEVICE $PAPER"
timeout 60 $P --hypotheses 1 --steps 1 --train-batch 1 --time $RUNS > "$OUT/profile_h1k1.txt" 2>&1
timeout 60 $P --hypotheses 1 --steps 1 --train-batch 1 --time $RUNS \
    --set model.pruning.scoring=uniform > "$OUT/profile_h1k1_uniform.txt" 2>&1
timeout 60 $P --hypotheses 5 --steps 1 --train-batch 1 --time $RUNS > "$OUT/profile_h5k1.txt" 2>&1
fi

# 2. Trainings in lanes; a lane starts a run only if it can finish before the evaluations.
if [ "$QUICK" = 1 ]; then SHORT="--steps 40"; else SHORT="--steps 2000"; fi
lane() {  # NAME:SEED:CONFIG[:OVERRIDE[,OVERRIDE...]] ...
    for spec in "$@"; do
        IFS=: read -r name seed config overrides <<< "$spec"
        [ "$(left)" -lt $((EVAL_S + 150)) ] && [ "$QUICK" != 1 ] && break
        local sets=()
        for o in ${overrides//,/ }; do sets+=(--set "$o"); done
        timeout "$(until_evals)" $H train --config "$config" --device "$DEVICE" $D $SHORT \
            --seed "$seed" --set train.loader_workers=1 "${sets[@]}" \
            --no-progress --out "$R/$name" > "$R/$name.log" 2>&1
    done
}
HTP=configs/cmu_wide_htp.yaml
FULL=configs/cmu_wide.yaml
HOT=model.pruning.tcep_layer=1,model.pruning.keep_ratio=0.2,model.pruning.mgptp=false,model.pruning.recovery=attend
export OMP_NUM_THREADS=1
if [ "${PLAN:-all}" = rest ]; then  # a second call: the runs the first left out
    lane gc_f27_s0:0:$HTP:model.frames=27 & lane gc_f27_s1:1:$HTP:model.frames=27 &
    lane gc_f27_s2:2:$HTP:model.frames=27 & lane gc_f243_s2:2:$HTP:model.frames=243 &
else
lane gc_hot_s0:0:$HTP:$HOT gc_f27_s0:0:$HTP:model.frames=27 &
lane gc_hot_s1:1:$HTP:$HOT gc_f27_s1:1:$HTP:model.frames=27 &
lane gc_hot_s2:2:$HTP:$HOT gc_f27_s2:2:$HTP:model.frames=27 &
lane gc_random_s0:0:$HTP:model.pruning.scoring=random gc_unpruned_s2:2:$FULL &
lane gc_random_s1:1:$HTP:model.pruning.scoring=random &
lane gc_random_s2:2:$HTP:model.pruning.scoring=random &
lane gc_f243_s0:0:$HTP:model.frames=243 &
lane gc_f243_s1:1:$HTP:model.frames=243 &
fi
wait

# 3. Evaluations on the GPU while time is left (the protocol of RESULTS section 2: overlap 0).
export OMP_NUM_THREADS=2
E="$H evaluate --subjects S9 --views 0 --hypotheses 20 --overlap 0 --device $DEVICE --no-progress"
for split in val test; do
    for run in "$R"/*/; do
        name=$(basename "$run")
        grep -q '^model:' "$R/$name.log" || continue  # finished runs only
        [ "$(left)" -lt 25 ] && break 2
        timeout $(( $(left) - 20 )) $E --checkpoint "$run/model.safetensors" --split $split \
            --json "$R/$name.$split.json" > "$R/$name.$split.txt" 2>&1 &
        while [ "$(jobs -rp | wc -l)" -ge 7 ]; do sleep 1; done
    done
done
wait

# What comes back: weights, logs and metrics (no optimizer state).
tar czf "$OUT/runs.tgz" --exclude='last.safetensors' --exclude='best.safetensors' \
    --exclude='previous.safetensors' -C "$OUT" runs
split -b 15m "$OUT/runs.tgz" "$OUT/runs.tgz.part-" && rm "$OUT/runs.tgz"
rm -r "$R"
echo "done in $(($(date +%s) - T0)) s"
ls -la "$OUT"
