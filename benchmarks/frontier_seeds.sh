#!/usr/bin/env bash
# Issue 9's frontier over three seeds: every variant trained exactly like the others (the
# recipe of configs/cmu_wide_htp.yaml, 2000 steps of batch 16, seeds 0-2), then swept over
# the kept share and drawn (benchmarks/htp_frontier.png), on `val` and then on `test`.
# A run whose model.safetensors exists is not trained again, so the script resumes after
# an interruption. On 2 cores: 21 runs of about 15 min on one thread, two at a time (about
# 2.7 h), then about 20 min per split for the sweep. Run from the repository root.
#   R: where the runs go (default runs/frontier); DEVICE: cpu or cuda; WORKERS: trainings at
#   once (default 2 on CPU, 3 on cuda); SPLITS: the sweeps (empty: train only); STEPS, KEEP,
#   SPLITS and PLOT shrink it to check the script itself (STEPS=3 KEEP=0.5 SPLITS=val
#   PLOT=/tmp/f.png). A variant without all three seeds trained is left out of the sweeps.
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
    [ -f "$R/${name}_s$seed/model.safetensors" ] && return 0
    local sets=()
    for o in "$@"; do sets+=(--set "$o"); done
    htpose train --config "$config" --steps "$STEPS" --seed "$seed" --threads 1 --device "$DEVICE" \
        "${sets[@]}" --no-progress --out "$R/${name}_s$seed" > "$R/${name}_s$seed.log" 2>&1
}

variant() {  # NAME SEED: train one variant of the study at one seed
    local s=$2
    case $1 in
        htp) train htp "$s" $HTP ;;                       # random plans in training, TCEP at inference
        uniform) train uniform "$s" $HTP model.pruning.scoring=uniform $OWN_PLAN ;;
        random) train random "$s" $HTP model.pruning.scoring=random ;;  # random frames throughout
        hot) train hot "$s" $HTP model.pruning.tcep_layer=1 model.pruning.keep_ratio=0.2 \
            model.pruning.mgptp=false model.pruning.recovery=attend $OWN_PLAN ;;
        small40) train small40 "$s" $FULL model.width=40 ;;
        unpruned) train unpruned "$s" $FULL ;;
        tcep_plan) train tcep_plan "$s" $HTP $OWN_PLAN ;;  # trained on TCEP's own plan
    esac
}
# One queue, variant-major with the extra variant last, so a run cut short still leaves the
# issue's controls with all three seeds; WORKERS train at once (one per core on CPU), worker w
# taking every WORKERS-th job from the w-th.
JOBS=()
for v in htp uniform random hot small40 unpruned tcep_plan; do
    for s in 0 1 2; do JOBS+=("$v $s"); done
done
WORKERS=${WORKERS:-$([ "$DEVICE" = cpu ] && echo 2 || echo 3)}
worker() {
    local i
    for ((i = $1; i < ${#JOBS[@]}; i += WORKERS)); do variant ${JOBS[$i]}; done
}
for ((w = 0; w < WORKERS; w++)); do worker "$w" & done
wait

LABELS=("htp=HTP, random plans in training" "tcep_plan=HTP, TCEP plan in training"
    "uniform=evenly spaced" "random=random frames" "hot=HoT-style"
    "small40=unpruned width 40" "unpruned=unpruned width 64")
models=()  # a variant enters the sweep only with all three seeds trained
for pair in "${LABELS[@]}"; do
    name=${pair%%=*} ckpts=()
    for s in 0 1 2; do
        [ -f "$R/${name}_s$s/model.safetensors" ] && ckpts+=("$R/${name}_s$s/model.safetensors")
    done
    if [ ${#ckpts[@]} -eq 3 ]; then
        models+=(--model "${pair#*=}=$(IFS=,; echo "${ckpts[*]}")")
    else
        echo "frontier_seeds: $name has ${#ckpts[@]} of 3 seeds trained; left out of the sweep" >&2
    fi
done
for split in $SPLITS; do
    plot=()
    [ "$split" = val ] && plot=(--plot "$PLOT")
    python benchmarks/htp_frontier.py --split "$split" --hypotheses 5 \
        --keep "$KEEP" --scorings own,motion_graph --timing-runs 3 "${models[@]}" \
        --json "$R/frontier_$split.json" "${plot[@]}" | tee "$R/frontier_$split.log"
done
