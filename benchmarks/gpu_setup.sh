# Shared set-up of the GPU session scripts (sourced; the caller sets OUT, DEVICE, QUICK,
# SECONDS_TOTAL and EVAL_S first): paths, the clock, the data, and what the machine is.
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
H="python3 -m htpose"
R=$OUT/runs
mkdir -p "$R"
T0=$(date +%s)
left() { echo $((SECONDS_TOTAL - ($(date +%s) - T0))); }
until_evals() { local t=$(( $(left) - EVAL_S + 20 )); echo $(( t < 30 ? 30 : t )); }

if [ ! -e ../shared/data/cmu/cmu_h36m17.npz ] && [ -d .gpu ]; then
    mkdir -p ../shared/data && cp -r .gpu/cmu ../shared/data/ && cp .gpu/h36m_cameras.json ../shared/data/
fi
D=""  # where ../shared cannot be made, the trainings read .gpu/ directly
[ -e ../shared/data/cmu/cmu_h36m17.npz ] || D="--data $PWD/.gpu/cmu/cmu_h36m17.npz --set data.camera_file=$PWD/.gpu/h36m_cameras.json"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
  nproc; } > "$OUT/machine.txt" 2>&1
