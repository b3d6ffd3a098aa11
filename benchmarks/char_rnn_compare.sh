#!/usr/bin/env bash
# char_rnn against the same model in PyTorch (benchmarks/char_rnn_torch.py): the same text, split,
# streams, chunks and hyper-parameters, STEPS training steps each, then the same validation pass.
# Writes benchmarks/results/char-rnn-<date>.txt with the machine (lscpu), the load average before
# each run (the machine may be shared), both programs' output and a summary table.
#
#   bash benchmarks/char_rnn_compare.sh CHAR_RNN [STEPS] [THREADS...]
#   bash benchmarks/char_rnn_compare.sh build/examples/char_rnn 200 1 2
#
# Needs Debian's python3-torch under /usr/bin/python3 (libopenblas0-openmp makes it faster: the
# script picks it up by itself).
set -eu
bin=$1
steps=${2:-200}
shift $(($# < 2 ? $# : 2))
threads=("$@")
[ ${#threads[@]} -eq 0 ] && threads=(1 2)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/results/char-rnn-$(date -u +%Y%m%d-%H%M%S).txt"
mkdir -p "$here/results"
summary=""
{
  echo "# char_rnn vs PyTorch: $steps training steps of the default model, then the validation pass"
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) hardware threads ($(lscpu | sed -n 's/^Thread(s) per core: *//p') per core)"
  echo "# cellflow: $(basename "$bin") --epochs 1 --max-steps $steps --threads N"
  echo "# torch:    /usr/bin/python3 benchmarks/char_rnn_torch.py --max-steps $steps --threads N"
  for n in "${threads[@]}"; do
    echo
    echo "## threads $n"
    echo "load average before cellflow: $(cut -d' ' -f1-3 /proc/loadavg)"
    cf_out=$("$bin" --epochs 1 --max-steps "$steps" --threads "$n" 2>&1 | grep -E "^(char_rnn|epoch|done)")
    echo "$cf_out"
    echo "load average before torch: $(cut -d' ' -f1-3 /proc/loadavg)"
    torch_out=$(/usr/bin/python3 "$here/char_rnn_torch.py" --max-steps "$steps" --threads "$n")
    echo "$torch_out"
    cf_cps=$(echo "$cf_out" | sed -n 's/^done: .*training \([0-9]*\) chars\/s$/\1/p')
    cf_val=$(echo "$cf_out" | sed -n 's/^done: validation \([0-9.]*\) bpc (loss \([0-9.]*\)).*/\2 (\1 bpc)/p')
    t_cps=$(echo "$torch_out" | sed -n 's/.*"train_chars_per_second": \([0-9.]*\).*/\1/p')
    t_val=$(echo "$torch_out" | sed -n 's/.*"val_loss": \([0-9.]*\), "val_bpc": \([0-9.]*\).*/\1 (\2 bpc)/p')
    summary+="| $n | $cf_cps | $t_cps | $cf_val | $t_val |"$'\n'
  done
  echo
  echo "## summary: training characters per second; validation loss (nats) after $steps steps"
  echo "| threads | cellflow chars/s | PyTorch chars/s | cellflow val loss | PyTorch val loss |"
  echo "|---|---|---|---|---|"
  printf '%s' "$summary"
} | sed "s|$root/||g" | tee "$out"   # paths relative to the repository
echo "written to ${out#"$root"/}"
