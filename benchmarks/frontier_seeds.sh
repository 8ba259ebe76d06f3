#!/usr/bin/env bash
# Issue 9's frontier over three seeds: every variant trained exactly like the others (the
# recipe of configs/cmu_wide_htp.yaml, 2000 steps of batch 16, seeds 0-2), then swept over
# the kept share and drawn (benchmarks/htp_frontier.png), on `val` and then on `test`.
# A run whose model.safetensors exists is not trained again, so the script resumes after
# an interruption. On 2 cores: 21 runs of about 15 min on one thread, two at a time (about
# 2.7 h), then about 20 min per split for the sweep. Run from the repository root.
#   R: where the runs go (default runs/frontier); DEVICE: cpu or cuda; STEPS, KEEP, SPLITS
#   and PLOT shrink it to check the script itself (STEPS=3 KEEP=0.5 SPLITS=val PLOT=/tmp/f.png).
set -eu
R=${R:-runs/frontier}
DEVICE=${DEVICE:-cpu}
STEPS=${STEPS:-2000}
KEEP=${KEEP:-0.25,0.33,0.5,0.75,1.0}
SPLITS=${SPLITS:-val test}
PLOT=${PLOT:-benchmarks/htp_frontier.png}
HTP=configs/cmu_wide_htp.yaml
FULL=configs/cmu_wide.yaml
OWN_PLAN="model.pruning.train_scoring=null"  # trained on the plan it runs with
mkdir -p "$R"
export OMP_NUM_THREADS=1

train() {  # NAME SEED CONFIG [OVERRIDE...]
    local name=$1 seed=$2 config=$3
    shift 3
    [ -f "$R/${name}_s$seed/model.safetensors" ] && return 0
    local sets=()
    for o in "$@"; do sets+=(--set "$o"); done
    htpose train --config "$config" --steps "$STEPS" --seed "$seed" --threads 1 --device "$DEVICE" \
        "${sets[@]}" --no-progress --out "$R/${name}_s$seed" > "$R/${name}_s$seed.log" 2>&1
}

lane() {  # every variant for one seed
    local s=$1
    train htp "$s" $HTP                                   # random plans in training, TCEP at inference
    train tcep_plan "$s" $HTP $OWN_PLAN                   # trained on TCEP's own plan
    train uniform "$s" $HTP model.pruning.scoring=uniform $OWN_PLAN
    train random "$s" $HTP model.pruning.scoring=random    # random frames, training and inference
    train hot "$s" $HTP model.pruning.tcep_layer=1 model.pruning.keep_ratio=0.2 \
        model.pruning.mgptp=false model.pruning.recovery=attend $OWN_PLAN
    train small40 "$s" $FULL model.width=40
    train unpruned "$s" $FULL
}
if [ "$DEVICE" = cpu ]; then
    lane 0 & lane 1 & wait
    lane 2
else
    lane 0 & lane 1 & lane 2 & wait
fi

seeds() { echo "$R/$1_s0/model.safetensors,$R/$1_s1/model.safetensors,$R/$1_s2/model.safetensors"; }
for split in $SPLITS; do
    plot=()
    [ "$split" = val ] && plot=(--plot "$PLOT")
    python benchmarks/htp_frontier.py --split "$split" --hypotheses 5 \
        --keep "$KEEP" --scorings own,motion_graph --timing-runs 3 \
        --model "HTP, random plans in training=$(seeds htp)" \
        --model "HTP, TCEP plan in training=$(seeds tcep_plan)" \
        --model "evenly spaced=$(seeds uniform)" \
        --model "random frames=$(seeds random)" \
        --model "HoT-style=$(seeds hot)" \
        --model "unpruned width 40=$(seeds small40)" \
        --model "unpruned width 64=$(seeds unpruned)" \
        --json "$R/frontier_$split.json" "${plot[@]}" | tee "$R/frontier_$split.log"
done
