#!/usr/bin/env bash
# Issue 9's frontier over three seeds: every variant trained exactly like the others (the
# recipe of configs/cmu_wide_htp.yaml, 2000 steps of batch 16, seeds 0-2), then swept over
# the kept share and drawn (benchmarks/htp_frontier.png), on `val` and then on `test`.
# Every run is resumed where it stopped, so the script can be run again after an
# interruption. On 2 cores: 18 runs of 12-25 min on one thread, two at a time (about
# 2.2 h), then about 20 min per split for the sweep. Run from the repository root.
#   R: where the runs go (default runs/frontier); DEVICE: cpu or cuda; WORKERS: trainings at
#   once (default 2 on CPU, 3 on cuda); SPLITS: the sweeps (empty: train only); STEPS, KEEP,
#   SPLITS and PLOT shrink it to check the script itself (STEPS=3 KEEP=0.5 SPLITS=val
#   PLOT=/tmp/f.png). A run that fails stops the script before the sweeps.
set -eu
R=${R:-runs/frontier}
DEVICE=${DEVICE:-cpu}
STEPS=${STEPS:-2000}
KEEP=${KEEP:-0.25,0.33,0.5,0.75,1.0}
SPLITS=${SPLITS-val test}  # empty: train only
PLOT=${PLOT:-benchmarks/htp_frontier.png}
HTP=configs/cmu_wide_htp.yaml
FULL=configs/cmu_wide.yaml
OWN_PLAN="model.pruning.train_scoring=null"  # trained on the plan it runs with
mkdir -p "$R"
export OMP_NUM_THREADS=1

train() {  # NAME SEED CONFIG [OVERRIDE...]
    local name=$1 seed=$2 config=$3
    shift 3
    local sets=()
    for o in "$@"; do sets+=(--set "$o"); done
    # --resume: a run cut short goes on from its last checkpoint, a finished one returns at once
    # (model.safetensors is rewritten at every checkpoint, so it does not mean finished).
    htpose train --config "$config" --steps "$STEPS" --seed "$seed" --threads 1 --device "$DEVICE" \
        "${sets[@]}" --resume --no-progress --out "$R/${name}_s$seed" >> "$R/${name}_s$seed.log" 2>&1
}

variant() {  # NAME SEED: train one variant of the study at one seed
    local s=$2
    case $1 in
        htp) train htp "$s" $HTP ;;                       # random plans in training, TCEP at inference
        uniform) train uniform "$s" $HTP model.pruning.scoring=uniform $OWN_PLAN ;;
        hot) train hot "$s" $HTP model.pruning.tcep_layer=1 model.pruning.keep_ratio=0.2 \
            model.pruning.mgptp=false model.pruning.recovery=attend $OWN_PLAN ;;
        small40) train small40 "$s" $FULL model.width=40 ;;
        unpruned) train unpruned "$s" $FULL ;;
        tcep_plan) train tcep_plan "$s" $HTP $OWN_PLAN ;;  # trained on TCEP's own plan
    esac
}
# One queue taken in order by WORKERS trainings at once (one per core on CPU): each job is
# claimed by whichever worker is free, so the long runs do not pile up on one core. Variant-
# major with the longest runs early and the extra variant last, so a run cut short still
# leaves the issue's controls with all three seeds.
JOBS=()
for v in htp uniform unpruned hot small40 tcep_plan; do
    for s in 0 1 2; do JOBS+=("$v $s"); done
done
WORKERS=${WORKERS:-$([ "$DEVICE" = cpu ] && echo 2 || echo 3)}
rm -rf "$R/.claims" && mkdir -p "$R/.claims"
worker() {
    local job
    for job in "${JOBS[@]}"; do
        mkdir "$R/.claims/${job/ /_s}" 2>/dev/null || continue  # mkdir: one claim wins
        variant $job || echo "$job" >> "$R/.claims/failed"
    done
}
for ((w = 0; w < WORKERS; w++)); do worker & done
wait
# A failed run leaves a model.safetensors of its last checkpoint: sweep nothing rather than it.
if [ -s "$R/.claims/failed" ]; then
    echo "frontier_seeds: failed (see their logs in $R; run again to resume):" \
        $(tr '\n' ',' < "$R/.claims/failed") >&2
    exit 1
fi

# Random frames: HTP trains on random plans already, so this control is the HTP runs with
# random frames at inference too (the same training, not repeated), saved as checkpoints.
for s in 0 1 2; do
    mkdir -p "$R/random_s$s"
    python - "$R/htp_s$s/model.safetensors" "$R/random_s$s/model.safetensors" <<'PY'
import sys

from htpose.checkpoint import load_model, save_checkpoint
from htpose.model.pruning.config import replan

model, cfg, meta = load_model(sys.argv[1])
replan(cfg.model, scoring="random")
save_checkpoint(sys.argv[2], model, cfg, meta=meta)
PY
done

LABELS=("htp=HTP, random plans in training" "tcep_plan=HTP, TCEP plan in training"
    "uniform=evenly spaced" "random=random frames" "hot=HoT-style"
    "small40=unpruned width 40" "unpruned=unpruned width 64")
models=()
for pair in "${LABELS[@]}"; do
    models+=(--model "${pair#*=}=$(for s in 0 1 2; do echo "$R/${pair%%=*}_s$s/model.safetensors"; done | paste -sd,)")
done
for split in $SPLITS; do
    plot=()
    [ "$split" = val ] && plot=(--plot "$PLOT")
    python benchmarks/htp_frontier.py --split "$split" --hypotheses 5 \
        --keep "$KEEP" --scorings own,motion_graph --timing-runs 3 "${models[@]}" \
        --json "$R/frontier_$split.json" "${plot[@]}" | tee "$R/frontier_$split.log"
done
